/**
 * The installer's record of what it did to a node, kept at `<prefix>/state.json`. It is written BEFORE the
 * files it describes (as an intent) and again after them, so that a run interrupted at any point can be
 * finished or undone by the next one:
 * - `files` lists every file we write, with the hash of what we wrote, whether it existed before our first
 *   write, and its original bytes. The original is taken once, from a file we have not patched (our block
 *   stripped if it is already there), and never replaced by a later run.
 * - `createdDirs` lists directories we created, parents first; they are removed (when empty) on remove.
 * - `restartPending` is set before a config write and cleared only after the runtime came back.
 * - `knative` is present only when we changed Knative's feature flag, with the value it had before.
 */
import { InstallerError } from './errors';

/** What a file is to us; config roles name the catalog's edit kind that wrote them. */
export type FileRole = 'binary' | 'library' | 'wrapper' | 'containerd-config' | 'containerd-template' | 'crio-dropin';

export const CONFIG_ROLES: readonly FileRole[] = ['containerd-config', 'containerd-template', 'crio-dropin'];

export function isConfigRole(role: FileRole): boolean {
  return CONFIG_ROLES.includes(role);
}

/** Bytes kept in the state: as text when they are UTF-8, else base64. */
export interface StoredBytes {
  readonly encoding: 'utf8' | 'base64';
  readonly data: string;
}

export interface FileRecord {
  /** Host path. */
  readonly path: string;
  readonly role: FileRole;
  /** The file did not exist before our first write: remove deletes it. */
  readonly created: boolean;
  /** sha256 of the bytes we last wrote (or meant to write: the intent is recorded first). */
  readonly sha256: string;
  /** Bytes before our first write, for a file we did not create. */
  readonly original?: StoredBytes;
  /** Permission bits before our first write, for a file we did not create. */
  readonly originalMode?: number;
}

export interface KnativeRecord {
  /** The feature flag's value before we set it; null when the key was absent. */
  readonly previous: string | null;
}

export interface InstallState {
  readonly schema: 1;
  readonly phase: 'installing' | 'installed' | 'removing';
  readonly target: string;
  readonly runtime: string;
  readonly handler: string;
  readonly prefix: string;
  readonly files: readonly FileRecord[];
  readonly createdDirs: readonly string[];
  readonly restartPending: boolean;
  readonly knative?: KnativeRecord;
}

export const STATE_FILE = 'state.json';

export function statePath(prefix: string): string {
  return `${prefix}/${STATE_FILE}`;
}

export function storeBytes(data: Buffer): StoredBytes {
  const text = data.toString('utf8');
  return Buffer.from(text, 'utf8').equals(data) ? { encoding: 'utf8', data: text } : { encoding: 'base64', data: data.toString('base64') };
}

export function loadBytes(stored: StoredBytes): Buffer {
  return Buffer.from(stored.data, stored.encoding);
}

/** Stable serialisation: the same state gives the same bytes, so an unchanged state is never rewritten. */
export function serializeState(state: InstallState): Buffer {
  return Buffer.from(JSON.stringify(state, null, 2) + '\n', 'utf8');
}

export function parseState(data: Buffer, hostPath: string): InstallState {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw damaged(hostPath, 'it is not JSON');
  }
  const s = value as Partial<InstallState> | null;
  if (
    !s ||
    s.schema !== 1 ||
    !['installing', 'installed', 'removing'].includes(s.phase as string) ||
    typeof s.target !== 'string' ||
    typeof s.runtime !== 'string' ||
    typeof s.handler !== 'string' ||
    typeof s.prefix !== 'string' ||
    !Array.isArray(s.files) ||
    !Array.isArray(s.createdDirs) ||
    typeof s.restartPending !== 'boolean' ||
    !s.files.every((f) => f && typeof f.path === 'string' && typeof f.sha256 === 'string' && typeof f.created === 'boolean')
  ) {
    throw damaged(hostPath, 'it does not have the expected fields');
  }
  return s as InstallState;
}

function damaged(hostPath: string, why: string): InstallerError {
  return new InstallerError(
    `the installer state ${hostPath} on the node is damaged (${why})`,
    `inspect it; if the node is otherwise clean, move it away and run install again`,
  );
}
