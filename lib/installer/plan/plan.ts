/**
 * Pure planning: from what is on the host now (read through a {@link HostView}), the artifacts and the
 * previous state, the list of file operations that install / remove would perform, in the order they are
 * applied, and the state that describes the result. Nothing here writes; installer.ts carries a plan out.
 */
import type * as Diff from 'diff';
import type { RuntimeSpec, TargetSpec } from '../../catalog';
import { ORIGINAL_HANDLER, RUNTIMES, TARGETS } from '../../catalog';
import { Artifact, Artifacts, sha256 } from '../artifacts';
import { candidateConfigPaths, ConfigReader, desiredConfig, revertConfig } from '../runtime/config-edit';
import type { NodeRuntime } from '../runtime/detect';
import type { FileDigest } from '../host/fs';
import { ConfigPatchError } from '../../toml';
import { InstallerError } from '../errors';
import { compileCachePath, FileRecord, FileRole, InstallState, isConfigRole, loadBytes, statePath, storeBytes, TakeoverRecord, withoutSource, withoutStat } from './state';
import { OriginalFindings, planTakeover, takenOverRecord } from './takeover';

/** Read-only view of the host (host paths). {@link HostFs} provides one (host-view.ts `hostView`). */
export interface HostView extends ConfigReader {
  read(hostPath: string): Buffer | undefined;
  /**
   * The file's sha256 without holding it in memory; undefined when it does not exist. With `known`, a record
   * whose `stat` fingerprint still matches the file, the recorded sha256 is returned without reading it.
   */
  digest(hostPath: string, known?: FileRecord): FileDigest | undefined;
  isDir(hostPath: string): boolean;
  mode(hostPath: string): number | undefined;
}

/** Binaries and libraries: large, compared by hash (never read whole), installed from the artifacts. */
export function isBlobRole(role: FileRole): boolean {
  return role === 'binary' || role === 'library';
}

export interface FileOp {
  readonly path: string;
  readonly role: FileRole;
  /** Bytes now (for a binary or library: its digest only); undefined when the file does not exist. */
  readonly before: Buffer | FileDigest | undefined;
  /** Bytes to write, or the verified artifact to copy; null to delete the file. */
  readonly after: Buffer | Artifact | null;
  /** Permission bits to give the file; undefined keeps the current ones (0644 for a new file). */
  readonly mode?: number;
  /** Why, for the log. */
  readonly reason: string;
}

export interface Plan {
  /** Directories to create, parents first, before any file op. */
  readonly mkdirs: readonly string[];
  /** File operations in the order they are applied. */
  readonly ops: readonly FileOp[];
  /** Directories to remove when empty, deepest first, after the file ops (install: those no file needs any more). */
  readonly rmdirs: readonly string[];
  /** A runtime config file changes: the runtime must be restarted to see it. */
  readonly configChanged: boolean;
  /** The state after the plan was carried out (restartPending as of the plan, before any restart). */
  readonly next: InstallState | undefined;
  /** Things the operator should know (drift, files left in place). */
  readonly warnings: readonly string[];
  /** Informational notes (e.g. where the containerd version came from). */
  readonly notes: readonly string[];
}

export interface InstallInputs {
  readonly target: TargetSpec;
  readonly runtime: RuntimeSpec;
  readonly handler: string;
  readonly prefix: string;
  readonly artifacts: Artifacts;
  /** The node's runtime version, if known, as reported (CRI-O's rules tell pre-releases apart) and where it came from. */
  readonly node?: Partial<Pick<NodeRuntime, 'version' | 'versionText' | 'versionSource'>>;
  /** SELinux is enabled on the node: the state records that our files were labelled. */
  readonly selinux?: boolean;
  /**
   * What the original knawd-deployer (1.x) left on the node (plan/takeover.ts), and the pods the runtime runs
   * under its handler now (undefined: it could not be asked). Taken over only when that list is empty.
   */
  readonly original?: { readonly findings: OriginalFindings; readonly podsUnderOriginal: readonly string[] | undefined };
}

