/**
 * The installer's effects, in one visible sequence per command:
 *   install: node lock → locate artifacts → detect → plan → verify the artifacts to copy → apply (state
 *            intent, files, state) → restart → verify (CRI socket) → record → label node / Knative flag
 *   remove:  node lock → detect → unlabel → wait for pods using the handler → restore Knative → plan →
 *            apply configs → restart → verify → remove our files, directories and the state
 * Planning is pure (plan.ts); everything that touches the node goes through {@link Effects}.
 */
import { KNATIVE_FEATURE, INSTALLED_LABEL, TargetSpec, findTarget } from '../catalog';
import { ConfigPatchError } from '../toml';
import { Artifact, locateArtifacts, verifyArtifacts } from './artifacts';
import { containerdMajorOf } from './config-edit';
import { SocketWaiter } from './cri-socket';
import { InstallerError, messageOf } from './errors';
import { coarseTimestamps, HostFs, sameFingerprint } from './host-fs';
import { ClusterApi } from './kube';
import { Logger } from './log';
import { NODE_LOCK, withNodeLock } from './node-lock';
import { discoverState, FileOp, HostView, isBlobRole, layout, Plan, planInstall, planRemove, renderPlan } from './plan';
import { CommandRunner, detectUnit, findReferenceBinary, labelLike, restartUnit, restoreLabels } from './restart';
import { FileRecord, InstallState, isConfigRole, parseState, serializeState, statePath } from './state';
import { Settings } from './settings';

/** Everything that reaches outside the process. Tests inject recorders and fakes. */
export interface Effects {
  readonly fs: HostFs;
  readonly runner: CommandRunner;
  readonly waitForSocket: SocketWaiter;
  /** Undefined when not running against a cluster: the API steps are skipped. */
  readonly cluster?: ClusterApi;
  readonly log: Logger;
}

/** What a run did; the counters are what the benchmark reads. */
export interface RunReport {
  readonly bytesWritten: number;
  readonly filesWritten: number;
  readonly restarts: number;
  /** The runtime has not been restarted since its config changed (`--restart none`). */
  readonly restartPending: boolean;
  /** Host paths created, changed or deleted. */
  readonly changed: readonly string[];
}

// ---------------------------------------------------------------------------------------------- shared steps

/**
 * The planning view of the host. Reads are cached for the view's life (planning never writes, so each
 * config is read once per run however many steps look at it). `digest` trusts a record's fingerprint only
 * while the file's stat still matches it exactly (size, mtime, ctime, inode, mode: any write, chmod, label
 * change or utimes() moves ctime, which cannot be set back). On a file system with whole-second timestamps a
 * file rewritten within the same second keeps its stat, so there the fingerprint is trusted only when the
 * file last changed strictly before `stateWrittenMs` (the state file's mtime; git's "racily clean" rule).
 * Without a state file (a state discovered in this run) the fingerprints were taken by this run just now.
 */
export function hostView(fs: HostFs, stateWrittenMs?: number): HostView {
  const reads = new Map<string, Buffer | undefined>();
  const read = (p: string): Buffer | undefined => {
    if (!reads.has(p)) reads.set(p, fs.read(p));
    return reads.get(p);
  };
  return {
    read,
    readText: (p) => read(p)?.toString('utf8'),
    digest: (p, known) => {
      if (known?.stat) {
        const now = fs.fingerprint(p);
        if (now && sameFingerprint(now, known.stat)) {
          const settled = !coarseTimestamps(now) || stateWrittenMs === undefined || Math.max(now.mtimeMs, now.ctimeMs) < stateWrittenMs;
          if (settled) return { sha256: known.sha256, size: now.size, fingerprint: now };
        }
      }
      return fs.digest(p);
    },
    list: (p) => (fs.stat(p)?.kind === 'dir' ? fs.list(p) : undefined),
    isDir: (p) => fs.stat(p)?.kind === 'dir',
    mode: (p) => fs.stat(p)?.mode,
  };
}

