/**
 * The installer's record of what it did to a node, kept at `<prefix>/state.json`. It is written BEFORE the
 * files it describes (as an intent) and again after them, so that a run interrupted at any point can be
 * finished or undone by the next one:
 * - `files` lists every file we write, with the hash of what we wrote, whether it existed before our first
 *   write, and its original bytes. The original is taken once, from a file we have not patched (our block
 *   stripped if it is already there), and never replaced by a later run.
 * - `createdDirs` lists directories we created, parents first; they are removed (when empty) on remove.
 * - `restartPending` is set before a config write and cleared only after the runtime came back.
 * - `selinuxLabelled` is set once SELinux labels were applied (relabelling only when something changed).
 * - `knative` is present only when we changed Knative's config: the feature flag's value before we set it, and
 *   config-deployment's runtime-class-name before we added our entry (with the entry, to recognise it as ours).
 * - `stat` (binary and library records only) is the stat fingerprint of the file as we left it, taken after
 *   we wrote (and labelled) it or after we hashed it. While the file's stat still matches it, install and
 *   plan take `sha256` as the file's hash without reading 40 MB again (like git's index); anything that
 *   differs — size, mtime, ctime, inode, mode — and they hash the file. `status` never uses it: it always
 *   re-hashes. The field is optional: a state written before it existed has none, and the next install
 *   hashes once and records it (schema stays 1; an older installer ignores the field, and a fingerprint it
 *   carries over after replacing the file no longer matches the new inode, so it is harmless).
 */
import { InstallerError } from '../errors';

/**
 * What a file is to us. Config roles name the catalog's edit kind that wrote them, or `containerd-dropin`: our
 * own file in a directory the node's containerd config (or k3s' rendered one) imports, ours as a whole; or
 * `original-config`: a runtime config (or its `.bak`) of the original knawd-deployer's that the take-over edits
 * (plan/takeover.ts): compared-and-swapped like ours; it holds no block of ours.
 */
export type FileRole = 'binary' | 'library' | 'wrapper' | 'containerd-config' | 'containerd-template' | 'containerd-dropin' | 'crio-dropin' | 'original-config';

export const CONFIG_ROLES: readonly FileRole[] = ['containerd-config', 'containerd-template', 'containerd-dropin', 'crio-dropin', 'original-config'];

export function isConfigRole(role: FileRole): boolean {
  return CONFIG_ROLES.includes(role);
}

/** Bytes kept in the state: as text when they are UTF-8, else base64. */
export interface StoredBytes {
  readonly encoding: 'utf8' | 'base64';
  readonly data: string;
}

/** What `stat` says about a file: enough to tell that it was not touched since we recorded it. */
export interface Fingerprint {
  readonly size: number;
  readonly mtimeMs: number;
  /** Changes with any write, chmod, chown, label change or timestamp reset (utimes): it cannot be set back. */
  readonly ctimeMs: number;
  readonly ino: number;
  /** Permission bits. */
  readonly mode: number;
}

export function isFingerprint(value: unknown): value is Fingerprint {
  const f = value as Partial<Fingerprint> | null | undefined;
  return !!f && (['size', 'mtimeMs', 'ctimeMs', 'ino', 'mode'] as const).every((k) => typeof f[k] === 'number' && Number.isFinite(f[k]));
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
  /** Fingerprint of the file holding `sha256` (binary and library only); see the header. */
  readonly stat?: Fingerprint;
  /**
   * sha256 of the artifact this file was copied from, when the copy differs from it (its prefix bytes rewritten
   * for a prefix other than the default); absent when the file is the artifact itself.
   */
  readonly source?: string;
}

export interface KnativeRecord {
  /** The feature flag's value before we set it; null when the key was absent; undefined: we did not set it. */
  readonly previous?: string | null;
  /** Our entry in config-deployment's runtime-class-name; undefined: we did not add one. */
  readonly runtimeClassName?: RuntimeClassNameRecord;
}

export interface RuntimeClassNameRecord {
  /** The key's whole value before our first change; null when the key was absent. */
  readonly previous: string | null;
  /** The RuntimeClass our entry names. */
  readonly name: string;
  /** The selector we last wrote: while the entry still holds it, it is ours. */
  readonly selector: Readonly<Record<string, string>>;
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
  /**
   * SELinux was enabled and our files were labelled by the run that wrote this state. Without it (older
   * state, SELinux enabled since), install labels them again; with it, only files it rewrites.
   */
  readonly selinuxLabelled?: true;
  readonly knative?: KnativeRecord;
  /** What the take-over of the original knawd-deployer's handler did, or waits for (plan/takeover.ts). */
  readonly takeover?: TakeoverRecord;
}

/**
 * The take-over of the original knawd-deployer (1.x). `waitingFor`: pods that ran under its handler when last
 * looked, so its entry and files still stay; absent once they are taken out. `configs`: the configs that held its
 * entry, with the `.bak` it left (kept here, the file deleted). `deleted`: its files the take-over deleted, which
 * remove cannot put back (the original overwrote what was there without a backup). `notes`: what remove could
 * not restore of the configs, and why.
 */
export interface TakeoverRecord {
  readonly handler: string;
  readonly configs: readonly { readonly path: string; readonly kind: 'containerd' | 'crio'; readonly backup?: StoredBytes }[];
  readonly deleted: readonly { readonly path: string; readonly sha256: string }[];
  readonly waitingFor?: readonly string[];
  readonly notes?: readonly string[];
}

export const STATE_FILE = 'state.json';

export function statePath(prefix: string): string {
  return `${prefix}/${STATE_FILE}`;
}

/** The node's compile cache of WebAssembly modules (host/compile-cache.ts): written by crun, removed with the prefix. */
export function compileCachePath(prefix: string): string {
  return `${prefix}/cache`;
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
  // A fingerprint that is not one is only a lost shortcut: drop it, and the file is hashed.
  const files = s.files.map((f) => (f.stat === undefined || isFingerprint(f.stat) ? f : withoutStat(f)));
  return { ...(s as InstallState), files };
}

export function withoutSource(record: FileRecord): FileRecord {
  if (record.source === undefined) return record;
  const { source: _dropped, ...rest } = record;
  void _dropped;
  return rest;
}

export function withoutStat(record: FileRecord): FileRecord {
  if (record.stat === undefined) return record;
  const { stat: _dropped, ...rest } = record;
  void _dropped;
  return rest;
}

function damaged(hostPath: string, why: string): InstallerError {
  return new InstallerError(
    `the installer state ${hostPath} on the node is damaged (${why})`,
    `inspect it; if the node is otherwise clean, move it away and run install again`,
  );
}