/** Layout under the prefix. */
export function layout(prefix: string, runtime: Pick<RuntimeSpec, 'name' | 'library'>) {
  return {
    bin: `${prefix}/bin`,
    lib: `${prefix}/lib`,
    libexec: `${prefix}/libexec`,
    libexecRuntime: `${prefix}/libexec/${runtime.name}`,
    /** What the runtime config points at: the wrapper. */
    wrapper: `${prefix}/bin/${runtime.name}`,
    // crun picks a handler for EVERY container from the name it runs under (`crun-wasmtime` forces wasmtime,
    // ignoring the -smart annotations), which would break plain containers in WASM pods; as `crun` it
    // switches to WASM only for .wasm entrypoints of annotated pods.
    binary: `${prefix}/libexec/${runtime.name}/crun`,
    state: statePath(prefix),
    /** The node's compile cache (host/compile-cache.ts): crun's, not a file the installer writes. */
    cache: compileCachePath(prefix),
  };
}

/**
 * Where an artifact of the build goes: crun to {@link layout}'s `binary`, everything else into `<prefix>/lib` (a
 * `data` file under its path below lib/, e.g. lib/nodejs/acorn/dist/acorn.js, the others by name).
 */
export function installedPath(prefix: string, runtime: Pick<RuntimeSpec, 'name' | 'library'>, artifact: Pick<Artifact, 'name' | 'role'>): string {
  const l = layout(prefix, runtime);
  if (artifact.role === 'crun') return l.binary;
  if (artifact.role === 'data' && artifact.name.startsWith('lib/')) return `${l.lib}/${artifact.name.slice('lib/'.length)}`;
  return `${l.lib}/${artifact.name.slice(artifact.name.lastIndexOf('/') + 1)}`;
}

/**
 * The wrapper the runtime config points at. Why a wrapper: the config names one stable path per runtime, and
 * crun must not run under a `crun-<handler>` name (see {@link layout}); `exec` keeps crun's arguments, pid and
 * exit status. The builds are hermetic (their loader and RUNPATH name `<prefix>/lib`, rewritten to the chosen
 * prefix on copy), so LD_LIBRARY_PATH only covers what glibc itself dlopen()s by name; it does not reach
 * containers: crun gives the container process the environment from the OCI spec, not its own. KNAWD_WASM_CACHE
 * names the node's compile cache to crun (crun-patches/0101): set here, on the host, where no pod can set it.
 */
export function wrapperScript(prefix: string, runtime: Pick<RuntimeSpec, 'name' | 'library'>): Buffer {
  const l = layout(prefix, runtime);
  return Buffer.from(
    [
      '#!/bin/sh',
      `# Installed by knawd-installer: runs ${runtime.name} with its WebAssembly engine (${runtime.library})`,
      `# on the loader path. Removed by \`knawd-installer remove\`.`,
      `LD_LIBRARY_PATH='${l.lib}'\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}`,
      `KNAWD_WASM_CACHE='${l.cache}'`,
      'export LD_LIBRARY_PATH KNAWD_WASM_CACHE',
      `exec '${l.binary}' "$@"`,
      '',
    ].join('\n'),
    'utf8',
  );
}

