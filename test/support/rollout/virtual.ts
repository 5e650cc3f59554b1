/**
 * Issue 32's scale simulation: N virtual installers in this one process, each the real restart budget
 * (lib/installer/kube/leases.ts) over its own HttpCluster and KubeHttp (its own connections, its own watch),
 * against a real kube-apiserver, as the installer's ServiceAccount. All start waiting at once (a first install
 * of every node); each "restart" is a timed sleep T while holding the slot. Every HTTP request is counted per
 * node and by phase (waiting for a slot, or holding and releasing it), every 409 answer too.
 */
import { readFileSync } from 'fs';
import { HttpCluster } from '../../../lib/installer/kube/cluster';
import { kubeconfigEndpoint } from '../../../lib/installer/kube/endpoint';
import { KubeApiError, KubeHttp, KubeRequest, KubeStream, KubeStreamOptions } from '../../../lib/installer/kube/http';
import { RestartBudget } from '../../../lib/installer/kube/leases';
import { Logger } from '../../../lib/installer/log';
import { maxOverlap } from './rollout';

export interface VirtualRolloutOptions {
  /** The ServiceAccount's kubeconfig. */
  readonly kubeconfig: string;
  readonly namespace: string;
  /** Node names get this prefix. */
  readonly name: string;
  readonly nodes: number;
  readonly slots: number;
  /** T. */
  readonly restartMs: number;
  readonly leaseSeconds: number;
  /** Give up after this long (the result then lists the nodes that never got a slot). */
  readonly timeoutMs: number;
}

export interface VirtualNode {
  readonly node: string;
  /** Milliseconds from the start: the wait began, the slot was held, the restart ended, the slot was released. */
  readonly arrived: number;
  granted?: number;
  restarted?: number;
  released?: number;
  waitingRequests: number;
  holdingRequests: number;
  conflicts: number;
  warnings: string[];
}

export interface VirtualRolloutResult {
  readonly nodes: readonly VirtualNode[];
  readonly totalMs: number;
  /** ceil(N/K) * T. */
  readonly idealMs: number;
  readonly maxConcurrent: number;
  readonly unfinished: readonly string[];
}

/** Counts a node's requests (and 409 answers) into whichever phase it is in. */
class CountingHttp extends KubeHttp {
  constructor(
    kubeconfig: string,
    private readonly record: VirtualNode,
  ) {
    super(kubeconfigEndpoint(readFileSync(kubeconfig, 'utf8'), kubeconfig));
  }

  private count(): void {
    if (this.record.granted === undefined) this.record.waitingRequests++;
    else this.record.holdingRequests++;
  }

  async request<T>(req: KubeRequest): Promise<T> {
    this.count();
    try {
      return await super.request<T>(req);
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) this.record.conflicts++;
      throw error;
    }
  }

  stream(req: KubeRequest, onLine: (line: string) => void, options: KubeStreamOptions): KubeStream {
    this.count();
    return super.stream(req, onLine, options);
  }
}

/** Keeps the warnings only: a run of thousands of nodes logs nothing else. */
function warningsInto(list: string[]): Logger {
  return { debug: () => undefined, info: () => undefined, warn: (msg) => void list.push(msg), error: (msg) => void list.push(msg) };
}

export async function runVirtualRollout(options: VirtualRolloutOptions): Promise<VirtualRolloutResult> {
  const began = Date.now();
  const at = (): number => Date.now() - began;
  const width = String(options.nodes - 1).length;
  const records: VirtualNode[] = Array.from({ length: options.nodes }, (_, i) => ({
    node: `${options.name}-${String(i).padStart(width, '0')}`,
    arrived: 0,
    waitingRequests: 0,
    holdingRequests: 0,
    conflicts: 0,
    warnings: [],
  }));
  const one = async (record: VirtualNode): Promise<void> => {
    const cluster = new HttpCluster(new CountingHttp(options.kubeconfig, record));
    const budget = new RestartBudget(cluster, { namespace: options.namespace, slots: options.slots, leaseSeconds: options.leaseSeconds, holder: record.node }, warningsInto(record.warnings));
    (record as { arrived: number }).arrived = at();
    const slot = await budget.acquire(async () => undefined);
    record.granted = at();
    await new Promise((resolve) => setTimeout(resolve, options.restartMs));
    record.restarted = at();
    await slot.release();
    record.released = at();
  };
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => (timer = setTimeout(resolve, options.timeoutMs)));
  await Promise.race([Promise.all(records.map(one)), timeout]);
  clearTimeout(timer);
  const totalMs = at();
  const intervals = records.filter((r) => r.granted !== undefined).map((r) => ({ start: r.granted!, end: r.restarted ?? totalMs }));
  return {
    nodes: records,
    totalMs,
    idealMs: Math.ceil(options.nodes / options.slots) * options.restartMs,
    maxConcurrent: maxOverlap(intervals),
    unfinished: records.filter((r) => r.released === undefined).map((r) => r.node),
  };
}