/** The state and the view to plan against it (fingerprints checked against the state file's mtime). */
function loadPlanning(fs: HostFs, prefix: string): { recorded: InstallState | undefined; view: HostView } {
  const recorded = loadState(fs, prefix);
  return { recorded, view: hostView(fs, recorded ? fs.fingerprint(statePath(prefix))?.mtimeMs : undefined) };
}

/** The node root must be an existing directory that looks like a root file system (etc/; run/ for the lock). */
export function checkNodeRoot(fs: HostFs): void {
  const root = fs.stat('/');
  if (root?.kind !== 'dir') {
    throw new InstallerError(`node root ${fs.nodeRoot} does not exist or is not a directory`, "mount the host's / there (hostPath /) or pass --node-root");
  }
  for (const dir of ['etc', 'run']) {
    if (fs.stat(`/${dir}`)?.kind !== 'dir') {
      throw new InstallerError(`node root ${fs.nodeRoot} has no ${dir}/ directory: it is not a host's root file system`, "mount the host's / there (hostPath /) or pass --node-root");
    }
  }
}

/** Checks the node root, then runs `work` holding the node lock: install and remove runs never interleave. */
function locked<T>(settings: Settings, effects: Effects, work: () => Promise<T>): Promise<T> {
  checkNodeRoot(effects.fs);
  return withNodeLock(effects.fs.local(NODE_LOCK), settings.lockTimeoutSeconds, effects.log, work);
}

export function loadState(fs: HostFs, prefix: string): InstallState | undefined {
  const data = fs.read(statePath(prefix));
  return data === undefined ? undefined : parseState(data, statePath(prefix));
}

/** Writes the state only when its bytes differ, so an unchanged install writes nothing. */
function saveState(fs: HostFs, state: InstallState): void {
  const data = serializeState(state);
  const current = fs.read(statePath(state.prefix));
  if (current === undefined || !current.equals(data)) fs.writeFile(statePath(state.prefix), data, 0o600);
}

/**
 * SELinux counts as enabled when selinuxfs is mounted on the node (`/sys/fs/selinux/enforce` exists, whether
 * enforcing or permissive: labels must be right before anyone switches to enforcing), or, where /sys is not
 * visible, when /etc/selinux/config says SELINUX=enforcing or permissive.
 */
export function selinuxEnabled(fs: HostFs): boolean {
  if (fs.stat('/sys/fs/selinux/enforce')?.kind === 'file') return true;
  const config = fs.stat('/etc/selinux/config')?.kind === 'file' ? fs.read('/etc/selinux/config')?.toString('utf8') : undefined;
  return /^\s*SELINUX\s*=\s*(enforcing|permissive)\s*$/m.test(config ?? '');
}

async function nodeContainerdMajor(settings: Settings, effects: Effects): Promise<1 | 2 | undefined> {
  if (!effects.cluster || !settings.nodeName) return undefined;
  try {
    const node = await effects.cluster.getNode(settings.nodeName);
    return containerdMajorOf(node.containerRuntimeVersion);
  } catch (error) {
    effects.log.warn('cannot read the node object; using the catalog default containerd version', { error: messageOf(error) });
    return undefined;
  }
}

function applyOp(fs: HostFs, op: FileOp, log: Logger): void {
  log.debug(`${op.reason}: ${op.path}`, { path: op.path, role: op.role });
  if (op.after === null) fs.removeFile(op.path);
  else if (Buffer.isBuffer(op.after)) fs.writeFile(op.path, op.after, op.mode);
  else fs.copyFile(op.path, op.after.file, op.after.sha256, op.mode);
}

/**
 * The binary and library records with the fingerprint of what we just wrote (taken after labelling, which
 * changes ctime), so the next run can skip hashing them. The copy was verified as it was written. With
 * whole-second timestamps none is recorded (the state is written within the same second): the next run
 * hashes once and records the fingerprint of a file that is by then settled.
 */
function withFreshFingerprints(fs: HostFs, files: readonly FileRecord[], written: ReadonlySet<string>): FileRecord[] {
  return files.map((record) => {
    if (!isBlobRole(record.role) || !written.has(record.path)) return record;
    const stat = fs.fingerprint(record.path);
    return stat && !coarseTimestamps(stat) ? { ...record, stat } : record;
  });
}

