/**
 * What the cluster sees of this node's install: the state label the RuntimeClass schedules on
 * (pending | installed | failed), the host-changed label the uninstall waits on, an Event on the Node for
 * each transition and each failure, with its reason, and the status annotation that keeps the last of them
 * (state, since when, reason, target, runtime) for `knawd-installer status --cluster`. Without a cluster (the
 * CLI on a node root) or a node name, nothing is reported and the run says so once.
 *
 * The labels are read once per run (from the Node the run read at its start) and patched only when they differ,
 * so a run that changes nothing on the node changes nothing in the API either. The annotation is written with
 * the labels, in the same patch, whenever the state or its reason changes.
 */
import { HOST_CHANGED_LABEL, NODE_STATE_LABEL, NODE_STATUS_ANNOTATION, NODE_STATUS_ANNOTATION_MAX_LENGTH, NodeState } from '../../catalog';
import { Logger } from '../log';
import { ClusterApi, NodeEvent } from './cluster';

export interface NodeReport {
  /** The state label's value to set; null removes it. */
  readonly state?: NodeState | null;
  /** Whether the host carries our changes (label set) or has been restored (label removed). */
  readonly hostChanged?: boolean;
  /** The Event to record with this report; its reason and message become the annotation's. */
  readonly event?: NodeEvent;
}

/** The status annotation's content. `removing`: the state label is gone, the host not restored yet. */
export interface NodeStatusRecord {
  readonly state: NodeState | 'removing';
  /** When this state was entered (ISO 8601). */
  readonly since: string;
  readonly reason: string;
  readonly message: string;
  readonly target?: string;
  readonly runtime?: string;
}

/** Told every state this run reports, with or without a cluster (the readiness marker follows it). */
export type StateListener = (state: NodeState | null) => void;

export class NodeStatus {
  private labels: Record<string, string>;
  private record?: NodeStatusRecord;
  private subject: { target?: string; runtime?: string } = {};

  private constructor(
    private readonly cluster: ClusterApi | undefined,
    private readonly nodeName: string | undefined,
    private readonly log: Logger,
    labels: Readonly<Record<string, string>>,
    private readonly onState: StateListener,
  ) {
    this.labels = { ...labels };
  }

  /** A reporter for `nodeName` starting from its labels as last read; skips (saying why) without a cluster or name. */
  static of(
    cluster: ClusterApi | undefined,
    nodeName: string | undefined,
    log: Logger,
    labels: Readonly<Record<string, string>> = {},
    onState: StateListener = () => undefined,
  ): NodeStatus {
    if (!cluster) log.info('not running against a cluster (no in-cluster config, no kubeconfig): the node state is not reported');
    else if (!nodeName) log.warn('no node name (NODE_NAME or --node-name): the node state is not reported', { fix: 'set NODE_NAME from spec.nodeName in the pod' });
    return new NodeStatus(cluster, nodeName, log, labels, onState);
  }

  /** What the annotation names as installed on the node. */
  about(target: string | undefined, runtime: string | undefined): void {
    this.subject = { target, runtime };
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
    if (report.state !== undefined) this.onState(report.state);
    if (!this.cluster || !this.nodeName) return;
    const patch: Record<string, string | null> = {};
    if (report.state !== undefined && (this.labels[NODE_STATE_LABEL] ?? null) !== report.state) patch[NODE_STATE_LABEL] = report.state;
    if (report.hostChanged !== undefined && this.hostChanged !== report.hostChanged) {
      patch[HOST_CHANGED_LABEL.key] = report.hostChanged ? HOST_CHANGED_LABEL.value : null;
    }
    const annotation = this.annotationFor(report, NODE_STATE_LABEL in patch);
    if (Object.keys(patch).length > 0 || annotation !== undefined) {
      await this.cluster.setNodeLabels(this.nodeName, patch, annotation === undefined ? undefined : { [NODE_STATUS_ANNOTATION]: annotation });
      for (const [key, value] of Object.entries(patch)) {
        if (value === null) delete this.labels[key];
        else this.labels[key] = value;
      }
      if (Object.keys(patch).length > 0) {
        this.log.info(`node ${this.nodeName} labels: ${Object.entries(patch).map(([k, v]) => (v === null ? `-${k}` : `${k}=${v}`)).join(' ')}`);
      }
    }
    if (report.event) await this.cluster.createNodeEvent(this.nodeName, report.event);
  }

  /** The annotation's new value, null to remove it, undefined to leave it. */
  private annotationFor(report: NodeReport, stateChanged: boolean): string | null | undefined {
    if (report.hostChanged === false) {
      this.record = undefined;
      return null;
    }
    if (!report.event && !stateChanged) return undefined;
    const label = report.state === undefined ? this.labels[NODE_STATE_LABEL] : report.state;
    const state = (label ?? 'removing') as NodeStatusRecord['state'];
    const since = this.record?.state === state ? this.record.since : new Date().toISOString();
    const message = report.event?.message ?? this.record?.message ?? '';
    const record = (length: number): NodeStatusRecord => ({ state, since, reason: report.event?.reason ?? this.record?.reason ?? '', message: message.slice(0, length), ...this.subject });
    // The message is what gives: the whole value stays within what the node-restriction policy accepts.
    let length = message.length;
    while (JSON.stringify(record(length)).length > NODE_STATUS_ANNOTATION_MAX_LENGTH) length = Math.floor(length * 0.8);
    this.record = record(length);
    return JSON.stringify(this.record);
  }
}

/** The status annotation of a Node, parsed; undefined when absent or not ours. */
export function parseNodeStatus(annotations: Readonly<Record<string, string>>): NodeStatusRecord | undefined {
  const text = annotations[NODE_STATUS_ANNOTATION];
  if (text === undefined) return undefined;
  try {
    const parsed = JSON.parse(text) as Partial<NodeStatusRecord>;
    if (typeof parsed.state !== 'string' || typeof parsed.since !== 'string') return undefined;
    return { state: parsed.state, since: parsed.since, reason: String(parsed.reason ?? ''), message: String(parsed.message ?? ''), target: parsed.target, runtime: parsed.runtime };
  } catch {
    return undefined;
  }
}
