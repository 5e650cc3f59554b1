/** The install command's sequence (see installer.ts for the whole of it) and how a failed install is taken back. */
import { AUTO_TARGET, ORIGINAL_HANDLER, TargetSpec, RuntimeSpec } from '../catalog';
import { locateArtifacts } from './artifacts';
import { InstallerError, messageOf, NoBuildForNode } from './errors';
import { CommandCannotRun } from './host/errors';
import { coarseTimestamps, HostFs, StagedCopy } from './host/fs';
import { checkConfigsUnchanged } from './host/prewrite';
import { findReferenceBinary, findReferenceLibraries, labelLike, restoreLabels, selinuxEnabled } from './host/selinux';
import { NOTHING_CHANGED, Stopped } from './host/signals';
import { ClusterApi } from './kube/cluster';
import { mergeKnativeRecord, wireKnative } from './kube/knative';
import { NodeStatus } from './kube/node-state';
import { removeStartupTaint } from './kube/taints';
import { Logger } from './log';
import { ReadyMarker } from './readiness';
import { hostView, loadPlanning, loadState, saveState } from './plan/host-view';
import { artifactsToCopy, discoverState, isBlobRole, layout, Plan, planInstall, planRemove, planSafely, settleCopyDigests } from './plan/plan';
import { FileRecord, InstallState, isConfigRole, statePath } from './plan/state';
import { originalOnNode } from './runtime/original-pods';
import { detectRuntime, NodeRuntime, readNode } from './runtime/detect';
import { resolveTarget } from './runtime/detect-target';
import { findDrift } from './runtime/drift';
import { clearPreflightLeftovers } from './runtime/loader';
import { preflight } from './runtime/preflight';
import { checkNodeLists } from './runtime/verify';
import { architectureOf, nodeRefusal } from './node-support';
import { requireVariant, Settings } from './settings';
import { Effects, RunReport } from './effects';
import { applyOp, checkHost, clearWriteLeftovers, countersOf, isCopy, locked, removeEmptyDir, reportFailure, restartAndVerify, restartGate, runtimeRunning, stopOf, UNGATED } from './shared-steps';
import { removeFromState } from './remove';