export function planInstall(view: HostView, inputs: InstallInputs, previous: InstallState | undefined): Plan {
  const { target, runtime, handler, prefix, artifacts } = inputs;
  const l = layout(prefix, runtime);
  const warnings: string[] = [];

  const config = desiredConfig(
    target.configEdit,
    {
      handler,
      binaryPath: l.wrapper,
      runtimeVersion: inputs.node?.version,
      runtimeVersionText: inputs.node?.versionText,
      runtimeVersionSource: inputs.node?.versionSource,
      previousHandler: previous?.handler,
    },
    view,
  );
  warnings.push(...(config.warnings ?? []));

  // The build's libraries (loader, engine) before its crun: crun is complete the moment it appears.
  const blobs = [...artifacts.files].sort((a, b) => Number(a.role === 'crun') - Number(b.role === 'crun'));
  const desired: Array<{ path: string; role: FileRole; data: Buffer | Artifact; mode?: number }> = [
    ...blobs.map((a) => ({
      path: installedPath(prefix, runtime, a),
      role: (a.role === 'crun' ? 'binary' : 'library') as FileRole,
      data: a,
      // The kernel maps the loader (PT_INTERP) only when it is executable.
      mode: a.role === 'crun' || a.role === 'loader' ? 0o755 : 0o644,
    })),
    { path: l.wrapper, role: 'wrapper', data: wrapperScript(prefix, runtime), mode: 0o755 },
    // Last: the runtime must not be pointed at a binary that is not there yet.
    { path: config.path, role: config.role, data: Buffer.from(config.text, 'utf8') },
  ];

  const ops: FileOp[] = [];
  const records: FileRecord[] = [];
  for (const want of desired) {
    const prior = previous?.files.find((f) => f.path === want.path);
    // Each artifact was hashed once (against SHA256SUMS); the installed copy is hashed at most once, and not
    // at all while its stat still matches the fingerprint recorded when we wrote or last hashed it.
    let before: Buffer | FileDigest | undefined;
    let current: boolean;
    let wantSha: string;
    if (Buffer.isBuffer(want.data)) {
      before = view.read(want.path);
      current = before !== undefined && before.equals(want.data);
      wantSha = sha256(want.data);
    } else if (want.data.rewrite === undefined) {
      before = view.digest(want.path, prior);
      current = before !== undefined && before.sha256 === want.data.sha256;
      wantSha = want.data.sha256;
    } else {
      // A copy with the prefix rewritten: its digest is known without reading the artifact only from the record
      // of an earlier copy of the same artifact; a new copy's digest is settled once the artifact is verified.
      before = view.digest(want.path, prior);
      current = before !== undefined && prior?.source === want.data.sha256 && before.sha256 === prior.sha256;
      wantSha = current && prior ? prior.sha256 : want.data.sha256;
    }
    const modeDiffers = want.mode !== undefined && before !== undefined && view.mode(want.path) !== want.mode;
    const write = before === undefined || !current || modeDiffers;
    const fresh = prior ? { ...withoutStat(prior), role: want.role, sha256: wantSha } : firstRecord(want.path, want.role, before, wantSha, view, handler);
    const record = !Buffer.isBuffer(want.data) && want.data.rewrite ? { ...fresh, source: want.data.sha256 } : withoutSource(fresh);
    // The fingerprint is kept only for a file that holds what the record says; a file we write gets a new one after.
    const fingerprint = !write && before !== undefined && !Buffer.isBuffer(before) ? before.fingerprint : undefined;
    records.push(fingerprint ? { ...record, stat: fingerprint } : record);
    if (write) {
      ops.push({ path: want.path, role: want.role, before, after: want.data, mode: want.mode, reason: before === undefined ? 'create' : 'update' });
    }
  }

  // A config the take-over of the original knawd-deployer edited (CRI-O's crio.conf) stays recorded for remove.
  records.push(...(previous?.files ?? []).filter((f) => f.role === 'original-config' && !desired.some((d) => d.path === f.path)));
  // Files an earlier install wrote that this one does not (other runtime, other template version): revert them.
  const stale = (previous?.files ?? []).filter((f) => !desired.some((d) => d.path === f.path) && f.role !== 'original-config');
  const staleHandler = previous?.handler ?? handler;
  for (const record of [...stale].reverse()) {
    const op = revertOp(view, record, staleHandler, warnings);
    if (op) ops.push(op);
  }

  const takeover = takeOver(view, inputs.original, previous?.takeover, ops, records, warnings);

  // Data files keep their directories below lib/ (libnode's JavaScript): those are created too, parents first.
  const dataDirs = unique(desired.map((w) => parentOf(w.path)).filter((d) => d.startsWith(`${l.lib}/`))).sort();
  const dirs = [l.bin, l.lib, ...dataDirs, l.libexec, l.libexecRuntime, parentOf(config.path)];
  const mkdirs = missingDirs(view, [prefix, ...dirs]);
  // Directories an earlier install created that no file of this one lives in (another runtime's libexec/<name>):
  // taken out once the stale files are gone, deepest first.
  const needed = (d: string): boolean =>
    dirs.includes(d) || prefix === d || prefix.startsWith(d + '/') || desired.some((w) => w.path.startsWith(d + '/'));
  const rmdirs = [...(previous?.createdDirs ?? [])].filter((d) => !needed(d)).reverse();
  const createdDirs = unique([...(previous?.createdDirs ?? []), ...mkdirs]).filter((d) => !rmdirs.includes(d));
  // An existing but empty prefix without a state is taken as ours: a run that crashed right after creating it.
  if (!previous && !mkdirs.includes(prefix) && (view.list(prefix) ?? ['x']).length === 0) createdDirs.unshift(prefix);
  const configChanged = ops.some((op) => isConfigRole(op.role));

  const next: InstallState = {
    schema: 1,
    phase: 'installed',
    target: target.name,
    runtime: runtime.name,
    handler,
    prefix,
    files: records,
    createdDirs: unique(createdDirs),
    restartPending: (previous?.restartPending ?? false) || configChanged,
    ...(inputs.selinux ? { selinuxLabelled: true } : {}),
    ...(previous?.knative ? { knative: previous.knative } : {}),
    ...(takeover ? { takeover } : {}),
  };
  return { mkdirs, ops, rmdirs, configChanged, next, warnings, notes: config.notes };
}

