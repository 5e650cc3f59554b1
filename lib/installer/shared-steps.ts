/**
 * The steps install and remove share: the node lock, the restart gate, applying a planned op, the host check
 * before the first write, the restart with its verification, reporting a failure on the node.
 */
import { RUNTIMES, TargetSpec, TARGETS } from '../catalog';
import { Artifact } from './artifacts';
import { InstallerError, messageOf } from './errors';
import { Expected, HostFs } from './host/fs';
import { clearTempLeftovers } from './host/leftovers';
import { NODE_LOCK, withNodeLock } from './host/lock';
import { checkNodeRoot } from './host/node-root';
import { changesOf, checkHostTakes } from './host/prewrite';
import { NOTHING_CHANGED, StopRequest } from './host/signals';
import { RestartBudget, withRestartSlot } from './kube/leases';
import { NodeStatus } from './kube/node-state';
import { Logger } from './log';
import { FileOp, layout, Plan } from './plan/plan';
import { InstallState, isConfigRole, serializeState, statePath } from './plan/state';
import { candidateConfigPaths } from './runtime/config-edit';
import { detectUnit, restartUnit } from './runtime/restart';
import { checkRuntimeServes } from './runtime/verify';
import { Settings } from './settings';
import { Effects } from './effects';

/**
 * Checks the node root, then runs `work` holding the node lock: install and remove runs never interleave. A stop
 * while waiting for the lock ends the wait at once.
 */
export function locked<T>(settings: Settings, effects: Effects, work: () => Promise<T>): Promise<T> {
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
export type RestartGate = <T>(work: () => Promise<T>) => Promise<T>;

export const UNGATED: RestartGate = (work) => work();

/**
 * The restart budget of this run (`--max-concurrent-restarts`, the DaemonSet always sets it): a node waiting
 * for a slot says so with an Event (an installing node is `pending` already; a removing one stays unlabelled).
 */
export function restartGate(settings: Settings, effects: Effects, status: NodeStatus): RestartGate {
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

export function stopOf(effects: Effects): StopRequest {
  return effects.stop ?? NEVER_STOPPED;
}

const NEVER_STOPPED = new StopRequest();

/** A write or delete of bytes; runtime configs compare-and-swap: only while they hold what the plan read (host/fs.ts). */
export function applyOp(fs: HostFs, op: FileOp, log: Logger): void {
  log.debug(`${op.reason}: ${op.path}`, { path: op.path, role: op.role });
  const expected: Expected | undefined = isConfigRole(op.role) && (op.before === undefined || Buffer.isBuffer(op.before)) ? (op.before ?? null) : undefined;
  if (op.after === null) fs.removeFile(op.path, expected ?? undefined);
  else if (Buffer.isBuffer(op.after)) fs.writeFile(op.path, op.after, op.mode, expected);
  else throw new Error(`internal error: the copy of ${op.path} is staged, not applied`);
}

/** An op that copies an artifact. */
export function isCopy(op: FileOp): op is FileOp & { after: Artifact } {
  return op.after !== null && !Buffer.isBuffer(op.after);
}

/** Room for the state beyond its intent: the fingerprints the last write adds. */
const STATE_SLACK = 4096;

/** Before the first write: the host can take the plan's writes (else a refusal with nothing changed). */
export function checkHost(fs: HostFs, plan: Plan, state: InstallState, selinux: boolean): void {
  if (plan.ops.length === 0 && plan.mkdirs.length === 0) return;
  checkHostTakes(fs, changesOf(plan, statePath(state.prefix), serializeState(state).length + STATE_SLACK), selinux);
}

/** Whether the runtime answers on its socket now; says so when it does not. */
export async function runtimeRunning(settings: Settings, effects: Effects, target: TargetSpec, command: 'install' | 'remove'): Promise<boolean> {
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
export function clearWriteLeftovers(fs: HostFs, prefix: string, target: TargetSpec | undefined, handler: string, recorded: InstallState | undefined): void {
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
 * The node `failed` with the reason as a Warning Event (an interrupted run: the Event only, the next run goes
 * on); a failure to report is logged, never hides the cause.
 */
export async function reportFailure(status: NodeStatus, reason: 'InstallFailed' | 'RemoveFailed' | 'RemoveRefused' | 'Interrupted', error: unknown, log: Logger): Promise<void> {
  try {
    await status.report({ ...(reason === 'InstallFailed' ? { state: 'failed' as const } : {}), event: { type: 'Warning', reason, message: messageOf(error).slice(0, 1000) } });
  } catch (reportError) {
    log.warn(`could not report the failure on the node: ${messageOf(reportError)}`);
  }
}

export async function restartAndVerify(settings: Settings, effects: Effects, target: TargetSpec, expect: 'served' | 'gone'): Promise<number> {
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

/** A directory this run created, removed; one that is not empty (a temp file that could not go) is a failure. */
export function removeEmptyDir(fs: HostFs, dir: string): void {
  if (!fs.removeDir(dir)) throw new InstallerError(`${dir} is not empty`, 'look at what is in it');
}

export function countersOf(fs: HostFs): { bytesWritten: number; filesWritten: number } {
  return { bytesWritten: fs.counters.bytesWritten, filesWritten: fs.counters.filesWritten };
}