function requireVariant(settings: Settings): { target: TargetSpec; runtime: NonNullable<Settings['runtime']> } {
  if (!settings.target || !settings.runtime) throw new InstallerError('--target and --runtime are required', 'pass --target and --runtime (or VENDOR and OCI_TYPE)', 2);
  return { target: settings.target, runtime: settings.runtime };
}

/** Config errors from lib/toml become installer errors with a fix; nothing has been written at that point. */
function planSafely<T>(fn: () => T): T {
  try {
    return fn();
  } catch (error) {
    if (error instanceof ConfigPatchError) {
      throw new InstallerError(`${error.message}; nothing was changed`, 'fix the host file named above, or choose another --handler, then run again');
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------- plan

export interface PlanOutput {
  readonly plan: Plan;
  /** The diff and a summary line, for humans. */
  readonly text: string;
}

export async function planCommand(settings: Settings, effects: Effects): Promise<PlanOutput> {
  const { target, runtime } = requireVariant(settings);
  const artifacts = locateArtifacts(settings.artifacts, target, runtime);
  checkNodeRoot(effects.fs);
  const { recorded, view } = loadPlanning(effects.fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const major = await nodeContainerdMajor(settings, effects);
  const selinux = selinuxEnabled(effects.fs);
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, nodeContainerdMajor: major, selinux }, previous),
  );
  // The plan shows what install would do, so it fails as install would on a damaged artifact.
  verifyArtifacts(artifactsToCopy(plan));
  const units = target.restartUnits.length === 1 ? target.restartUnits[0] : `${target.restartUnits.join(' or ')} (whichever exists)`;
  const restart = plan.next?.restartPending
    ? settings.restart === 'auto'
      ? `restart: ${units} would be restarted`
      : `restart: needed (${units}) but --restart none: it would stay pending`
    : 'restart: not needed';
  const body = renderPlan(plan);
  const summary = plan.ops.length === 0 && plan.mkdirs.length === 0 ? 'no changes' : `${plan.ops.length} file(s) would change`;
  const notes = [...plan.notes.map((n) => `note: ${n}`), ...plan.warnings.map((w) => `warning: ${w}`)];
  return { plan, text: [body, ...notes, summary, restart].filter((s) => s !== '').join('\n') + '\n' };
}

/** The artifacts a plan copies onto the node. */
function artifactsToCopy(plan: Plan): Artifact[] {
  return plan.ops.flatMap((op) => (op.after !== null && !Buffer.isBuffer(op.after) ? [op.after] : []));
}

// ---------------------------------------------------------------------------------------------- install

export function install(settings: Settings, effects: Effects): Promise<RunReport> {
  const { target, runtime } = requireVariant(settings);
  return locked(settings, effects, () => installLocked(settings, effects, target, runtime));
}

async function installLocked(settings: Settings, effects: Effects, target: TargetSpec, runtime: NonNullable<Settings['runtime']>): Promise<RunReport> {
  const { fs, log } = effects;
  const artifacts = locateArtifacts(settings.artifacts, target, runtime);

  // detect
  // Without a state file, what an earlier install left (our block, our files) is recognised, never taken as original.
  const { recorded, view } = loadPlanning(fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const major = await nodeContainerdMajor(settings, effects);
  const selinux = selinuxEnabled(fs);
  log.debug('detected', { target: target.name, previous: previous?.phase ?? 'none', containerdMajor: major, selinux });

  // plan
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, nodeContainerdMajor: major, selinux }, previous),
  );
  plan.notes.forEach((n) => log.info(n));
  plan.warnings.forEach((w) => log.warn(w));
  let next = plan.next as InstallState;
  // Before the first write: every artifact this run copies hashes to its SHA256SUMS entry.
  const copies = artifactsToCopy(plan);
  verifyArtifacts(copies);
  if (copies.length > 0) log.info('artifacts verified', { artifacts: copies.map((a) => a.name) });

  // apply
  const changed: string[] = [];
  if (plan.ops.length > 0 || plan.mkdirs.length > 0) {
    const prefixDirs = plan.mkdirs.filter((d) => settings.prefix === d || settings.prefix.startsWith(d + '/'));
    prefixDirs.forEach((d) => fs.mkdir(d));
    // The intent: everything this run may touch, so that a crash at any later point can be finished or undone.
    const stale = (previous?.files ?? []).filter((f) => !next.files.some((n) => n.path === f.path));
    saveState(fs, { ...next, phase: 'installing', files: [...next.files, ...stale] });
    plan.mkdirs.filter((d) => !prefixDirs.includes(d)).forEach((d) => fs.mkdir(d));
    for (const op of plan.ops) {
      applyOp(fs, op, log);
      changed.push(op.path);
    }
    log.info('files installed', { changed });
  }
  const written = new Set(plan.ops.filter((op) => op.after !== null).map((op) => op.path));
  if (selinux) {
    // Labels are set when a labelled file was (re)written, and on every file when the last run did not
    // finish or did not label (older state, SELinux enabled since): an unchanged, labelled node runs nothing.
    const l = layout(settings.prefix, runtime);
    const all = previous?.phase !== 'installed' || previous.selinuxLabelled !== true;
    const executables = [l.wrapper, l.binary].filter((p) => all || written.has(p));
    if (executables.length > 0) await labelLike(effects.runner, await findReferenceBinary(effects.runner), executables);
    const configs = next.files.filter((f) => isConfigRole(f.role) && (written.has(f.path) || (all && fs.exists(f.path)))).map((f) => f.path);
    await restoreLabels(effects.runner, configs);
  }
  next = { ...next, files: withFreshFingerprints(fs, next.files, written) };

  // restart + verify
  let restarts = 0;
  let restartPending = next.restartPending;
  if (restartPending && settings.restart === 'none') {
    log.warn(`restart pending: the ${target.cri} config changed but --restart none was given`, {
      fix: `restart it on the node (systemctl restart ${target.restartUnits.join(' or ')}), then run install again to clear this`,
    });
  } else if (restartPending) {
    try {
      restarts += await restartAndVerify(settings, effects, target);
      restartPending = false;
    } catch (error) {
      if (!plan.configChanged) throw error;
      throw await rollBack(settings, effects, target, error);
    }
  }
  saveState(fs, { ...next, phase: 'installed', restartPending });

  // label + Knative
  if (!restartPending) await labelNode(settings, effects, 'set');
  if (settings.patchKnative) await enableKnative(settings, effects);

  const report = { ...countersOf(fs), restarts, restartPending, changed };
  log.info('install complete', { ...report, changed: changed.length });
  return report;
}

