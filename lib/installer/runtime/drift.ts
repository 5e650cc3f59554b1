/**
 * The staying installer's periodic question (`install --drift-check`): is this node still as install left it?
 * Our block present and our files as written (the install plan would change nothing), the last run finished,
 * no restart pending, the runtime serving the handler (CRI Status), the node still labelled installed. Each
 * answer that is not "yes" is one line; an empty list means the check changes nothing on the node or in the
 * API. A handler the runtime does not serve although the config has it needs a restart even when no file
 * changes (say, the runtime was restarted from another config).
 *
 * A node without the state label is not drifted but being (or been) removed: `remove` takes the label away
 * before anything else, and the uninstall runs the remover while the installer pods still stay. The check then
 * stands down instead of installing again what the remover takes away.
 */
import type { TargetSpec } from '../../catalog';
import { INSTALLED_LABEL } from '../../catalog';
import { messageOf } from '../errors';
import { Logger } from '../log';
import { Plan } from '../plan/plan';
import { InstallState } from '../plan/state';
import { CriStatusReader, servedHandlers } from './cri-status';

export interface DriftInputs {
  readonly target: TargetSpec;
  readonly handler: string;
  /** The install plan for the node as it is now. */
  readonly plan: Plan;
  /** The installer state as recorded on the node; undefined when there is none. */
  readonly recorded: InstallState | undefined;
  /** The node's state label as read at the start of this run; undefined when not reporting to a cluster. */
  readonly label: string | undefined;
  readonly reporting: boolean;
  /** With `none`, a pending restart (and the `pending` label that goes with it) is the operator's to do. */
  readonly restart: 'auto' | 'none';
  /** The runtime's socket in this process's file system. */
  readonly socket: string;
  readonly readStatus: CriStatusReader;
  readonly log: Logger;
}

export interface Drift {
  /** What is not as install left it, one line each; empty: nothing drifted. */
  readonly problems: readonly string[];
  /** The runtime must be restarted even if no file changes. */
  readonly restart: boolean;
  /** Why the check must change nothing whatever it finds (the node is being removed). */
  readonly standDown?: string;
}

const STATUS_TIMEOUT_MS = 10_000;

export async function findDrift(d: DriftInputs): Promise<Drift> {
  if (d.reporting && d.label === undefined) {
    return { problems: [], restart: false, standDown: `the node has no ${INSTALLED_LABEL.key} label: remove took it away (the uninstall runs, or ran), so nothing is repaired` };
  }
  const problems: string[] = [];
  if (!d.recorded) problems.push('no installer state on the node: our files or our record of them are gone');
  else if (d.recorded.phase !== 'installed') problems.push(`the last ${d.recorded.phase === 'removing' ? 'remove' : 'install'} did not finish`);
  const awaitingOperator = d.restart === 'none' && d.recorded?.restartPending === true;
  if (d.recorded?.phase === 'installed' && d.recorded.restartPending && !awaitingOperator) problems.push(`a ${d.target.cri} restart is pending`);
  for (const op of d.plan.ops) problems.push(`${op.path}: ${op.before === undefined ? 'missing' : 'changed'} (${op.reason})`);
  for (const dir of d.plan.mkdirs) problems.push(`${dir}: missing directory`);
  if (d.reporting && !awaitingOperator && d.label !== INSTALLED_LABEL.value) problems.push(`the node is labelled ${INSTALLED_LABEL.key}=${d.label}, not ${INSTALLED_LABEL.value}`);
  if (awaitingOperator) return { problems, restart: false };
  let restart = false;
  try {
    const handlers = servedHandlers(await d.readStatus(d.socket, STATUS_TIMEOUT_MS));
    if (handlers !== undefined && !handlers.includes(d.handler)) {
      problems.push(`${d.target.cri} does not serve handler ${d.handler} (it serves ${handlers.filter((h) => h !== '').join(', ') || 'no named handler'})`);
      restart = true;
    }
  } catch (error) {
    // A runtime that does not answer is not ours to restart: the kubelet reports it; the next check asks again.
    d.log.warn(`drift check: cannot ask ${d.target.cri} which handlers it serves`, { error: messageOf(error) });
  }
  return { problems, restart };
}
