/**
 * The installer's effects, in one visible sequence per command:
 *   install: node lock → node object → target (auto: which one this node is; given: refused when the node
 *            contradicts it) → locate artifacts → detect (state, runtime binary) → plan → verify the
 *            artifacts to copy → pre-flight (the node's runtime loads the new config) → node pending, host
 *            changed → apply (state intent, files, state) → restart → verify (socket, CRI Status, the Node's
 *            runtimeHandlers; else roll back) → record → node installed / Knative flag
 *   remove:  node lock → node object (with auto: the target, never refused) → state (else what is found) →
 *            node unlabelled → wait for pods using the handler → restore Knative → plan → apply configs → restart
 *            → verify (handler gone) → remove our files, directories and the state → host restored
 * A failed install labels the node `failed` and records the reason as an Event on it. Planning is pure
 * (plan/); everything that touches the node goes through {@link Effects}. `plan`, `status` and `wait-removed`
 * live in commands/.
 */
import { AUTO_TARGET, HOST_CHANGED_LABEL, TargetSpec, TARGETS, findTarget } from '../catalog';
import { locateArtifacts, verifyArtifacts } from './artifacts';
import { InstallerError, messageOf } from './errors';
import { CommandRunner } from './host/commands';
import { coarseTimestamps, HostFs } from './host/fs';
import { NODE_LOCK, withNodeLock } from './host/lock';
import { checkNodeRoot } from './host/node-root';
import { findReferenceBinary, labelLike, restoreLabels, selinuxEnabled } from './host/selinux';
import { ClusterApi, NodeInfo } from './kube/cluster';
import { mergeKnativeRecord, restoreKnative, wireKnative } from './kube/knative';
import { NodeStatus } from './kube/node-state';
import { Logger } from './log';
import { hostView, loadPlanning, loadState, saveState } from './plan/host-view';
import { artifactsToCopy, discoverState, FileOp, isBlobRole, layout, planInstall, planRemove, planSafely, settleCopyDigests } from './plan/plan';
import { FileRecord, InstallState, isConfigRole, statePath } from './plan/state';
import { CriStatusReader } from './runtime/cri-status';
import { detectRuntime, NodeRuntime, readNode } from './runtime/detect';
import { decideTarget, gatherEvidence, resolveTarget, TargetMismatchError } from './runtime/detect-target';
import { clearPreflightLeftovers } from './runtime/loader';
import { preflight } from './runtime/preflight';
import { detectUnit, restartUnit } from './runtime/restart';
import { SocketWaiter } from './runtime/socket';
import { checkNodeLists, checkRuntimeServes } from './runtime/verify';
import { requireVariant, Settings } from './settings';

