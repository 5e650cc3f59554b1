/**
 * After a restart, before the node is labelled installed: the runtime itself says it serves our handler (CRI
 * Status), and where the kubelet reports `node.status.runtimeHandlers`, the Node lists it too. Both are bounded
 * waits: the CRI plugin may answer a moment after its socket, the kubelet updates node status every ~10 s.
 */
import type { TargetSpec } from '../../catalog';
import { InstallerError, messageOf } from '../errors';
import { ClusterApi } from '../kube/cluster';
import { Logger } from '../log';
import { CriStatusReader, servedHandlers } from './cri-status';

const POLL_MS = 1000;
const CALL_TIMEOUT_MS = 10_000;

export interface ServedCheck {
  readonly target: TargetSpec;
  readonly handler: string;
  /** The runtime's socket in this process's file system. */
  readonly socket: string;
  readonly readStatus: CriStatusReader;
  readonly timeoutMs: number;
  readonly log: Logger;
  /** Whether the handler must be served (install) or gone (remove). */
  readonly expect: 'served' | 'gone';
}

/** Throws when the runtime does not serve the handler (or still does) by the deadline; warns when it cannot tell. */
export async function checkRuntimeServes(check: ServedCheck): Promise<void> {
  const { target, handler, log } = check;
  const deadline = Date.now() + check.timeoutMs;
  let last = '';
  for (;;) {
    try {
      const status = await check.readStatus(check.socket, CALL_TIMEOUT_MS);
      const handlers = servedHandlers(status);
      if (handlers === undefined) {
        log.warn(`${target.cri} does not report its runtime handlers over CRI: cannot confirm that it ${check.expect === 'served' ? 'serves' : 'dropped'} ${handler}`);
        return;
      }
      const served = handlers.includes(handler);
      if (served === (check.expect === 'served')) {
        log.info(`${target.cri} ${served ? 'serves' : 'no longer serves'} handler ${handler}`, { handlers });
        return;
      }
      last = `it serves ${handlers.filter((h) => h !== '').join(', ') || 'no named handler'}`;
    } catch (error) {
      last = messageOf(error);
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - Date.now())));
  }
  throw new InstallerError(
    check.expect === 'served'
      ? `${target.cri} came back without handler ${handler} (${last}): it ignored the config that was written`
      : `${target.cri} still serves handler ${handler} after its config was restored (${last})`,
    `look at the ${target.cri} log on the node for why`,
  );
}

/** Where the kubelet reports handlers: waits until the Node lists ours. */
export async function checkNodeLists(cluster: ClusterApi, nodeName: string, handler: string, timeoutMs: number, log: Logger): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: readonly string[] | undefined;
  for (;;) {
    try {
      const node = await cluster.getNode(nodeName);
      last = node.runtimeHandlers;
      if (last?.includes(handler)) {
        // What pods on the handler may ask for (user namespaces, recursive read-only mounts), as the kubelet says.
        const features = node.runtimeHandlerFeatures?.[handler];
        log.info(`node ${nodeName} lists runtime handler ${handler} in its status`, features ? { features } : {});
        return;
      }
    } catch (error) {
      log.warn('reading the node for its runtime handlers failed; retrying', { error: messageOf(error) });
    }
    if (Date.now() >= deadline) break;
    await sleep(Math.min(2 * POLL_MS, Math.max(0, deadline - Date.now())));
  }
  throw new InstallerError(
    `the kubelet on node ${nodeName} does not list runtime handler ${handler} after ${Math.round(timeoutMs / 1000)} s (it lists ${last?.join(', ') || 'none'})`,
    'the kubelet may talk to another runtime instance than the one configured: check its --container-runtime-endpoint',
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
