/**
 * `wait-removed`: the uninstall Job's wait. Polls the API until no node carries the host-changed label (every
 * node restored), bounded; on timeout it fails naming the nodes not restored and the last reason each remover
 * gave (its Warning Event, e.g. pods still running with the handler).
 */
import { InstallerError } from '../errors';
import { ClusterApi } from '../kube/cluster';
import { Logger } from '../log';

export interface WaitOptions {
  readonly labelSelector: string;
  readonly timeoutSeconds: number;
  /** @default 2000 */
  readonly pollMs?: number;
  /** Injected clock and sleep (tests). */
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

export async function waitRemoved(cluster: ClusterApi | undefined, log: Logger, options: WaitOptions): Promise<void> {
  if (!cluster) {
    throw new InstallerError('wait-removed needs the Kubernetes API, but there is no in-cluster config and no kubeconfig', 'run it in a pod with a ServiceAccount, or pass --kubeconfig');
  }
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const pollMs = options.pollMs ?? 2000;
  const deadline = now() + options.timeoutSeconds * 1000;
  let last: string[] | undefined;
  for (;;) {
    let nodes: string[] | undefined;
    try {
      nodes = await cluster.listNodes(options.labelSelector);
      last = nodes;
    } catch (error) {
      // A transient API error is not a verdict; keep polling until the deadline.
      log.warn('listing nodes failed; retrying', { error: error instanceof Error ? error.message : String(error) });
    }
    if (nodes && nodes.length === 0) {
      log.info(`no node carries ${options.labelSelector}: every node is restored`);
      return;
    }
    if (now() >= deadline) {
      const why = last ? await reasons(cluster, last) : '';
      throw new InstallerError(
        `timed out after ${options.timeoutSeconds} s: ${last ? `${last.length} node(s) not restored yet (${options.labelSelector}): ${last.join(', ')}${why}` : `the API never answered the node listing`}`,
        'look at the knawd-remover pod logs on those nodes (kubectl logs -l app.kubernetes.io/component=remover), fix the cause, and run the uninstall again',
      );
    }
    log.debug('waiting for nodes', { nodes: last });
    await sleep(pollMs);
  }
}

/** The latest reason the remover gave on each node (its last Warning Event), for the timeout message. */
async function reasons(cluster: ClusterApi, nodes: readonly string[]): Promise<string> {
  const parts: string[] = [];
  for (const node of nodes.slice(0, 5)) {
    const latest = await cluster.nodeWarnings(node).then((w) => w[0], () => undefined);
    if (latest) parts.push(`${node}: ${latest.reason}: ${latest.message}`);
  }
  return parts.length > 0 ? `; ${parts.join('; ')}` : '';
}