async function restartAndVerify(settings: Settings, effects: Effects, target: TargetSpec): Promise<number> {
  const unit = await detectUnit(effects.runner, target.restartUnits);
  effects.log.info(`restarting ${unit}`);
  await restartUnit(effects.runner, unit);
  const socket = effects.fs.local(target.criSocket);
  const ok = await effects.waitForSocket(socket, settings.socketTimeoutSeconds * 1000);
  if (!ok) {
    throw new InstallerError(
      `${unit} was restarted but ${target.criSocket} did not accept connections within ${settings.socketTimeoutSeconds} s`,
      `look at \`journalctl -u ${unit}\` on the node`,
    );
  }
  effects.log.info(`${unit} is back`, { socket: target.criSocket });
  return 1;
}

/** The runtime did not come back with our config: put the node back as it was and restart again. */
async function rollBack(settings: Settings, effects: Effects, target: TargetSpec, cause: unknown): Promise<InstallerError> {
  const reason = messageOf(cause);
  effects.log.error('the runtime did not come back after the config change; rolling the install back', { error: reason });
  try {
    const state = loadState(effects.fs, settings.prefix);
    if (state) await removeFromState(settings, effects, target, { ...state, restartPending: true }, []);
  } catch (error) {
    return new InstallerError(
      `${reason}; rolling back failed too: ${messageOf(error)}`,
      `the node's ${target.cri} may not be running: run \`knawd-installer remove\` and look at journalctl on the node`,
    );
  }
  return new InstallerError(`${reason}; the install was rolled back and the node's config restored`, 'look at the runtime\'s journal on the node for why it rejected the config, then install again');
}