/**
 * The take-over of the original knawd-deployer's leftovers, folded into the install plan (ops and records are
 * changed in place): while pods run under its handler, only recorded as waiting; else its entry taken out of
 * the configs (in the same write as our block where both share a file), then its files deleted. Returns the
 * state's record of it; the previous one when there is nothing (more) to take over.
 */
function takeOver(
  view: HostView,
  original: InstallInputs['original'],
  previous: TakeoverRecord | undefined,
  ops: FileOp[],
  records: FileRecord[],
  warnings: string[],
): TakeoverRecord | undefined {
  warnings.push(...(original?.findings.warnings ?? []));
  // Nothing (more) of the original's: a finished take-over stays recorded, a wait for one that is gone does not.
  if (!original || original.findings.configs.length === 0) return previous?.waitingFor ? undefined : previous;
  const { findings, podsUnderOriginal } = original;
  if (podsUnderOriginal === undefined || podsUnderOriginal.length > 0) {
    return { handler: ORIGINAL_HANDLER, configs: [], deleted: [], waitingFor: [...(podsUnderOriginal ?? [])] };
  }
  const ours = (path: string): FileOp | undefined => ops.find((op) => op.path === path && Buffer.isBuffer(op.after));
  const plan = planTakeover(view, findings, (path) => ours(path)?.after as Buffer | undefined);
  const notes: string[] = [];
  for (const op of plan.ops) {
    const i = ops.findIndex((o) => o.path === op.path);
    if (i >= 0) ops[i] = { ...ops[i], after: op.after, reason: `${ops[i].reason}; ${op.reason}` };
    else ops.push(op);
  }
  for (const config of findings.configs) {
    const written = ops.find((o) => o.path === config.path)?.after as Buffer;
    const r = records.findIndex((f) => f.path === config.path);
    const taken = takenOverRecord(config, r >= 0 ? records[r] : undefined, view.read(config.path) as Buffer, written, view.mode(config.path));
    if (r >= 0) records[r] = taken.record;
    else records.push(taken.record);
    if (taken.note) notes.push(taken.note);
  }
  return { ...plan.record, ...(notes.length > 0 ? { notes } : {}) };
}

/** Everything recorded in `state`, reverted: the plan for `remove`. */
export function planRemove(view: HostView, state: InstallState): Plan {
  const warnings: string[] = [];
  const ops: FileOp[] = [];
  // Configs first (the runtime stops referring to the binary), then our own files.
  const ordered = [...state.files.filter((f) => isConfigRole(f.role)), ...state.files.filter((f) => !isConfigRole(f.role))];
  for (const record of ordered) {
    const op = revertOp(view, record, state.handler, warnings);
    if (op) ops.push(op);
  }
  const rmdirs = [...state.createdDirs].reverse().filter((d) => view.isDir(d));
  return {
    mkdirs: [],
    ops,
    rmdirs,
    configChanged: ops.some((op) => isConfigRole(op.role)),
    next: undefined,
    warnings,
    notes: [],
  };
}

/**
 * A state reconstructed from the host when the state file is gone: our blocks in the target's config files,
 * our drop-in (CRI-O's, or containerd's where the config imports it), the catalog's binaries and libraries
 * under the prefix. Undefined when nothing of ours is found.
 */