export function install(settings: Settings, effects: Effects): Promise<RunReport> {
  const { target: choice, runtime } = requireVariant(settings);
  const refusal = nodeRefusal(settings.artifacts, runtime, architectureOf(effects));
  if (refusal) return refuse(settings, effects, runtime.name, refusal);
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

/**
 * A node this image has no build for: labelled failed with the reason in an Event (the RuntimeClass never
 * schedules there), without the node lock or anything else on the host.
 */
async function refuse(settings: Settings, effects: Effects, runtime: string, refusal: NoBuildForNode): Promise<never> {
  const nodeObject = await readNode(effects.cluster, settings.nodeName, effects.log);
  const status = NodeStatus.of(effects.cluster, settings.nodeName, effects.log, nodeObject?.labels);
  status.about(undefined, runtime);
  await reportFailure(status, 'InstallFailed', refusal, effects.log);
  throw refusal;
}

/** One install run: what it was asked, what it found on the node, and its plan. */
interface InstallRun {
  readonly settings: Settings;
  readonly effects: Effects;
  readonly target: TargetSpec;
  readonly runtime: RuntimeSpec;
  readonly node: NodeRuntime;
  readonly status: NodeStatus;
  /** The runtime answered on its socket when the run began. */
  readonly running: boolean;
  /** The state file as it was. */
  readonly recorded: InstallState | undefined;
  /** The state file, else what an earlier install is recognised to have left. */
  readonly previous: InstallState | undefined;
  readonly selinux: boolean;
  readonly plan: Plan;
}

/** The install sequence installer.ts's header states, from locating the artifacts on, one named step each. */
async function installLocked(settings: Settings, effects: Effects, target: TargetSpec, runtime: RuntimeSpec, node: NodeRuntime, status: NodeStatus): Promise<RunReport> {
  const { fs, log } = effects;
  const run = await detectAndPlan(settings, effects, target, runtime, node, status);
  const drift = await checkDrift(run);
  if (drift === 'as-left') return { ...countersOf(fs), restarts: 0, restartPending: false, changed: [] };
  let next = run.plan.next as InstallState;
  await beforeFirstWrite(run, next);
  await labelPending(run, next);
  const changed: string[] = [];
  if (writesAnything(run.plan)) next = await writeFiles(run, next, changed);
  const written = new Set(run.plan.ops.filter((op) => op.after !== null).map((op) => op.path));
  if (run.selinux) await labelForSelinux(run, next, written);
  next = { ...next, files: withFreshFingerprints(fs, next.files, written) };
  const { restarts, restartPending } = await restartAndVerifyIfDue(run, next.restartPending || drift === 'repair-with-restart');
  stopOf(effects).enter('recording the install');
  saveState(fs, { ...next, phase: 'installed', restartPending });
  await reportOutcome(run, next, restartPending);
  if (effects.cluster) await wireKnativeUp(run, effects.cluster, restartPending);
  const report = { ...countersOf(fs), restarts, restartPending, changed };
  log.info('install complete', { ...report, changed: changed.length });
  return report;
}

/**
 * Clears what a killed run left, detects what an earlier install left (without a state file: our block, our
 * files, recognised, never taken as original) and plans, with the take-over of what the original
 * knawd-deployer left (plan/takeover.ts).
 */
async function detectAndPlan(settings: Settings, effects: Effects, target: TargetSpec, runtime: RuntimeSpec, node: NodeRuntime, status: NodeStatus): Promise<InstallRun> {
  const { fs, log } = effects;
  const artifacts = locateArtifacts(settings.artifacts, target, runtime, settings.prefix);
  clearPreflightLeftovers(fs, target);
  clearWriteLeftovers(fs, settings.prefix, target, settings.handler, loadState(fs, settings.prefix));
  const running = await runtimeRunning(settings, effects, target, 'install');
  const { recorded, view } = loadPlanning(fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const selinux = selinuxEnabled(fs);
  log.debug('detected', { target: target.name, previous: previous?.phase ?? 'none', runtime: node.version, runtimeBinary: node.binary?.path, selinux });
  const original = await originalOnNode(view, fs.local(target.criSocket), running, effects.listPodSandboxes, log);
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, node, selinux, original }, previous),
  );
  plan.notes.forEach((n) => log.info(n));
  plan.warnings.forEach((w) => log.warn(w));
  return { settings, effects, target, runtime, node, status, running, recorded, previous, selinux, plan };
}

/**
 * The drift check (`--drift-check`, the DaemonSet's periodic run): `as-left` stops the run with nothing done; a
 * drifted node is labelled pending and repaired, with a restart when what drifted needs one. A take-over that
 * waits, or is due now, is the install's own next step, not drift.
 */
async function checkDrift(run: InstallRun): Promise<'not-checked' | 'as-left' | 'repair' | 'repair-with-restart'> {
  const { settings, effects, target, plan, recorded, previous, status } = run;
  const { fs, log } = effects;
  const takingOver = previous?.takeover?.waitingFor !== undefined || (plan.next?.takeover !== undefined && previous?.takeover === undefined);
  if (!settings.driftCheck || takingOver) return 'not-checked';
  const drift = await findDrift({ target, handler: settings.handler, plan, recorded, label: status.state, reporting: status.reporting, restart: settings.restart, socket: fs.local(target.criSocket), readStatus: effects.readCriStatus, log });
  if (drift.standDown || drift.problems.length === 0) {
    if (drift.standDown) log.info(`drift check: ${drift.standDown}`);
    else log.debug('drift check: the node is as install left it');
    return 'as-left';
  }
  log.warn('drift check: the node drifted; repairing it', { drift: drift.problems });
  await status.report({ state: 'pending', event: { type: 'Warning', reason: 'DriftDetected', message: `repairing: ${drift.problems.join('; ')}` } });
  return drift.restart ? 'repair-with-restart' : 'repair';
}

