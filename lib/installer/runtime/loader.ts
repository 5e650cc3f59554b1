/**
 * The node's own runtime binary as the judge of a config, before anything is written or restarted: the host's
 * containerd loads the candidate config (`containerd --config <candidate> config dump`), or the host's CRI-O
 * merges the candidate drop-in directory (`crio --config <main> --config-dir <candidate dir> config`), in the
 * host's mount namespace (through PID 1, as the restart runs), and what it prints must hold our handler.
 * Our own reading of a file can differ from the runtime's (plugin names, migrations, imports, parser rules);
 * the runtime's cannot.
 *
 * A containerd candidate lives next to the file it stands for (relative `imports` resolve the same way), under
 * a name containerd never reads (`.<name>.knawd-preflight`); CRI-O's candidate drop-in directory, and the copy
 * of an imported containerd drop-in directory, are assembled in the host's /run. All are removed right after,
 * whatever the outcome.
 */
import * as TOML from '@iarna/toml';
import type { TargetSpec } from '../../catalog';
import { redirectImports } from '../../toml';
import { InstallerError, oneLine } from '../errors';
import { CommandRunner, IN_HOST } from '../host/commands';
import { HostFs } from '../host/fs';
import { formatVersion, parseRuntimeVersion } from './version';

/** Bound for one loader run; a config dump takes well under a second. */
const LOADER_TIMEOUT_MS = 30_000;

export interface RuntimeBinary {
  /** Host path of the binary. */
  readonly path: string;
  /** Its version as it reports it, e.g. `2.2.9`; undefined when it would not say. */
  readonly version?: string;
  /** Its `--version` output, one line. */
  readonly versionText?: string;
}

/**
 * The first of the target's runtime binaries (catalog paths) that exists on the node, with its version;
 * undefined if none does. Never a binary found on the host's PATH: a node may carry several containerds
 * (Docker's beside Kubernetes'), and the wrong one would judge the config.
 */
export async function findRuntimeBinary(target: TargetSpec, fs: HostFs, runner: CommandRunner): Promise<RuntimeBinary | undefined> {
  const path = target.runtimeBinaries.find((p) => fs.stat(p)?.kind === 'file');
  if (path === undefined) return undefined;
  const result = await runner.run([...IN_HOST, path, '--version'], LOADER_TIMEOUT_MS);
  const versionText = result.code === 0 ? oneLine(result.stdout).slice(0, 200) : undefined;
  const version = parseRuntimeVersion(versionText);
  return { path, ...(version ? { version: formatVersion(version), versionText } : {}) };
}

/** What the runtime itself would run for our handler, from its own reading of the candidate. */
export interface LoaderVerdict {
  /** The loader could not be run (no binary, nsenter missing, no answer): nothing is known. */
  readonly ran: boolean;
  /** Our handler, as the runtime reads it; undefined when it does not see it. */
  readonly handler?: Record<string, unknown>;
  /** The handlers the runtime sees, and under which table, for the message when ours is missing. */
  readonly seen: readonly string[];
  /**
   * Settings outside our handler that the runtime reads differently with the candidate than with the file as
   * it is now (dotted paths, at most a few): the change would do more than add the handler.
   */
  readonly sideEffects: readonly string[];
  /** Why the loader could not be run. */
  readonly why?: string;
}

export interface Candidate {
  /** Host path of the file the candidate stands for. */
  readonly path: string;
  readonly text: string;
}

/** Where containerd's dump lists runtime handlers: the 1.x name (1.x dumps version 2), the 2.x name. */
const CONTAINERD_DUMP_RUNTIMES = [
  ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
];

/**
 * `containerd --config <file> config dump` with the host's binary, for the candidate and for the file as it is
 * now (an empty file when there is none: containerd's defaults); throws when containerd rejects the candidate.
 */
export async function containerdReads(
  fs: HostFs,
  runner: CommandRunner,
  binary: RuntimeBinary,
  candidate: Candidate,
  current: string | undefined,
  handler: string,
  /** Runtimes the candidate takes out on purpose (the original knawd-deployer's, at the take-over). */
  removed: readonly string[] = [],
): Promise<LoaderVerdict> {
  return compareDumps(fs, runner, binary, { after: candidate, before: { path: candidate.path, text: current ?? '' }, writesTo: candidate.path, removed }, handler);
}

