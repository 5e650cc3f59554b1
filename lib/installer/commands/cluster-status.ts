/**
 * `status --cluster`: every node of the cluster in one table, from the API alone (one paged, metadata-only
 * list): its target and runtime, its state (the state label; `removing` while the host-changed label outlives
 * it; `-` where nothing was installed), since when and why (the installer's status annotation, when it
 * describes that state). Exit 1 while any node is pending or failed, so a script can wait on it.
 */
import { HOST_CHANGED_LABEL, NODE_STATE_LABEL, NODE_STATES } from '../../catalog';
import { InstallerError } from '../errors';
import { ClusterApi, NodeMetadata } from '../kube/cluster';
import { parseNodeStatus } from '../kube/node-state';

export interface NodeLine {
  readonly node: string;
  readonly target: string;
  readonly runtime: string;
  readonly state: string;
  readonly since: string;
  readonly reason: string;
}

export interface ClusterStatus {
  readonly nodes: readonly NodeLine[];
  /** The table: a header, one line per node, a summary. */
  readonly lines: readonly string[];
  readonly exitCode: 0 | 1;
}

const NONE = '-';

export function nodeLine(node: NodeMetadata, now: Date): NodeLine {
  const label = node.labels[NODE_STATE_LABEL];
  const state = label !== undefined ? label : node.labels[HOST_CHANGED_LABEL.key] === HOST_CHANGED_LABEL.value ? 'removing' : NONE;
  const record = parseNodeStatus(node.annotations);
  const current = record && record.state === state ? record : undefined;
  return {
    node: node.name,
    target: record?.target ?? NONE,
    runtime: record?.runtime ?? NONE,
    state,
    since: current ? `${current.since.replace(/\.\d+Z$/, 'Z')} (${age(now.getTime() - Date.parse(current.since))})` : NONE,
    reason: current ? [current.reason, current.message].filter((p) => p !== '').join(': ') || NONE : NONE,
  };
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.round(s / 60)}m`;
  if (s < 172800) return `${Math.round(s / 3600)}h`;
  return `${Math.round(s / 86400)}d`;
}

function table(rows: readonly NodeLine[]): string[] {
  const header: NodeLine = { node: 'NODE', target: 'TARGET', runtime: 'RUNTIME', state: 'STATE', since: 'SINCE', reason: 'REASON' };
  const columns = ['node', 'target', 'runtime', 'state', 'since'] as const;
  const widths = columns.map((c) => Math.max(...[header, ...rows].map((r) => r[c].length)));
  return [header, ...rows].map((r) => [...columns.map((c, i) => r[c].padEnd(widths[i])), r.reason].join('  '));
}

export async function clusterStatus(cluster: ClusterApi | undefined, now: () => Date = () => new Date()): Promise<ClusterStatus> {
  if (!cluster) {
    throw new InstallerError('status --cluster needs the Kubernetes API: no kubeconfig and no in-cluster config', 'pass --kubeconfig FILE (or set KUBECONFIG)');
  }
  const at = now();
  const nodes = (await cluster.listNodeMetadata()).map((n) => nodeLine(n, at));
  const count = (state: string): number => nodes.filter((n) => n.state === state).length;
  const unsettled = count('pending') + count('failed');
  const summary = [...NODE_STATES.map((s) => `${count(s)} ${s}`), `${count('removing')} removing`, `${count(NONE)} without an install`].join(', ');
  return { nodes, lines: [...table(nodes), `${nodes.length} node(s): ${summary}`], exitCode: unsettled > 0 ? 1 : 0 };
}