async function labelNode(settings: Settings, effects: Effects, action: 'set' | 'remove'): Promise<void> {
  const { cluster, log } = effects;
  if (!cluster) {
    log.info('not running against a cluster (no in-cluster config, no kubeconfig): skipping the node label');
    return;
  }
  if (!settings.nodeName) {
    log.warn('no node name (NODE_NAME or --node-name): skipping the node label', { fix: 'set NODE_NAME from spec.nodeName in the pod' });
    return;
  }
  const node = await cluster.getNode(settings.nodeName);
  const current = node.labels[INSTALLED_LABEL.key];
  if (action === 'set' && current !== INSTALLED_LABEL.value) {
    await cluster.setNodeLabel(settings.nodeName, INSTALLED_LABEL.key, INSTALLED_LABEL.value);
    log.info(`labelled node ${settings.nodeName} ${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`);
  } else if (action === 'remove' && current !== undefined) {
    await cluster.setNodeLabel(settings.nodeName, INSTALLED_LABEL.key, null);
    log.info(`removed label ${INSTALLED_LABEL.key} from node ${settings.nodeName}`);
  }
}

async function enableKnative(settings: Settings, effects: Effects): Promise<void> {
  const { cluster, log, fs } = effects;
  if (!cluster) return;
  const { namespace, configMap, key, value } = KNATIVE_FEATURE;
  try {
    const current = await cluster.getConfigMapKey(namespace, configMap, key);
    if (!current.found) {
      log.warn(`Knative not found (no ConfigMap ${namespace}/${configMap}): not enabling ${key}`);
      return;
    }
    if (current.value === value) return;
    // Record the previous value before changing it, so that remove restores it even after a crash here.
    const state = loadState(fs, settings.prefix);
    if (state && !state.knative) saveState(fs, { ...state, knative: { previous: current.value ?? null } });
    await cluster.setConfigMapKey(namespace, configMap, key, value);
    log.info(`enabled Knative feature ${key}`, { previous: current.value ?? null });
  } catch (error) {
    log.warn(`could not enable Knative feature ${key}: ${messageOf(error)}`, {
      fix: `kubectl -n ${namespace} patch configmap ${configMap} --type merge -p '{"data":{"${key}":"${value}"}}'`,
    });
  }
}

async function restoreKnative(state: InstallState, effects: Effects): Promise<void> {
  const { cluster, log } = effects;
  if (!cluster || !state.knative) return;
  const { namespace, configMap, key, value } = KNATIVE_FEATURE;
  try {
    const current = await cluster.getConfigMapKey(namespace, configMap, key);
    // Only undo our own change: if someone set another value since, it is theirs.
    if (!current.found || current.value !== value) return;
    await cluster.setConfigMapKey(namespace, configMap, key, state.knative.previous);
    log.info(`restored Knative feature ${key}`, { value: state.knative.previous });
  } catch (error) {
    log.warn(`could not restore Knative feature ${key}: ${messageOf(error)}`, {
      fix: `kubectl -n ${namespace} patch configmap ${configMap} --type merge -p '{"data":{"${key}":${JSON.stringify(state.knative.previous)}}}'`,
    });
  }
}

function countersOf(fs: HostFs): { bytesWritten: number; filesWritten: number } {
  return { bytesWritten: fs.counters.bytesWritten, filesWritten: fs.counters.filesWritten };
}

// ---------------------------------------------------------------------------------------------- remove

const POD_POLL_MS = 2000;

/**
 * Waits, bounded, until no pod on this node runs with our handler, and refuses to go on while one does:
 * taking the handler away under a running pod leaves it stuck Terminating. The node is already unlabelled,
 * so the RuntimeClass schedules no new ones here meanwhile.
 */
