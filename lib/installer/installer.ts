/**
 * The installer's effects, in one visible sequence per command:
 *   install: node lock → node object → target (auto: which one this node is; given: refused when the node
 *            contradicts it) → locate artifacts → detect (state, runtime binary) → plan → [drift check: stop
 *            here unless the node drifted] → the host can take it → pre-flight (the node's runtime loads the new
 *            config) → node pending, host changed → apply (state intent; each artifact copied to its temp file
 *            and verified, then all put in place; the other files; state) → take a restart slot → restart →
 *            verify (socket, CRI Status, the Node's runtimeHandlers; else roll back) → release the slot → record →
 *            node installed (readiness marker) / startup taint / Knative flag
 *   remove:  node lock → node object (with auto: the target, never refused) → state (else what is found) →
 *            node unlabelled → wait for pods using the handler → restore Knative → plan → apply configs → take a
 *            restart slot → restart → verify (handler gone) → release the slot → remove our files, directories
 *            and the state → host restored
 * A failed install labels the node `failed` and records the reason as an Event on it. Planning is pure
 * (plan/); everything that touches the node goes through {@link Effects}. `plan`, `status` (and its
 * `--cluster` view) and `wait-removed` live in commands/.
 *
 * Faults: before the first write the host must be able to take the run (host/prewrite.ts: writable, room,
 * configs unchanged since planned), or it is refused with nothing changed; a runtime that was not running is
 * not restarted (unless --start-stopped-runtime); a stop requested by SIGTERM/SIGINT (host/signals.ts) is
 * honoured at the step boundaries below, with the step in progress finished first.
 */
import { AUTO_TARGET, HOST_CHANGED_LABEL, ORIGINAL_HANDLER, RUNTIMES, TargetSpec, TARGETS, findTarget } from '../catalog';
import { Artifact, locateArtifacts } from './artifacts';
import { InstallerError, messageOf } from './errors';
import { CommandRunner } from './host/commands';
import { readCompileCache, removeCompileCache } from './host/compile-cache';
import { CommandCannotRun } from './host/errors';
import { coarseTimestamps, Expected, HostFs, StagedCopy } from './host/fs';
import { clearTempLeftovers } from './host/leftovers';
import { NODE_LOCK, withNodeLock } from './host/lock';
import { checkNodeRoot } from './host/node-root';
import { changesOf, checkConfigsUnchanged, checkHostTakes } from './host/prewrite';
import { findReferenceBinary, findReferenceLibraries, labelLike, restoreLabels, selinuxEnabled } from './host/selinux';
import { NOTHING_CHANGED, Stopped, StopRequest } from './host/signals';
import { ClusterApi, NodeInfo } from './kube/cluster';
import { mergeKnativeRecord, restoreKnative, wireKnative } from './kube/knative';
import { RestartBudget, withRestartSlot } from './kube/leases';
import { NodeStatus } from './kube/node-state';
import { removeStartupTaint } from './kube/taints';
import { Logger } from './log';
import { ReadyMarker } from './readiness';
import { hostView, loadPlanning, loadState, saveState } from './plan/host-view';
import { artifactsToCopy, discoverState, FileOp, isBlobRole, layout, Plan, planInstall, planRemove, planSafely, settleCopyDigests } from './plan/plan';
import { FileRecord, InstallState, isConfigRole, serializeState, statePath } from './plan/state';
import { candidateConfigPaths } from './runtime/config-edit';
import { CriSandboxLister, CriStatusReader } from './runtime/cri-status';
import { originalOnNode } from './runtime/original-pods';
import { detectRuntime, NodeRuntime, readNode } from './runtime/detect';
import { decideTarget, gatherEvidence, resolveTarget, TargetMismatchError } from './runtime/detect-target';
import { findDrift } from './runtime/drift';
import { clearPreflightLeftovers } from './runtime/loader';
import { preflight } from './runtime/preflight';
import { detectUnit, restartUnit } from './runtime/restart';
import { SocketProbe, SocketWaiter } from './runtime/socket';
import { checkNodeLists, checkRuntimeServes } from './runtime/verify';
import { requireVariant, Settings } from './settings';