/**
 * Before the first write: the host can take the writes, and the node's own runtime reads the new config as we
 * mean it. The artifacts are verified as they are copied, before anything is put in place (stageArtifacts).
 */
async function beforeFirstWrite(run: InstallRun, next: InstallState): Promise<void> {
  const { settings, effects, target, node, plan } = run;
  checkHost(effects.fs, plan, next, run.selinux);
  stopOf(effects).enter('the pre-flight');
  if (!plan.configChanged) return;
  const binaryPath = layout(settings.prefix, run.runtime).wrapper;
  await preflight({ target, plan, handler: settings.handler, binaryPath, binary: node.binary }, effects.fs, effects.runner, effects.log);
}

function writesAnything(plan: Plan): boolean {
  return plan.ops.length > 0 || plan.mkdirs.length > 0;
}

/** The node `pending` and host-changed before anything on the host changes (or a restart still due runs). */
async function labelPending(run: InstallRun, next: InstallState): Promise<void> {
  const { settings, status } = run;
  if (!writesAnything(run.plan) && !next.restartPending) return;
  stopOf(run.effects).checkpoint('labelling the node pending', NOTHING_CHANGED);
  await status.report({
    state: 'pending',
    hostChanged: true,
    event:
      status.state === 'pending'
        ? undefined
        : { type: 'Normal', reason: 'Installing', message: `installing ${run.runtime.name} as handler ${settings.handler} for target ${run.target.name}` },
  });
}

/**
 * The intent first (everything this run may touch, so that a crash at any later point can be finished or
 * undone), then every artifact staged and verified, then all of them put in place, then the other files.
 * Returns the state with the digests the copies settled; `changed` gets every host path written.
 */
