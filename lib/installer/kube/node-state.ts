/**
 * What the cluster sees of this node's install: the state label the RuntimeClass schedules on
 * (pending | installed | failed), the host-changed label the uninstall waits on, and an Event on the Node for
 * each transition and each failure, with its reason. Without a cluster (the CLI on a node root) or a node
 * name, nothing is reported and the run says so once.
 *
 * The labels are read once per run (from the Node the run read at its start) and patched only when they differ,
 * so a run that changes nothing on the node changes nothing in the API either.
 */
import { HOST_CHANGED_LABEL, NODE_STATE_LABEL, NodeState } from '../../catalog';
import { Logger } from '../log';
import { ClusterApi, NodeEvent } from './cluster';

export interface NodeReport {
  /** The state label's value to set; null removes it. */
  readonly state?: NodeState | null;
  /** Whether the host carries our changes (label set) or has been restored (label removed). */
  readonly hostChanged?: boolean;
  /** The Event to record with this report. */
  readonly event?: NodeEvent;
}

export class NodeStatus {
  private labels: Record<string, string>;

  private constructor(
    private readonly cluster: ClusterApi | undefined,
    private readonly nodeName: string | undefined,
    private readonly log: Logger,
    labels: Readonly<Record<string, string>>,
  ) {
    this.labels = { ...labels };
  }

  /** A reporter for `nodeName` starting from its labels as last read; skips (saying why) without a cluster or name. */
  static of(cluster: ClusterApi | undefined, nodeName: string | undefined, log: Logger, labels: Readonly<Record<string, string>> = {}): NodeStatus {
    if (!cluster) log.info('not running against a cluster (no in-cluster config, no kubeconfig): the node state is not reported');
    else if (!nodeName) log.warn('no node name (NODE_NAME or --node-name): the node state is not reported', { fix: 'set NODE_NAME from spec.nodeName in the pod' });
    return new NodeStatus(cluster, nodeName, log, labels);
  }

  /** Whether reports reach the API. */
  get reporting(): boolean {
    return this.cluster !== undefined && this.nodeName !== undefined;
  }

  get state(): string | undefined {
    return this.labels[NODE_STATE_LABEL];
  }

  get hostChanged(): boolean {
    return this.labels[HOST_CHANGED_LABEL.key] === HOST_CHANGED_LABEL.value;
  }

  /** Patches what differs (one request) and records the event (a second one). */
  async report(report: NodeReport): Promise<void> {
    if (!this.cluster || !this.nodeName) return;
    const patch: Record<string, string | null> = {};
    if (report.state !== undefined && (this.labels[NODE_STATE_LABEL] ?? null) !== report.state) patch[NODE_STATE_LABEL] = report.state;
    if (report.hostChanged !== undefined && this.hostChanged !== report.hostChanged) {
      patch[HOST_CHANGED_LABEL.key] = report.hostChanged ? HOST_CHANGED_LABEL.value : null;
    }
    if (Object.keys(patch).length > 0) {
      await this.cluster.setNodeLabels(this.nodeName, patch);
      for (const [key, value] of Object.entries(patch)) {
        if (value === null) delete this.labels[key];
        else this.labels[key] = value;
      }
      this.log.info(`node ${this.nodeName} labels: ${Object.entries(patch).map(([k, v]) => (v === null ? `-${k}` : `${k}=${v}`)).join(' ')}`);
    }
    if (report.event) await this.cluster.createNodeEvent(this.nodeName, report.event);
  }
}