/** A drop-in install as the pre-flight loads it. */
export interface DropInCandidate {
  /** The config that imports the drop-in's directory: its host path, its text now and after install. */
  readonly config: { readonly path: string; readonly now: string; readonly after: string };
  /** Our drop-in: its host path in the imported directory, and its text. */
  readonly dropIn: Candidate;
}

/**
 * The same with our drop-in: containerd loads the config after install with the imports that read the drop-in's
 * directory pointed at a copy of it in the host's /run (its other files, and our candidate under its final
 * name), so that nothing containerd reads is written before the pre-flight passed; compared with the config
 * as it is now, reading the real directory.
 */
export async function containerdReadsDropIn(
  fs: HostFs,
  runner: CommandRunner,
  binary: RuntimeBinary,
  candidate: DropInCandidate,
  handler: string,
  /** Runtimes the config after install takes out on purpose (the original knawd-deployer's, at the take-over). */
  removed: readonly string[] = [],
): Promise<LoaderVerdict> {
  const dir = candidate.dropIn.path.slice(0, candidate.dropIn.path.lastIndexOf('/'));
  const own = baseName(candidate.dropIn.path);
  const redirected = redirectImports(candidate.config.after, candidate.config.path, dir, PREFLIGHT_DIR);
  if (redirected === undefined) throw new Error(`internal error: ${candidate.config.path} does not import ${dir}`);
  clearDir(fs, PREFLIGHT_DIR);
  try {
    fs.mkdir(PREFLIGHT_DIR, 0o700);
    for (const name of fs.list(dir) ?? []) {
      const path = `${dir}/${name}`;
      if (name === own || fs.stat(path)?.kind !== 'file') continue;
      fs.writeFile(`${PREFLIGHT_DIR}/${name}`, fs.read(path) as Buffer, 0o600);
    }
    fs.writeFile(`${PREFLIGHT_DIR}/${own}`, Buffer.from(candidate.dropIn.text, 'utf8'), 0o600);
    return await compareDumps(
      fs,
      runner,
      binary,
      {
        after: { path: candidate.config.path, text: redirected },
        before: { path: candidate.config.path, text: candidate.config.now },
        writesTo: candidate.dropIn.path,
        // The dump names the copy's directory where the node's config names the real one.
        normalise: (dump) => dump.split(PREFLIGHT_DIR).join(dir),
        removed,
      },
      handler,
    );
  } finally {
    clearDir(fs, PREFLIGHT_DIR);
  }
}

interface DumpPair {
  /** The config containerd is started with after install, and now. */
  readonly after: Candidate;
  readonly before: Candidate;
  /** The file install would write, for the messages. */
  readonly writesTo: string;
  /** Applied to the dump after install before it is compared. */
  readonly normalise?: (dump: string) => string;
  /** Runtimes the config after install takes out on purpose (the original knawd-deployer's, at the take-over). */
  readonly removed: readonly string[];
}

async function compareDumps(fs: HostFs, runner: CommandRunner, binary: RuntimeBinary, pair: DumpPair, handler: string): Promise<LoaderVerdict> {
  const dump = (file: Candidate) =>
    withCandidateFile(fs, file, (path) => runner.run([...IN_HOST, binary.path, '--config', path, 'config', 'dump'], LOADER_TIMEOUT_MS));
  const result = await dump(pair.after);
  if (result.code === -1) return { ran: false, seen: [], sideEffects: [], why: oneLine(result.stderr).slice(0, 200) || 'it could not be started' };
  if (result.code !== 0) {
    throw new InstallerError(
      `pre-flight: the node's containerd (${describe(binary)}) rejects the config that install would write to ${pair.writesTo}: ${loaderMessage(result.stderr)}; nothing was changed`,
      'fix the file named above (containerd must load it as it is), then run install again',
    );
  }
  const before = await dump(pair.before);
  if (before.code !== 0) {
    throw new InstallerError(
      `pre-flight: the node's containerd (${describe(binary)}) rejects ${pair.before.path} as it is now: ${loaderMessage(before.stderr)}; nothing was changed`,
      'fix that file first: containerd would not start with it either',
    );
  }
  const after = parseDump((pair.normalise ?? ((d: string) => d))(result.stdout), binary);
  return { ...verdictFrom(after, CONTAINERD_DUMP_RUNTIMES, handler), sideEffects: differences(withoutImports(parseDump(before.stdout, binary)), withoutImports(after), [handler, ...pair.removed]) };
}