async function writeFiles(run: InstallRun, planned: InstallState, changed: string[]): Promise<InstallState> {
  const { settings, effects, plan, previous, status } = run;
  const { fs, log } = effects;
  stopOf(effects).checkpoint('installing the files', `${NOTHING_CHANGED}; the node is labelled pending, the next install goes on`);
  checkConfigsUnchanged(fs, plan);
  const recordedBytes = fs.read(statePath(settings.prefix));
  const staged: StagedCopy[] = [];
  let next = planned;
  let committed = false;
  try {
    const prefixDirs = plan.mkdirs.filter((d) => settings.prefix === d || settings.prefix.startsWith(d + '/'));
    prefixDirs.forEach((d) => fs.mkdir(d));
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
  return next;
}

/**
 * SELinux labels are set when a labelled file was (re)written, and on every file when the last run did not
 * finish or did not label (older state, SELinux enabled since): an unchanged, labelled node runs nothing.
 */
async function labelForSelinux(run: InstallRun, next: InstallState, written: ReadonlySet<string>): Promise<void> {
  const { effects, previous } = run;
  const { fs, log } = effects;
  const l = layout(run.settings.prefix, run.runtime);
  const all = previous?.phase !== 'installed' || previous.selinuxLabelled !== true;
  const executables = [l.wrapper, l.binary].filter((p) => all || written.has(p));
  if (executables.length > 0) await labelLike(effects.runner, await findReferenceBinary(effects.runner), executables);
  const libraries = next.files.filter((f) => f.role === 'library' && (all || written.has(f.path))).map((f) => f.path);
  if (libraries.length > 0) {
    const reference = findReferenceLibraries(fs);
    const isLoader = (p: string): boolean => /\/ld-linux[^/]*$/.test(p);
    for (const [ref, files, kind] of [[reference.loader, libraries.filter(isLoader), 'loader'], [reference.library, libraries.filter((p) => !isLoader(p)), 'libc']] as const) {
      if (files.length === 0) continue;
      if (ref) await labelLike(effects.runner, ref, files);
      else log.warn(`SELinux: no host ${kind} to copy the label from; ${files.length} file(s) under ${l.lib} keep the label of their directory`);
    }
  }
  const configs = next.files.filter((f) => isConfigRole(f.role) && (written.has(f.path) || (all && fs.exists(f.path)))).map((f) => f.path);
  await restoreLabels(effects.runner, configs);
}

/**
 * The restart a config change needs, under a slot of the restart budget, and its verification (socket, CRI
 * Status, the Node's runtimeHandlers); a runtime that does not come back serving the handler rolls the install
 * back. Not with `--restart none`, nor for a runtime that was not running (unless --start-stopped-runtime).
 */
async function restartAndVerifyIfDue(run: InstallRun, due: boolean): Promise<{ restarts: number; restartPending: boolean }> {
  const { settings, effects, target, status } = run;
  const { log } = effects;
  if (!due) return { restarts: 0, restartPending: false };
  const units = target.restartUnits.join(' or ');
  if (settings.restart === 'none') {
    log.warn(`restart pending: the ${target.cri} config changed but --restart none was given`, {
      fix: `restart it on the node (systemctl restart ${units}), then run install again to clear this`,
    });
    return { restarts: 0, restartPending: true };
  }
  if (!run.running && !settings.startStoppedRuntime) {
    log.warn(`${target.cri} was not running before this run: it is not started; the handler is served once it starts with the new config`, {
      fix: `start it (systemctl start ${units}), then run install again to verify it and label the node; or pass --start-stopped-runtime`,
    });
    return { restarts: 0, restartPending: true };
  }
  stopOf(effects).checkpoint(`restarting ${target.cri}`, `the files are installed and recorded, ${target.cri} was not restarted: the next install restarts and verifies it`);
  // The slot is held through a roll-back too: that is a second restart.
  return restartGate(settings, effects, status)(async () => {
    try {
      const restarts = await restartAndVerify(settings, effects, target, 'served');
      if (run.node.nodeHandlers && effects.cluster && settings.nodeName) {
        await checkNodeLists(effects.cluster, settings.nodeName, settings.handler, settings.socketTimeoutSeconds * 1000, log);
      }
      return { restarts, restartPending: false };
    } catch (error) {
      if (!run.plan.configChanged || error instanceof Stopped) throw error;
      throw await rollBack(settings, effects, target, error, status);
    }
  });
}

/**
 * The node's label says the outcome: `pending` while a restart is due or a take-over of the original waits
 * for its pods, else `installed` (the readiness marker follows it), and the startup taint goes.
 */
async function reportOutcome(run: InstallRun, next: InstallState, restartPending: boolean): Promise<void> {
  const { settings, effects, target, status } = run;
  const waitingFor = next.takeover?.waitingFor;
  if (restartPending) {
    await status.report({ state: 'pending', hostChanged: true });
  } else if (waitingFor) {
    const known = run.previous?.takeover?.waitingFor;
    const same = known !== undefined && known.join(',') === waitingFor.join(',') && status.state === 'pending';
    const pods = waitingFor.length > 0 ? `pods still run under it: ${waitingFor.join(', ')}` : 'the runtime could not say which pods run under it';
    effects.log.warn(`handler ${settings.handler} is served; the original knawd-deployer's handler ${ORIGINAL_HANDLER} and its files stay while ${pods}`);
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
      event: became ? { type: 'Normal', reason: 'Installed', message: `${target.cri} serves handler ${settings.handler} (${run.runtime.name}, target ${target.name})` } : undefined,
    });
    if (settings.startupTaint && effects.cluster && settings.nodeName) await removeStartupTaint(effects.cluster, settings.nodeName, settings.startupTaint, effects.log);
  }
}

/** Knative's runtime-class flag (`--patch-knative`), recorded in the state so that remove restores it. */
async function wireKnativeUp(run: InstallRun, cluster: ClusterApi, restartPending: boolean): Promise<void> {
  const { settings, effects } = run;
  if (settings.patchKnative !== 'false') {
    stopOf(effects).checkpoint('wiring Knative up', `the node is ${restartPending ? 'installed, its restart pending' : 'installed and verified'}; Knative was not wired up: the next install does it`);
  }
  await wireKnative(cluster, effects.log, settings, (knative) => {
    const state = loadState(effects.fs, settings.prefix);
    if (state) saveState(effects.fs, { ...state, knative: mergeKnativeRecord(state.knative, knative) });
  });
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