/** Everything that reaches outside the process. Tests inject recorders and fakes. */
export interface Effects {
  readonly fs: HostFs;
  readonly runner: CommandRunner;
  readonly waitForSocket: SocketWaiter;
  /** Asks the runtime which handlers it serves (CRI Status). */
  readonly readCriStatus: CriStatusReader;
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

/** Checks the node root, then runs `work` holding the node lock: install and remove runs never interleave. */
function locked<T>(settings: Settings, effects: Effects, work: () => Promise<T>): Promise<T> {
  checkNodeRoot(effects.fs);
  return withNodeLock(effects.fs.local(NODE_LOCK), settings.lockTimeoutSeconds, effects.log, work);
}

function applyOp(fs: HostFs, op: FileOp, log: Logger): void {
  log.debug(`${op.reason}: ${op.path}`, { path: op.path, role: op.role });
  if (op.after === null) fs.removeFile(op.path);
  else if (Buffer.isBuffer(op.after)) fs.writeFile(op.path, op.after, op.mode);
  else fs.copyFile(op.path, op.after.file, op.after.sha256, op.mode, op.after.rewrite);
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

// ---------------------------------------------------------------------------------------------- install

export function install(settings: Settings, effects: Effects): Promise<RunReport> {
  const { target: choice, runtime } = requireVariant(settings);
  return locked(settings, effects, async () => {
    const nodeObject = await readNode(effects.cluster, settings.nodeName, effects.log);
    const status = NodeStatus.of(effects.cluster, settings.nodeName, effects.log, nodeObject?.labels);
    try {
      const { target } = resolveTarget(choice, runtime, effects.fs, nodeObject, settings.nodeName, effects.log);
      const node = await detectRuntime(target, effects.fs, effects.runner, nodeObject, effects.log);
      return await installLocked(settings, effects, target, runtime, node, status);
    } catch (error) {
      await reportFailure(status, 'InstallFailed', error, effects.log);
      throw error;
    }
  });
}

async function installLocked(
  settings: Settings,
  effects: Effects,
  target: TargetSpec,
  runtime: NonNullable<Settings['runtime']>,
  node: NodeRuntime,
  status: NodeStatus,
): Promise<RunReport> {
  const { fs, log } = effects;
  const artifacts = locateArtifacts(settings.artifacts, target, runtime, settings.prefix);
  clearPreflightLeftovers(fs, target);

  // detect
  // Without a state file, what an earlier install left (our block, our files) is recognised, never taken as original.
  const { recorded, view } = loadPlanning(fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const selinux = selinuxEnabled(fs);
  log.debug('detected', { target: target.name, previous: previous?.phase ?? 'none', runtime: node.version, runtimeBinary: node.binary?.path, selinux });

  // plan
  const l = layout(settings.prefix, runtime);
  const plan = planSafely(() =>
    planInstall(
      view,
      {
        target,
        runtime,
        handler: settings.handler,
        prefix: settings.prefix,
        artifacts,
        runtimeVersion: node.version,
        runtimeVersionText: node.versionText,
        runtimeVersionSource: node.versionSource,
        selinux,
      },
      previous,
    ),
  );
  plan.notes.forEach((n) => log.info(n));
  plan.warnings.forEach((w) => log.warn(w));
  // Before the first write: every artifact this run copies hashes to its SHA256SUMS entry (and the digest of
  // each copy whose prefix is rewritten is known, for the intent), and the node's own runtime reads the new
  // config as we mean it.
  const copies = artifactsToCopy(plan);
  let next = settleCopyDigests(plan.next as InstallState, plan, verifyArtifacts(copies));
  if (copies.length > 0) log.info('artifacts verified', { artifacts: copies.map((a) => a.name) });
  if (plan.configChanged) await preflight({ target, plan, handler: settings.handler, binaryPath: l.wrapper, binary: node.binary }, fs, effects.runner, log);

  // apply
  const changed: string[] = [];
  const writes = plan.ops.length > 0 || plan.mkdirs.length > 0;
  if (writes || next.restartPending) {
    await status.report({
      state: 'pending',
      hostChanged: true,
      event: status.state === 'pending' ? undefined : { type: 'Normal', reason: 'Installing', message: `installing ${runtime.name} as handler ${settings.handler} for target ${target.name}` },
    });
  }
  if (writes) {
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
      restarts += await restartAndVerify(settings, effects, target, 'served');
      if (node.nodeHandlers && effects.cluster && settings.nodeName) {
        await checkNodeLists(effects.cluster, settings.nodeName, settings.handler, settings.socketTimeoutSeconds * 1000, log);
      }
      restartPending = false;
    } catch (error) {
      if (!plan.configChanged) throw error;
      throw await rollBack(settings, effects, target, error, status);
    }
  }
  saveState(fs, { ...next, phase: 'installed', restartPending });

  // label + Knative
  if (restartPending) {
    await status.report({ state: 'pending', hostChanged: true });
  } else {
    const became = status.state !== 'installed';
    await status.report({
      state: 'installed',
      hostChanged: true,
      event: became ? { type: 'Normal', reason: 'Installed', message: `${target.cri} serves handler ${settings.handler} (${runtime.name}, target ${target.name})` } : undefined,
    });
  }
  if (effects.cluster) {
    await wireKnative(effects.cluster, log, settings, (knative) => {
      const state = loadState(fs, settings.prefix);
      if (state) saveState(fs, { ...state, knative: mergeKnativeRecord(state.knative, knative) });
    });
  }

  const report = { ...countersOf(fs), restarts, restartPending, changed };
  log.info('install complete', { ...report, changed: changed.length });
  return report;
}

/** The node `failed` with the reason as a Warning Event; a failure to report is logged, never hides the cause. */
async function reportFailure(status: NodeStatus, reason: 'InstallFailed' | 'RemoveFailed' | 'RemoveRefused', error: unknown, log: Logger): Promise<void> {
  try {
    await status.report({ ...(reason === 'InstallFailed' ? { state: 'failed' as const } : {}), event: { type: 'Warning', reason, message: messageOf(error).slice(0, 1000) } });
  } catch (reportError) {
    log.warn(`could not report the failure on the node: ${messageOf(reportError)}`);
  }
}

async function restartAndVerify(settings: Settings, effects: Effects, target: TargetSpec, expect: 'served' | 'gone'): Promise<number> {
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
  await checkRuntimeServes({ target, handler: settings.handler, socket, readStatus: effects.readCriStatus, timeoutMs: settings.socketTimeoutSeconds * 1000, log: effects.log, expect });
  return 1;
}

/** The runtime did not come back with our config: put the node back as it was and restart again. */
async function rollBack(settings: Settings, effects: Effects, target: TargetSpec, cause: unknown, status: NodeStatus): Promise<InstallerError> {
  const reason = messageOf(cause);
  effects.log.error('the runtime did not come back serving the handler after the config change; rolling the install back', { error: reason });
  try {
    const state = loadState(effects.fs, settings.prefix);
    if (state) await removeFromState(settings, effects, target, { ...state, restartPending: true }, []);
    await status.report({ hostChanged: false });
  } catch (error) {
    return new InstallerError(
      `${reason}; rolling back failed too: ${messageOf(error)}`,
      `the node's ${target.cri} may not be running: run \`knawd-installer remove\` and look at journalctl on the node`,
    );
  }
  return new InstallerError(`${reason}; the install was rolled back and the node's config restored`, 'look at the runtime\'s journal on the node for why it rejected the config, then install again');
}

function countersOf(fs: HostFs): { bytesWritten: number; filesWritten: number } {
  return { bytesWritten: fs.counters.bytesWritten, filesWritten: fs.counters.filesWritten };
}

// ---------------------------------------------------------------------------------------------- remove

const POD_POLL_MS = 2000;

/** remove's refusal while pods still run with the handler: nothing was changed, a later run goes on. */
class PodsStillRunning extends InstallerError {}

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
    throw new PodsStillRunning(
      `${pods.length} pod(s) on node ${node} still run with handler ${handler} (${shown}); nothing was removed`,
      `delete or move those pods (e.g. kubectl drain ${node}), then run remove again; the node is unlabelled, so no new ones land here`,
    );
  }
}