/**
 * The dump without `imports`, which is containerd's default list merged with the file's, not what was read
 * (measured with 2.2.9 and 2.3.7: the default conf.d glob shows also where nothing imports it); what was read
 * shows in the settings themselves.
 */
function withoutImports(dump: Record<string, unknown>): Record<string, unknown> {
  const rest = { ...dump };
  delete rest.imports;
  return rest;
}

/** `crio --config <main> --config-dir <candidate dir> config`: CRI-O's merged view with our drop-in in the directory. */
export async function crioReads(
  fs: HostFs,
  runner: CommandRunner,
  binary: RuntimeBinary,
  mainConfig: string,
  dropInDir: string,
  candidate: Candidate,
  handler: string,
): Promise<LoaderVerdict> {
  // Not inside the drop-in directory: CRI-O reads everything there, and a candidate left by a crash must never be.
  const dir = PREFLIGHT_DIR;
  clearDir(fs, dir);
  try {
    fs.mkdir(dir, 0o700);
    for (const name of fs.list(dropInDir) ?? []) {
      const path = `${dropInDir}/${name}`;
      if (name === baseName(candidate.path) || fs.stat(path)?.kind !== 'file') continue;
      fs.writeFile(`${dir}/${name}`, fs.read(path) as Buffer, 0o600);
    }
    fs.writeFile(`${dir}/${baseName(candidate.path)}`, Buffer.from(candidate.text, 'utf8'), 0o600);
    const main = fs.exists(mainConfig) ? mainConfig : '';
    const result = await runner.run([...IN_HOST, binary.path, '--config', main, '--config-dir', dir, 'config'], LOADER_TIMEOUT_MS);
    if (result.code === -1) return { ran: false, seen: [], sideEffects: [], why: oneLine(result.stderr).slice(0, 200) || 'it could not be started' };
    if (result.code !== 0) {
      throw new InstallerError(
        `pre-flight: the node's CRI-O (${describe(binary)}) rejects its config with the drop-in install would write to ${candidate.path}: ${loaderMessage(result.stderr)}; nothing was changed`,
        'fix the CRI-O config named above, then run install again',
      );
    }
    return { ...verdictFrom(parseDump(result.stdout, binary), [['crio', 'runtime', 'runtimes']], handler), sideEffects: [] };
  } finally {
    clearDir(fs, dir);
  }
}

/** Host directory for candidates that cannot sit beside their file: tmpfs, emptied at boot, read by no runtime. */
const PREFLIGHT_DIR = '/run/knawd-preflight';

function clearDir(fs: HostFs, dir: string): void {
  if (fs.stat(dir)?.kind !== 'dir') return;
  for (const name of fs.list(dir) ?? []) fs.removeFile(`${dir}/${name}`);
  fs.removeDir(dir);
}

/**
 * Takes away what a pre-flight that was interrupted (the pod killed) left: the candidate beside the target's
 * config, and the candidate directory in /run. Nothing reads them, but the node must end as it began.
 */
export function clearPreflightLeftovers(fs: HostFs, target: TargetSpec): void {
  if (target.configEdit.kind === 'containerd-config') fs.removeFile(candidatePathBeside(target.configEdit.path));
  clearDir(fs, PREFLIGHT_DIR);
}

function candidatePathBeside(path: string): string {
  const slash = path.lastIndexOf('/');
  return `${path.slice(0, slash)}/.${path.slice(slash + 1)}.knawd-preflight`;
}