/** Everything that reaches outside the process. Tests inject recorders and fakes. */
export interface Effects {
  readonly fs: HostFs;
  readonly runner: CommandRunner;
  /** Whether the runtime's socket answers now: is it running at all. */
  readonly probeSocket: SocketProbe;
  readonly waitForSocket: SocketWaiter;
  /** Asks the runtime which handlers it serves (CRI Status). */
  readonly readCriStatus: CriStatusReader;
  /** Lists the runtime's pod sandboxes (CRI ListPodSandbox); undefined: the pods are unknown. */
  readonly listPodSandboxes?: CriSandboxLister;
  /** Undefined when not running against a cluster: the API steps are skipped. */
  readonly cluster?: ClusterApi;
  readonly log: Logger;
  /** SIGTERM/SIGINT asking the run to stop (host/signals.ts); undefined: never asked. */
  readonly stop?: StopRequest;
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
 * Checks the node root, then runs `work` holding the node lock: install and remove runs never interleave. A stop
 * while waiting for the lock ends the wait at once.
 */
function locked<T>(settings: Settings, effects: Effects, work: () => Promise<T>): Promise<T> {
  checkNodeRoot(effects.fs);
  const stop = stopOf(effects);
  stop.enter('waiting for the node lock');
  let waiting = true;
  const run = withNodeLock(effects.fs.local(NODE_LOCK), settings.lockTimeoutSeconds, effects.log, () => {
    waiting = false;
    stop.checkpoint('reading the node', NOTHING_CHANGED);
    return work();
  });
  return stop.unlessStopped(run, NOTHING_CHANGED, () => waiting);
}

/** Runs a restart and its verification: holding a slot of the restart budget when there is one. */
type RestartGate = <T>(work: () => Promise<T>) => Promise<T>;

const UNGATED: RestartGate = (work) => work();

/**
 * The restart budget of this run (`--max-concurrent-restarts`, the DaemonSet always sets it): a node waiting
 * for a slot says so with an Event (an installing node is `pending` already; a removing one stays unlabelled).
 */
function restartGate(settings: Settings, effects: Effects, status: NodeStatus): RestartGate {
  const { cluster, log } = effects;
  if (!cluster || !settings.nodeName) return UNGATED;
  if (settings.maxConcurrentRestarts === undefined) {
    return (work) => {
      log.info('no restart budget (--max-concurrent-restarts): this restart is not coordinated with other nodes');
      return work();
    };
  }
  const slots = settings.maxConcurrentRestarts;
  const budget = new RestartBudget(cluster, { namespace: settings.namespace, slots, leaseSeconds: settings.restartLeaseSeconds, holder: settings.nodeName }, log);
  const onWait = (holders: readonly string[]): Promise<void> =>
    status.report({ event: { type: 'Normal', reason: 'WaitingForRestartSlot', message: `waiting for one of ${slots} restart slot(s), held by ${holders.join(', ')}` } });
  return (work) => withRestartSlot(budget, onWait, work);
}

function stopOf(effects: Effects): StopRequest {
  return effects.stop ?? NEVER_STOPPED;
}

const NEVER_STOPPED = new StopRequest();

/** A write or delete of bytes; runtime configs compare-and-swap: only while they hold what the plan read (host/fs.ts). */
function applyOp(fs: HostFs, op: FileOp, log: Logger): void {
  log.debug(`${op.reason}: ${op.path}`, { path: op.path, role: op.role });
  const expected: Expected | undefined = isConfigRole(op.role) && (op.before === undefined || Buffer.isBuffer(op.before)) ? (op.before ?? null) : undefined;
  if (op.after === null) fs.removeFile(op.path, expected ?? undefined);
  else if (Buffer.isBuffer(op.after)) fs.writeFile(op.path, op.after, op.mode, expected);
  else throw new Error(`internal error: the copy of ${op.path} is staged, not applied`);
}

/** An op that copies an artifact. */
function isCopy(op: FileOp): op is FileOp & { after: Artifact } {
  return op.after !== null && !Buffer.isBuffer(op.after);
}

/**
 * Every artifact the plan copies, each to its temp file beside its target: read once, hashed as it is read,
 * verified against SHA256SUMS, fsync'ed; none in place yet. On a fault the ones staged so far are returned
 * with the error for the caller to discard (they are pushed as they come).
 */
async function stageArtifacts(fs: HostFs, plan: Plan, log: Logger): Promise<StagedCopy[]> {
  const staged: StagedCopy[] = [];
  try {
    for (const op of plan.ops) {
      if (!isCopy(op)) continue;
      log.debug(`${op.reason}: ${op.path}`, { path: op.path, role: op.role });
      staged.push(await fs.stageCopy(op.path, op.after, op.mode));
    }
  } catch (error) {
    fs.discardCopies(staged);
    throw error;
  }
  if (staged.length > 0) log.info('artifacts verified', { artifacts: artifactsToCopy(plan).map((a) => a.name) });
  return staged;
}

/**
 * An update that failed before any copy was in place (a damaged artifact, a full disk): the state file as it
 * was and the directories this run created, so the node is as before. Returns the error to report.
 */
function restoreBeforeCopies(fs: HostFs, plan: Plan, recordedBytes: Buffer | undefined, state: string, cause: InstallerError): InstallerError {
  try {
    if (recordedBytes) fs.writeFile(state, recordedBytes, 0o600);
    else fs.removeFile(state);
    [...plan.mkdirs].reverse().forEach((d) => removeEmptyDir(fs, d));
  } catch {
    return cause;
  }
  return new InstallerError(`${cause.message}; nothing was changed`, cause.fix, cause.exitCode);
}

/** Room for the state beyond its intent: the fingerprints the last write adds. */
const STATE_SLACK = 4096;

/** Before the first write: the host can take the plan's writes (else a refusal with nothing changed). */
function checkHost(fs: HostFs, plan: Plan, state: InstallState, selinux: boolean): void {
  if (plan.ops.length === 0 && plan.mkdirs.length === 0) return;
  checkHostTakes(fs, changesOf(plan, statePath(state.prefix), serializeState(state).length + STATE_SLACK), selinux);
}

/** Whether the runtime answers on its socket now; says so when it does not. */
async function runtimeRunning(settings: Settings, effects: Effects, target: TargetSpec, command: 'install' | 'remove'): Promise<boolean> {
  const running = await effects.probeSocket(effects.fs.local(target.criSocket));
  if (!running) {
    const then =
      settings.restart === 'none'
        ? 'it is not restarted (--restart none)'
        : settings.startStoppedRuntime
          ? 'it is started after the config change (--start-stopped-runtime)'
          : command === 'install'
            ? `it is not started: it reads the new config when it starts; run install again then to verify it and label the node (or pass --start-stopped-runtime)`
            : 'it is not started: it reads the restored config when it starts';
    effects.log.warn(`${target.cri} is not running on the node (nothing answers on ${target.criSocket}): ${then}`);
  }
  return running;
}

/** Our temp files a killed run may have left beside anything we write (host/leftovers.ts). */
function clearWriteLeftovers(fs: HostFs, prefix: string, target: TargetSpec | undefined, handler: string, recorded: InstallState | undefined): void {
  const dirOf = (p: string): string => p.slice(0, p.lastIndexOf('/')) || '/';
  const dirs = [prefix, ...RUNTIMES.flatMap((r) => {
    const l = layout(prefix, r);
    return [l.bin, l.lib, l.libexecRuntime];
  })];
  for (const t of target ? [target] : TARGETS) dirs.push(...candidateConfigPaths(t.configEdit, handler).map((c) => dirOf(c.path)));
  dirs.push(...(recorded?.files ?? []).map((f) => dirOf(f.path)));
  clearTempLeftovers(fs, dirs);
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
    const stop = stopOf(effects);
    const nodeObject = await stop.unlessStopped(readNode(effects.cluster, settings.nodeName, effects.log), NOTHING_CHANGED);
    const marker = new ReadyMarker(settings.readyFile, effects.log);
    const status = NodeStatus.of(effects.cluster, settings.nodeName, effects.log, nodeObject?.labels, (state) => marker.follow(state));
    status.about(choice === AUTO_TARGET ? undefined : choice.name, runtime.name);
    try {
      const { target } = resolveTarget(choice, runtime, effects.fs, nodeObject, settings.nodeName, effects.log);
      status.about(target.name, runtime.name);
      const node = await stop.unlessStopped(detectRuntime(target, effects.fs, effects.runner, nodeObject, effects.log), NOTHING_CHANGED);
      return await installLocked(settings, effects, target, runtime, node, status);
    } catch (error) {
      await reportFailure(status, error instanceof Stopped ? 'Interrupted' : 'InstallFailed', error, effects.log);
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
  const stop = stopOf(effects);
  const artifacts = locateArtifacts(settings.artifacts, target, runtime, settings.prefix);
  clearPreflightLeftovers(fs, target);
  clearWriteLeftovers(fs, settings.prefix, target, settings.handler, loadState(fs, settings.prefix));
  const running = await runtimeRunning(settings, effects, target, 'install');

  // detect
  // Without a state file, what an earlier install left (our block, our files) is recognised, never taken as original.
  const { recorded, view } = loadPlanning(fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const selinux = selinuxEnabled(fs);
  log.debug('detected', { target: target.name, previous: previous?.phase ?? 'none', runtime: node.version, runtimeBinary: node.binary?.path, selinux });

  // plan (with the take-over of what the original knawd-deployer left, plan/takeover.ts)
  const l = layout(settings.prefix, runtime);
  const original = await originalOnNode(view, fs.local(target.criSocket), running, effects.listPodSandboxes, log);
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, node, selinux, original }, previous),
  );
  plan.notes.forEach((n) => log.info(n));
  plan.warnings.forEach((w) => log.warn(w));
  let forceRestart = false;
  // A take-over that waits, or is due now, is the install's own next step, not drift.
  const takingOver = previous?.takeover?.waitingFor !== undefined || (plan.next?.takeover !== undefined && previous?.takeover === undefined);
  if (settings.driftCheck && !takingOver) {
    const drift = await findDrift({ target, handler: settings.handler, plan, recorded, label: status.state, reporting: status.reporting, restart: settings.restart, socket: fs.local(target.criSocket), readStatus: effects.readCriStatus, log });
    if (drift.standDown || drift.problems.length === 0) {
      if (drift.standDown) log.info(`drift check: ${drift.standDown}`);
      else log.debug('drift check: the node is as install left it');
      return { ...countersOf(fs), restarts: 0, restartPending: false, changed: [] };
    }
    log.warn('drift check: the node drifted; repairing it', { drift: drift.problems });
    await status.report({ state: 'pending', event: { type: 'Warning', reason: 'DriftDetected', message: `repairing: ${drift.problems.join('; ')}` } });
    forceRestart = drift.restart;
  }
  // Before the first write: the host can take the writes, and the node's own runtime reads the new config as we
  // mean it. The artifacts are verified as they are copied, before anything is put in place (stageArtifacts).
  let next = plan.next as InstallState;
  checkHost(fs, plan, next, selinux);
  stop.enter('the pre-flight');
  if (plan.configChanged) await preflight({ target, plan, handler: settings.handler, binaryPath: l.wrapper, binary: node.binary }, fs, effects.runner, log);