export function discoverState(view: HostView, target: TargetSpec | undefined, handler: string, prefix: string): InstallState | undefined {
  const files: FileRecord[] = [];
  for (const candidate of target ? candidateConfigPaths(target.configEdit, handler, view) : []) {
    const current = view.read(candidate.path);
    if (current === undefined) continue;
    const reverted = revertConfig(candidate.role, current.toString('utf8'), handler, candidate.path);
    if (!reverted.changed) continue;
    files.push(firstRecord(candidate.path, candidate.role, current, sha256(current), view, handler));
  }
  // Every file in <prefix>/lib is one we put there: the prefix is ours.
  const libDir = layout(prefix, RUNTIMES[0]).lib;
  const libraries = (view.list(libDir) ?? []).map((name) => [`${libDir}/${name}`, 'library'] as const);
  for (const runtime of RUNTIMES) {
    const l = layout(prefix, runtime);
    for (const [path, role] of [[l.wrapper, 'wrapper'] as const, [l.binary, 'binary'] as const, ...libraries]) {
      if (files.some((f) => f.path === path)) continue;
      // Streamed; the fingerprint lets the plan that follows in this run take the hash without reading again.
      const current = view.digest(path);
      if (current === undefined) continue;
      files.push({ path, role, created: true, sha256: current.sha256, ...(isBlobRole(role) && current.fingerprint ? { stat: current.fingerprint } : {}) });
    }
  }
  const l = layout(prefix, RUNTIMES[0]);
  const runtimeDirs = RUNTIMES.map((r) => layout(prefix, r).libexecRuntime);
  const createdDirs = [prefix, l.bin, l.lib, l.libexec, ...runtimeDirs].filter((d) => view.isDir(d));
  if (files.length === 0 && !view.isDir(prefix)) return undefined;
  if (files.length === 0 && (view.list(prefix) ?? []).some((n) => !['bin', 'lib', 'libexec'].includes(n))) return undefined;
  const configTarget = target ?? TARGETS[0];
  return {
    schema: 1,
    phase: 'installed',
    target: configTarget.name,
    runtime: RUNTIMES[0].name,
    handler,
    prefix,
    files,
    createdDirs,
    restartPending: false,
  };
}

/**
 * The record for a file we are about to write for the first time. Its original is the file as it would be
 * without our block, so that a file still patched by a lost earlier install is never taken as the original;
 * a file that holds nothing but what we would create counts as created by us.
 */
function firstRecord(path: string, role: FileRole, before: Buffer | FileDigest | undefined, dataSha: string, view: HostView, handler: string): FileRecord {
  if (before === undefined) return { path, role, created: true, sha256: dataSha };
  if (isConfigRole(role)) {
    const text = (Buffer.isBuffer(before) ? before : (view.read(path) as Buffer)).toString('utf8');
    const reverted = revertConfig(role, text, handler, path);
    if (reverted.changed && reverted.deletable) return { path, role, created: true, sha256: dataSha };
    return { path, role, created: false, sha256: dataSha, original: storeBytes(Buffer.from(reverted.text, 'utf8')), originalMode: view.mode(path) };
  }
  // A binary we did not put there (rare: only without a record of it): its bytes are kept to put back on remove.
  const original = Buffer.isBuffer(before) ? before : (view.read(path) as Buffer);
  return { path, role, created: false, sha256: dataSha, original: storeBytes(original), originalMode: view.mode(path) };
}

/** How to take one recorded file back to what it was before us; undefined when it already is. */
function revertOp(view: HostView, record: FileRecord, handler: string, warnings: string[]): FileOp | undefined {
  if (isBlobRole(record.role)) {
    const current = view.digest(record.path, record);
    if (current === undefined) return undefined;
    if (current.sha256 !== record.sha256) warnings.push(`${record.path} changed since install; removing it anyway (it is ours)`);
    if (record.created) return { path: record.path, role: record.role, before: current, after: null, reason: 'delete (created by install)' };
    const original = loadBytes(record.original as NonNullable<FileRecord['original']>);
    return sha256(original) === current.sha256 ? undefined : { path: record.path, role: record.role, before: current, after: original, mode: record.originalMode, reason: 'restore original' };
  }
  const before = view.read(record.path);
  if (before === undefined) return undefined;
  const ours = sha256(before) === record.sha256;
  if (!isConfigRole(record.role)) {
    if (!ours) warnings.push(`${record.path} changed since install; removing it anyway (it is ours)`);
    if (record.created) return { path: record.path, role: record.role, before, after: null, reason: 'delete (created by install)' };
    const original = loadBytes(record.original as NonNullable<FileRecord['original']>);
    return before.equals(original) ? undefined : { path: record.path, role: record.role, before, after: original, mode: record.originalMode, reason: 'restore original' };
  }
  if (ours) {
    if (record.created) return { path: record.path, role: record.role, before, after: null, reason: 'delete (created by install)' };
    const original = record.original ? loadBytes(record.original) : Buffer.alloc(0);
    return before.equals(original) && view.mode(record.path) === record.originalMode
      ? undefined
      : { path: record.path, role: record.role, before, after: original, mode: record.originalMode, reason: 'restore original' };
  }
  // Someone changed the file after us (or the write we recorded never happened): take out only our block.
  const reverted = revertConfig(record.role, before.toString('utf8'), handler, record.path);
  if (record.created && reverted.deletable) {
    return { path: record.path, role: record.role, before, after: null, reason: 'delete (created by install)' };
  }
  if (!reverted.changed) return undefined;
  warnings.push(`${record.path} was changed after install; only the knawd-deployer block is taken out, other edits are kept`);
  return { path: record.path, role: record.role, before, after: Buffer.from(reverted.text, 'utf8'), reason: 'remove managed block' };
}

