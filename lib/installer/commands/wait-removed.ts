/**
 * `wait-removed`: the uninstall Job's wait. Polls the API until no node carries the host-changed label (every
 * node restored), bounded. It fails at once when a remover refuses (a RemoveRefused Event since the wait began:
 * pods still run with the handler there, after the remover waited for them), so the uninstall stops with that
 * reason and the release stays; on timeout it fails naming the nodes not restored and each remover's last reason.
 */
import { InstallerError } from '../errors';
import { ClusterApi, NodeWarning } from '../kube/cluster';
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
  const started = now();
  const deadline = started + options.timeoutSeconds * 1000;
  // Event times have whole seconds: a refusal in the second the wait began counts.
  const since = Math.floor(started / 1000) * 1000;
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
    if (nodes) {
      const refused = (await warningsOf(cluster, nodes, 'RemoveRefused')).filter((w) => Date.parse(w.time) >= since);
      if (refused.length > 0) {
        throw new InstallerError(
          `the remover refused on ${refused.length} node(s): ${refused.map((w) => `${w.node}: ${w.message}`).join('; ')}`,
          'delete or move those pods, then run the uninstall again (the release stays until every node is restored)',
        );
      }
    }
    if (now() >= deadline) {
      const why = last ? describeReasons(await warningsOf(cluster, last)) : '';
      throw new InstallerError(
        `timed out after ${options.timeoutSeconds} s: ${last ? `${last.length} node(s) not restored yet (${options.labelSelector}): ${last.join(', ')}${why}` : `the API never answered the node listing`}`,
        'look at the knawd-remover pod logs on those nodes (kubectl logs -l app.kubernetes.io/component=remover), fix the cause, and run the uninstall again',
      );
    }
    log.debug('waiting for nodes', { nodes: last });
    await sleep(pollMs);
  }
}

/** The latest Warning of each of `nodes` (of one reason, or any), for messages; none when they cannot be read. */
async function warningsOf(cluster: ClusterApi, nodes: readonly string[], reason?: string): Promise<NodeWarning[]> {
  const all = await cluster.nodeWarnings(reason).catch(() => [] as NodeWarning[]);
  return nodes.flatMap((node) => all.find((w) => w.node === node) ?? []);
}

function describeReasons(warnings: readonly NodeWarning[]): string {
  return warnings.length > 0 ? `; ${warnings.slice(0, 5).map((w) => `${w.node}: ${w.reason}: ${w.message}`).join('; ')}` : '';
}