  // apply
  const changed: string[] = [];
  const writes = plan.ops.length > 0 || plan.mkdirs.length > 0;
  if (writes || next.restartPending) {
    stop.checkpoint('labelling the node pending', NOTHING_CHANGED);
    await status.report({
      state: 'pending',
      hostChanged: true,
      event: status.state === 'pending' ? undefined : { type: 'Normal', reason: 'Installing', message: `installing ${runtime.name} as handler ${settings.handler} for target ${target.name}` },
    });
  }
  if (writes) {
    stop.checkpoint('installing the files', `${NOTHING_CHANGED}; the node is labelled pending, the next install goes on`);
    checkConfigsUnchanged(fs, plan);
    const recordedBytes = fs.read(statePath(settings.prefix));
    const staged: StagedCopy[] = [];
    let committed = false;
    try {
      const prefixDirs = plan.mkdirs.filter((d) => settings.prefix === d || settings.prefix.startsWith(d + '/'));
      prefixDirs.forEach((d) => fs.mkdir(d));
      // The intent: everything this run may touch, so that a crash at any later point can be finished or undone.
      const stale = (previous?.files ?? []).filter((f) => !next.files.some((n) => n.path === f.path));
      const intent = (state: InstallState): InstallState => ({ ...state, phase: 'installing', files: [...state.files, ...stale] });
      saveState(fs, intent(next));
      plan.mkdirs.filter((d) => !prefixDirs.includes(d)).forEach((d) => fs.mkdir(d));
      staged.push(...(await stageArtifacts(fs, plan, log)));
      // A copy whose prefix is rewritten has its digest only now: the intent says it before the copy is in place.
      const settled = settleCopyDigests(next, new Map(staged.map((c) => [c.hostPath, c.sha256])));
      if (settled !== next) saveState(fs, intent(settled));
      next = settled;
      committed = true;
      fs.commitCopies(staged);
      changed.push(...staged.map((c) => c.hostPath));
      for (const op of plan.ops.filter((o) => !isCopy(o))) {
        applyOp(fs, op, log);
        changed.push(op.path);
      }
    } catch (error) {
      fs.discardCopies(staged);
      // A crash stands for the process dying: nothing of it may run any further.
      if (!(error instanceof InstallerError)) throw error;
      // A fault (full disk, a damaged artifact, a concurrent writer...) in a first install: take back what this
      // run wrote; in an update, before any copy is in place, the state as it was and the new directories.
      if (!previous) throw await undoFirstInstall(settings, effects, plan, error, status);
      if (!committed) throw restoreBeforeCopies(fs, plan, recordedBytes, statePath(settings.prefix), error);
      throw error;
    }
    for (const dir of plan.rmdirs) {
      if (!fs.removeDir(dir)) log.warn(`${dir} is not empty: left in place, and no longer removed by remove`);
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
    const libraries = next.files.filter((f) => f.role === 'library' && (all || written.has(f.path))).map((f) => f.path);
    if (libraries.length > 0) {
      const reference = findReferenceLibraries(fs);
      const isLoader = (p: string): boolean => /\/ld-linux[^/]*$/.test(p);
      for (const [ref, files] of [[reference.loader, libraries.filter(isLoader)], [reference.library, libraries.filter((p) => !isLoader(p))]] as const) {
        if (files.length === 0) continue;
        if (ref) await labelLike(effects.runner, ref, files);
        else log.warn(`SELinux: no host ${files === libraries.filter(isLoader) ? 'loader' : 'libc'} to copy the label from; ${files.length} file(s) under ${l.lib} keep the label of their directory`);
      }
    }
    const configs = next.files.filter((f) => isConfigRole(f.role) && (written.has(f.path) || (all && fs.exists(f.path)))).map((f) => f.path);
    await restoreLabels(effects.runner, configs);
  }
  next = { ...next, files: withFreshFingerprints(fs, next.files, written) };

  // restart + verify
  let restarts = 0;
  let restartPending = next.restartPending || forceRestart;
  if (restartPending && settings.restart === 'none') {
    log.warn(`restart pending: the ${target.cri} config changed but --restart none was given`, {
      fix: `restart it on the node (systemctl restart ${target.restartUnits.join(' or ')}), then run install again to clear this`,
    });
  } else if (restartPending && !running && !settings.startStoppedRuntime) {
    log.warn(`${target.cri} was not running before this run: it is not started; the handler is served once it starts with the new config`, {
      fix: `start it (systemctl start ${target.restartUnits.join(' or ')}), then run install again to verify it and label the node; or pass --start-stopped-runtime`,
    });
  } else if (restartPending) {
    // The slot is held through a roll-back too: that is a second restart.
    stop.checkpoint(`restarting ${target.cri}`, `the files are installed and recorded, ${target.cri} was not restarted: the next install restarts and verifies it`);
    await restartGate(settings, effects, status)(async () => {
      try {
        restarts += await restartAndVerify(settings, effects, target, 'served');
        if (node.nodeHandlers && effects.cluster && settings.nodeName) {
          await checkNodeLists(effects.cluster, settings.nodeName, settings.handler, settings.socketTimeoutSeconds * 1000, log);
        }
        restartPending = false;
      } catch (error) {
        if (!plan.configChanged || error instanceof Stopped) throw error;
        throw await rollBack(settings, effects, target, error, status);
      }
    });
  }
  stop.enter('recording the install');
  saveState(fs, { ...next, phase: 'installed', restartPending });

  // label + Knative
  const waitingFor = next.takeover?.waitingFor;
  if (restartPending) {
    await status.report({ state: 'pending', hostChanged: true });
  } else if (waitingFor) {
    const known = previous?.takeover?.waitingFor;
    const same = known !== undefined && known.join(',') === waitingFor.join(',') && status.state === 'pending';
    const pods = waitingFor.length > 0 ? `pods still run under it: ${waitingFor.join(', ')}` : 'the runtime could not say which pods run under it';
    log.warn(`handler ${settings.handler} is served; the original knawd-deployer's handler ${ORIGINAL_HANDLER} and its files stay while ${pods}`);
    await status.report({
      state: 'pending',
      hostChanged: true,
      event: same ? undefined : { type: 'Normal', reason: 'WaitingForOriginalPods', message: `${target.cri} serves handler ${settings.handler}; taking over from the original knawd-deployer waits: ${pods}` },
    });
  } else {
    const became = status.state !== 'installed';
    await status.report({
      state: 'installed',
      hostChanged: true,
      event: became ? { type: 'Normal', reason: 'Installed', message: `${target.cri} serves handler ${settings.handler} (${runtime.name}, target ${target.name})` } : undefined,
    });
    if (settings.startupTaint && effects.cluster && settings.nodeName) await removeStartupTaint(effects.cluster, settings.nodeName, settings.startupTaint, log);
  }
  if (effects.cluster) {
    if (settings.patchKnative !== 'false') {
      stop.checkpoint('wiring Knative up', `the node is ${restartPending ? 'installed, its restart pending' : 'installed and verified'}; Knative was not wired up: the next install does it`);
    }
    await wireKnative(effects.cluster, log, settings, (knative) => {
      const state = loadState(fs, settings.prefix);
      if (state) saveState(fs, { ...state, knative: mergeKnativeRecord(state.knative, knative) });
    });
  }

  const report = { ...countersOf(fs), restarts, restartPending, changed };
  log.info('install complete', { ...report, changed: changed.length });
  return report;
}

/**
 * The node `failed` with the reason as a Warning Event (an interrupted run: the Event only, the next run goes
 * on); a failure to report is logged, never hides the cause.
 */
async function reportFailure(status: NodeStatus, reason: 'InstallFailed' | 'RemoveFailed' | 'RemoveRefused' | 'Interrupted', error: unknown, log: Logger): Promise<void> {
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

/**
 * The runtime did not come back with our config: put the node back as it was and restart again. When the
 * restart could not even be run (systemctl or nsenter missing), the runtime never read our config: the install
 * is taken back without a restart.
 */
async function rollBack(settings: Settings, effects: Effects, target: TargetSpec, cause: unknown, status: NodeStatus): Promise<InstallerError> {
  const reason = messageOf(cause);
  const restarted = !(cause instanceof CommandCannotRun);
  stopOf(effects).enter('rolling the install back');
  effects.log.error(`${restarted ? 'the runtime did not come back serving the handler after the config change' : 'the runtime could not be restarted'}; rolling the install back`, { error: reason });
  try {
    const state = loadState(effects.fs, settings.prefix);
    if (state) await removeFromState(settings, effects, target, { ...state, restartPending: restarted }, [], restarted, UNGATED);
    await status.report({ hostChanged: false });
  } catch (error) {
    return new InstallerError(
      `${reason}; rolling back failed too: ${messageOf(error)}`,
      `the node's ${target.cri} may not be running: run \`knawd-installer remove\` and look at journalctl on the node`,
    );
  }
  if (!restarted) return new InstallerError(`${reason}; nothing was restarted and the install was taken back: the node is as before`, (cause as InstallerError).fix);
  return new InstallerError(`${reason}; the install was rolled back and the node's config restored`, 'look at the runtime\'s journal on the node for why it rejected the config, then install again');
}

/**
 * A first install that failed while writing is taken back with what its intent records, so the host ends as it
 * began. No restart: the runtime has read none of it. Nothing is written on the way (the state stays the
 * intent until it goes last), so a full disk does not stop it; where it fails too (a file system gone
 * read-only), the intent stays for the next run, which completes or reverts it.
 */
async function undoFirstInstall(settings: Settings, effects: Effects, plan: Plan, cause: InstallerError, status: NodeStatus): Promise<InstallerError> {
  const { fs, log } = effects;
  log.warn(`the install failed while writing: taking back what it wrote (${cause.message})`);
  try {
    const state = loadState(fs, settings.prefix);
    if (state) {
      const undo = planSafely(() => planRemove(hostView(fs), state));
      for (const op of undo.ops) applyOp(fs, op, log);
      // The state goes only once nothing but the prefix is left: an undo that fails before stays recorded.
      const holdsState = (d: string): boolean => d === state.prefix || state.prefix.startsWith(d + '/');
      for (const dir of undo.rmdirs.filter((d) => !holdsState(d))) removeEmptyDir(fs, dir);
      fs.removeFile(statePath(state.prefix));
    }
    for (const dir of [...plan.mkdirs].reverse()) removeEmptyDir(fs, dir);
    await status.report({ hostChanged: false });
  } catch (error) {
    return new InstallerError(`${cause.message}; taking back what was written failed too (${messageOf(error)}): the node keeps what it recorded`, cause.fix, cause.exitCode);
  }
  return new InstallerError(`${cause.message}; what this run had written was taken back: nothing was changed`, cause.fix, cause.exitCode);
}

/** A directory this run created, removed; one that is not empty (a temp file that could not go) is a failure. */
function removeEmptyDir(fs: HostFs, dir: string): void {
  if (!fs.removeDir(dir)) throw new InstallerError(`${dir} is not empty`, 'look at what is in it');
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
    const node = await stopOf(effects).unlessStopped(nodeObject(settings, effects), NOTHING_CHANGED);
    const status = NodeStatus.of(effects.cluster, settings.nodeName, effects.log, node?.labels ?? {});
    try {
      return await removeLocked(settings, effects, status, removeTarget(settings, effects, node));
    } catch (error) {
      await reportFailure(status, error instanceof Stopped ? 'Interrupted' : error instanceof PodsStillRunning ? 'RemoveRefused' : 'RemoveFailed', error, effects.log);
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
  const stop = stopOf(effects);
  for (const t of given ? [given] : TARGETS) clearPreflightLeftovers(fs, t);
  clearWriteLeftovers(fs, settings.prefix, given, settings.handler, loadState(fs, settings.prefix));
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
  status.about(state.target, state.runtime);
  const unlabelled = `${NOTHING_CHANGED}; the node is unlabelled, the next remove goes on`;
  stop.enter('waiting for the pods using the handler');
  await stop.unlessStopped(waitForHandlerPods(settings, effects, state.handler), unlabelled);
  if (effects.cluster && state.knative) {
    stop.checkpoint('restoring Knative', unlabelled);
    await restoreKnative(effects.cluster, log, state.knative);
  }
  stop.checkpoint('restoring the host', `${NOTHING_CHANGED}; the node is unlabelled${state.knative ? ' and Knative restored' : ''}, the next remove goes on`);
  const running = await runtimeRunning(settings, effects, target, 'remove');
  const changed: string[] = [];
  const report = await removeFromState(settings, effects, target, state, changed, running || settings.startStoppedRuntime, restartGate(settings, effects, status));
  if (report.restartPending) {
    log.warn(`the node keeps the ${HOST_CHANGED_LABEL.key} label until its ${target.cri} was restarted`, {
      fix: `restart it (systemctl restart ${target.restartUnits.join(' or ')}), then run remove again to clear the label`,
    });
  } else {
    await status.report({ hostChanged: false, event: { type: 'Normal', reason: 'Restored', message: `handler ${state.handler} removed; the node's ${target.cri} config is restored` } });
  }
  sayWhatTakeoverLeft(state, log);
  log.info('remove complete', { ...report, changed: changed.length });
  return report;
}

/**
 * After remove: what of the node before the original knawd-deployer (1.x) could not be restored, and why. The
 * configs are back as before either release where the original's `.bak` allowed it (planned at the take-over).
 */
function sayWhatTakeoverLeft(state: InstallState, log: Logger): void {
  const t = state.takeover;
  if (!t) return;
  if (t.waitingFor) {
    log.warn(`the original knawd-deployer's handler ${t.handler} was never taken over (pods ran under it): its entry and files stay on the node`);
    return;
  }
  for (const note of t.notes ?? []) log.warn(`not restored: ${note}`);
  for (const d of t.deleted.filter((f) => !f.path.endsWith('.bak'))) {
    log.info(`not restored: ${d.path} was the original knawd-deployer's (deleted at the take-over); what was there before it copied its own over it, without a backup, is unknown`);
  }
}

/**
 * Reverts what `state` records. `restart`: whether a config change needs the runtime restarted; not when it was
 * not running (it has nothing loaded and reads the restored config when it starts), nor when it never read
 * what is reverted. `gate`: the restart budget the restart runs under.
 */
async function removeFromState(settings: Settings, effects: Effects, target: TargetSpec, state: InstallState, changed: string[], restart: boolean, gate: RestartGate): Promise<RunReport> {
  const { fs, log } = effects;
  const plan = planSafely(() => planRemove(hostView(fs), state));
  plan.warnings.forEach((w) => log.warn(w));
  checkHost(fs, plan, state, selinuxEnabled(fs));
  let restartPending = (state.restartPending || plan.configChanged) && restart;
  if (fs.exists(statePath(state.prefix)) && (plan.ops.length > 0 || state.phase !== 'removing')) {
    checkConfigsUnchanged(fs, plan);
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
    stopOf(effects).enter(`restarting ${target.cri}`);
    restarts += await gate(() => restartAndVerify(settings, effects, target, 'gone'));
    restartPending = false;
  }
  for (const op of plan.ops.filter((o) => !isConfigRole(o.role))) {
    applyOp(fs, op, log);
    changed.push(op.path);
  }
  // crun's compile cache goes with the handler: its entries are code for the builds just removed.
  const cache = readCompileCache(fs, state.prefix);
  if (cache) {
    if (removeCompileCache(fs, state.prefix)) log.info('compile cache removed', { path: cache.path, entries: cache.entries, bytes: cache.bytes });
    else log.warn(`${cache.path} is not empty (a compile finished meanwhile): left in place`);
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