async function withCandidateFile<T>(fs: HostFs, candidate: Candidate, use: (candidatePath: string) => Promise<T>): Promise<T> {
  const slash = candidate.path.lastIndexOf('/');
  const dir = candidate.path.slice(0, slash);
  // Beside the file when its directory exists (relative imports resolve alike); else there is nothing to import.
  const inPlace = fs.stat(dir)?.kind === 'dir';
  const candidatePath = inPlace ? candidatePathBeside(candidate.path) : `${PREFLIGHT_DIR}/${candidate.path.slice(slash + 1)}`;
  if (!inPlace) {
    clearDir(fs, PREFLIGHT_DIR);
    fs.mkdir(PREFLIGHT_DIR, 0o700);
  }
  try {
    fs.writeFile(candidatePath, Buffer.from(candidate.text, 'utf8'), 0o600);
    return await use(candidatePath);
  } finally {
    fs.removeFile(candidatePath);
    if (!inPlace) clearDir(fs, PREFLIGHT_DIR);
  }
}

function parseDump(text: string, binary: RuntimeBinary): Record<string, unknown> {
  try {
    return TOML.parse(text) as Record<string, unknown>;
  } catch (error) {
    throw new InstallerError(
      `pre-flight: what ${describe(binary)} printed for the candidate config is not TOML (${oneLine(error instanceof Error ? error.message : String(error)).slice(0, 120)})`,
      'check that the binary named is the node\'s container runtime',
    );
  }
}

const ZERO = new Set(['""', '0', 'false', '[]', '{}']);

/** Leaf paths whose values differ between two dumps, ignoring everything under the runtimes named in `handlers`. */
function differences(before: Record<string, unknown>, after: Record<string, unknown>, handlers: readonly string[]): string[] {
  const leaves = (node: unknown, path: string[], out: Map<string, string>): Map<string, string> => {
    if (node && typeof node === 'object' && !Array.isArray(node) && !(node instanceof Date)) {
      const entries = Object.entries(node as Record<string, unknown>);
      if (entries.length === 0) out.set(path.join('.'), '{}');
      for (const [key, value] of entries) {
        if (handlers.includes(key) && path[path.length - 1] === 'runtimes') continue;
        leaves(value, [...path, key.includes('.') ? JSON.stringify(key) : key], out);
      }
    } else {
      out.set(path.join('.'), JSON.stringify(node));
    }
    return out;
  };
  const a = leaves(before, [], new Map());
  const b = leaves(after, [], new Map());
  // An unset setting is its Go zero value to the runtime: "" / 0 / false / [] / {} and absent are the same.
  const same = (x: string | undefined, y: string | undefined): boolean => x === y || (x === undefined && ZERO.has(y as string)) || (y === undefined && ZERO.has(x as string));
  const changed = [...new Set([...a.keys(), ...b.keys()])].filter((k) => !same(a.get(k), b.get(k)));
  return changed.sort().map((k) => `${k} (${a.get(k) ?? 'unset'} → ${b.get(k) ?? 'unset'})`);
}

function verdictFrom(dump: Record<string, unknown>, tables: readonly (readonly string[])[], handler: string): Omit<LoaderVerdict, 'sideEffects'> {
  const seen: string[] = [];
  let found: Record<string, unknown> | undefined;
  for (const path of tables) {
    const runtimes = path.reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), dump);
    if (!runtimes || typeof runtimes !== 'object') continue;
    for (const [name, value] of Object.entries(runtimes as Record<string, unknown>)) {
      seen.push(`${name} (under ${path.map((p) => (p.includes('.') ? JSON.stringify(p) : p)).join('.')})`);
      if (name === handler && value && typeof value === 'object') found = value as Record<string, unknown>;
    }
  }
  return { ran: true, handler: found, seen };
}

function describe(binary: RuntimeBinary): string {
  return binary.version ? `${binary.path}, version ${binary.version}` : binary.path;
}

/** A runtime's error output, one line: the last line that says something (Go programs log a lot first). */
function loaderMessage(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  const last = lines.reverse().find((l) => !/level=(info|debug|warning)/.test(l)) ?? lines[0] ?? 'no message';
  return oneLine(last).slice(0, 300);
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