async function waitForHandlerPods(settings: Settings, effects: Effects, handler: string): Promise<void> {
  const { cluster, log } = effects;
  if (!cluster || !settings.nodeName) return;
  const node = settings.nodeName;
  const deadline = Date.now() + settings.podsTimeoutSeconds * 1000;
  let pods = await cluster.podsUsingHandler(node, handler);
  if (pods.length > 0) log.info(`waiting up to ${settings.podsTimeoutSeconds} s for ${pods.length} pod(s) using handler ${handler} to finish`, { pods });
  while (pods.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(POD_POLL_MS, Math.max(0, deadline - Date.now()))));
    pods = await cluster.podsUsingHandler(node, handler);
  }
  if (pods.length > 0) {
    const shown = pods.slice(0, 5).join(', ') + (pods.length > 5 ? `, and ${pods.length - 5} more` : '');
    throw new InstallerError(
      `${pods.length} pod(s) on node ${node} still run with handler ${handler} (${shown}); nothing was removed`,
      `delete or move those pods (e.g. kubectl drain ${node}), then run remove again; the node is unlabelled, so no new ones land here`,
    );
  }
}

export function remove(settings: Settings, effects: Effects): Promise<RunReport> {
  return locked(settings, effects, () => removeLocked(settings, effects));
}

async function removeLocked(settings: Settings, effects: Effects): Promise<RunReport> {
  const { fs, log } = effects;
  const recorded = loadState(fs, settings.prefix);
  const state = recorded ?? planSafely(() => discoverState(hostView(fs), settings.target, settings.handler, settings.prefix));
  // Unlabel first: the RuntimeClass stops scheduling pods here before the handler goes away.
  await labelNode(settings, effects, 'remove');
  if (!state) {
    log.info('nothing installed: nothing to do');
    return { ...countersOf(fs), restarts: 0, restartPending: false, changed: [] };
  }
  if (!recorded) log.warn('no installer state found; removing what was recognised on the node', { files: state.files.map((f) => f.path) });
  if (settings.target && settings.target.name !== state.target) {
    log.warn(`the node was installed for target ${state.target}, not ${settings.target.name}: removing what was installed`);
  }
  const target = findTarget(state.target);
  await waitForHandlerPods(settings, effects, state.handler);
  await restoreKnative(state, effects);
  const changed: string[] = [];
  const report = await removeFromState(settings, effects, target, state, changed);
  log.info('remove complete', { ...report, changed: changed.length });
  return report;
}

async function removeFromState(settings: Settings, effects: Effects, target: TargetSpec, state: InstallState, changed: string[]): Promise<RunReport> {
  const { fs, log } = effects;
  const plan = planSafely(() => planRemove(hostView(fs), state));
  plan.warnings.forEach((w) => log.warn(w));
  let restartPending = state.restartPending || plan.configChanged;
  if (fs.exists(statePath(state.prefix)) && (plan.ops.length > 0 || state.phase !== 'removing')) {
    saveState(fs, { ...state, phase: 'removing', restartPending });
  }
  // Configs first: the runtime must stop referring to the handler before its binary goes.
  for (const op of plan.ops.filter((o) => isConfigRole(o.role))) {
    applyOp(fs, op, log);
    changed.push(op.path);
  }
  let restarts = 0;
  if (restartPending && settings.restart === 'none') {
    log.warn(`restart pending: the ${target.cri} config was reverted but --restart none was given`, {
      fix: `restart it on the node: systemctl restart ${target.restartUnits.join(' or ')}`,
    });
  } else if (restartPending) {
    restarts += await restartAndVerify(settings, effects, target);
    restartPending = false;
  }
  for (const op of plan.ops.filter((o) => !isConfigRole(o.role))) {
    applyOp(fs, op, log);
    changed.push(op.path);
  }
  // Directories we created, deepest first; the prefix (which holds the state) last.
  const ownsPrefix = (d: string): boolean => d === state.prefix || state.prefix.startsWith(d + '/');
  for (const dir of plan.rmdirs.filter((d) => !ownsPrefix(d))) {
    if (!fs.removeDir(dir)) log.warn(`${dir} is not empty: left in place`);
  }
  fs.removeFile(statePath(state.prefix));
  for (const dir of plan.rmdirs.filter(ownsPrefix)) {
    if (!fs.removeDir(dir)) log.warn(`${dir} is not empty: left in place`);
  }
  return { ...countersOf(fs), restarts, restartPending, changed };
}