export function remove(settings: Settings, effects: Effects): Promise<RunReport> {
  return locked(settings, effects, async () => {
    const node = await nodeObject(settings, effects);
    const status = NodeStatus.of(effects.cluster, settings.nodeName, effects.log, node?.labels ?? {});
    try {
      return await removeLocked(settings, effects, status, removeTarget(settings, effects, node));
    } catch (error) {
      await reportFailure(status, error instanceof PodsStillRunning ? 'RemoveRefused' : 'RemoveFailed', error, effects.log);
      throw error;
    }
  });
}

/** The Node, or none without a cluster; a failure to read it stops remove before it changes anything. */
async function nodeObject(settings: Settings, effects: Effects): Promise<NodeInfo | undefined> {
  if (!effects.cluster || !settings.nodeName) return undefined;
  return effects.cluster.getNode(settings.nodeName);
}

/**
 * What remove looks for when no state file says what was installed: the given target, or with `auto` the one
 * the node is; a node `auto` cannot place is searched for every target's leftovers. Never refused: remove takes
 * away what is there.
 */
function removeTarget(settings: Settings, effects: Effects, node: NodeInfo | undefined): TargetSpec | undefined {
  if (settings.target !== AUTO_TARGET) return settings.target;
  try {
    return decideTarget(AUTO_TARGET, undefined, gatherEvidence(effects.fs, node, settings.nodeName)).target;
  } catch (error) {
    if (!(error instanceof TargetMismatchError)) throw error;
    effects.log.info(`${error.message.replace(/; nothing was changed$/, '')}: remove goes by the state file, else by what any target leaves`);
    return undefined;
  }
}

async function removeLocked(settings: Settings, effects: Effects, status: NodeStatus, given: TargetSpec | undefined): Promise<RunReport> {
  const { fs, log } = effects;
  for (const t of given ? [given] : TARGETS) clearPreflightLeftovers(fs, t);
  const recorded = loadState(fs, settings.prefix);
  const state = recorded ?? planSafely(() => discoverState(hostView(fs), given, settings.handler, settings.prefix));
  // Unlabel first: the RuntimeClass stops scheduling pods here before the handler goes away.
  await status.report({
    state: null,
    event: status.state !== undefined && state ? { type: 'Normal', reason: 'Removing', message: `removing handler ${state.handler} from this node` } : undefined,
  });
  if (!state) {
    log.info('nothing installed: nothing to do');
    await status.report({ hostChanged: false });
    return { ...countersOf(fs), restarts: 0, restartPending: false, changed: [] };
  }
  if (!recorded) log.warn('no installer state found; removing what was recognised on the node', { files: state.files.map((f) => f.path) });
  if (given && settings.target !== AUTO_TARGET && given.name !== state.target) {
    log.warn(`the node was installed for target ${state.target}, not ${given.name}: removing what was installed`);
  }
  // The detected target knows the node's restart unit; the state names the target that was installed.
  const target = given?.name === state.target ? given : findTarget(state.target);
  await waitForHandlerPods(settings, effects, state.handler);
  if (effects.cluster && state.knative) await restoreKnative(effects.cluster, log, state.knative);
  const changed: string[] = [];
  const report = await removeFromState(settings, effects, target, state, changed);
  if (report.restartPending) {
    log.warn(`the node keeps the ${HOST_CHANGED_LABEL.key} label until its ${target.cri} was restarted`, {
      fix: `restart it (systemctl restart ${target.restartUnits.join(' or ')}), then run remove again to clear the label`,
    });
  } else {
    await status.report({ hostChanged: false, event: { type: 'Normal', reason: 'Restored', message: `handler ${state.handler} removed; the node's ${target.cri} config is restored` } });
  }
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
    restarts += await restartAndVerify(settings, effects, target, 'gone');
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
