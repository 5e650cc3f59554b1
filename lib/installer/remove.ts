/** The remove command's sequence (see installer.ts for the whole of it). */
import { AUTO_TARGET, HOST_CHANGED_LABEL, TargetSpec, TARGETS, findTarget } from '../catalog';
import { InstallerError } from './errors';
import { readCompileCache, removeCompileCache } from './host/compile-cache';
import { checkConfigsUnchanged } from './host/prewrite';
import { selinuxEnabled } from './host/selinux';
import { NOTHING_CHANGED, Stopped } from './host/signals';
import { NodeInfo } from './kube/cluster';
import { restoreKnative } from './kube/knative';
import { NodeStatus } from './kube/node-state';
import { Logger } from './log';
import { hostView, loadState, saveState } from './plan/host-view';
import { discoverState, planRemove, planSafely } from './plan/plan';
import { InstallState, isConfigRole, statePath } from './plan/state';
import { decideTarget, gatherEvidence, TargetMismatchError } from './runtime/detect-target';
import { clearPreflightLeftovers } from './runtime/loader';
import { architectureOf, architectureRefusal } from './node-support';
import { Settings } from './settings';
import { Effects, RunReport } from './effects';
import { applyOp, checkHost, clearWriteLeftovers, countersOf, locked, reportFailure, RestartGate, restartAndVerify, restartGate, runtimeRunning, stopOf } from './shared-steps';

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
  const refusal = architectureRefusal(architectureOf(effects));
  // What install refused here it never wrote: remove still runs, to take the failed label off (and anything ours).
  if (refusal) effects.log.info(`${refusal.message.replace(/; nothing was changed$/, '')}: remove takes this node's label off`);
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
export async function removeFromState(settings: Settings, effects: Effects, target: TargetSpec, state: InstallState, changed: string[], restart: boolean, gate: RestartGate): Promise<RunReport> {
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