function missingDirs(view: HostView, dirs: readonly string[]): string[] {
  const missing: string[] = [];
  for (const dir of dirs) {
    const parts = dir.split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = '/' + parts.slice(0, i).join('/');
      if (!view.isDir(p) && !missing.includes(p)) missing.push(p);
    }
  }
  return missing;
}

function parentOf(hostPath: string): string {
  return hostPath.slice(0, hostPath.lastIndexOf('/')) || '/';
}

function unique<T>(items: readonly T[]): T[] {
  return [...new Set(items)];
}

/** `plan`'s output: a unified diff per text file (host paths), a line per binary file. */
export function renderPlan(plan: Plan): string {
  const out: string[] = [];
  for (const dir of plan.mkdirs) out.push(`mkdir ${dir}`);
  for (const op of plan.ops) {
    const binary = op.role === 'binary' || op.role === 'library';
    if (binary) {
      const what = op.after === null ? 'delete' : op.before === undefined ? 'create' : 'replace';
      const [bytes, digest] = op.after === null ? [0, ''] : Buffer.isBuffer(op.after) ? [op.after.length, sha256(op.after)] : [op.after.size, op.after.sha256];
      const size = op.after === null ? '' : ` (${bytes} bytes, sha256 ${digest})`;
      out.push(`${what} ${op.path}${size}`);
      continue;
    }
    const oldText = textOf(op.before);
    const newText = textOf(op.after);
    const oldName = op.before === undefined ? '/dev/null' : op.path;
    const newName = op.after === null ? '/dev/null' : op.path;
    if (oldText === newText) {
      out.push(`chmod ${(op.mode ?? 0o644).toString(8)} ${op.path}`);
      continue;
    }
    out.push(loadDiff().createTwoFilesPatch(oldName, newName, oldText, newText, undefined, undefined, { context: 3 }).trimEnd());
  }
  for (const dir of plan.rmdirs) out.push(`rmdir ${dir} (when empty)`);
  return out.join('\n');
}

/** Text files only: their ops always carry bytes. */
function textOf(content: Buffer | FileDigest | Artifact | null | undefined): string {
  if (content === null || content === undefined) return '';
  if (!Buffer.isBuffer(content)) throw new Error('internal error: a text file op without its bytes');
  return content.toString('utf8');
}

/** Loaded on first use: only `plan` renders diffs; install and status never need the module. */
function loadDiff(): typeof Diff {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('diff') as typeof Diff;
}

/** Config errors from lib/toml become installer errors with a fix; nothing has been written at that point. */
export function planSafely<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigPatchError) {
      throw new InstallerError(`${error.message}; nothing was changed`, 'fix the host file named above, or choose another --handler, then run again');
    }
    throw error;
  }
}

/**
 * The state with the digest of each copy as its staging computed it (host path → sha256): for a copy whose
 * prefix is rewritten, that is the first time it is known (before the intent is written).
 */
export function settleCopyDigests(state: InstallState, copies: ReadonlyMap<string, string>): InstallState {
  if (copies.size === 0) return state;
  return { ...state, files: state.files.map((f) => (copies.has(f.path) ? { ...f, sha256: copies.get(f.path) as string } : f)) };
}

/** The artifacts a plan copies onto the node. */
export function artifactsToCopy(plan: Plan): Artifact[] {
  return plan.ops.flatMap((op) => (op.after !== null && !Buffer.isBuffer(op.after) ? [op.after] : []));
}
