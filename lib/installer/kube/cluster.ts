/**
 * The few Kubernetes API calls the installer makes, behind {@link ClusterApi}: read the node (its runtime,
 * kubelet and OS, labels), set/remove the installed label and the status annotation, remove a startup taint,
 * ask discovery whether Knative Serving is served, read and patch (with a resourceVersion precondition)
 * Knative's ConfigMaps, list labelled nodes, find pods still using the handler, read and update (at a
 * resourceVersion) the restart budget's Leases, list and watch the Leases of its namespace, create and delete
 * its own waiting ticket there. The one implementation is {@link HttpCluster}; tests run it against a real
 * kube-apiserver.
 *
 * Why not @kubernetes/client-node: the installer stays resident on every node, and client-node loads its whole
 * generated API (1,200 model classes and `request`) for any call. Bundled, one call through it peaks at 82 MiB
 * RSS by itself; the whole install through {@link KubeHttp}, API steps included, peaks at 57 MiB (`npm run
 * bench`, target 64). The calls are plain JSON over HTTPS.
 */
import * as fs from 'fs';
import { NODE_EVENT_NAMESPACE } from '../../catalog';
import { InstallerError, oneLine } from '../errors';
import { inClusterEndpoint, kubeconfigEndpoint, SERVICE_ACCOUNT_DIR } from './endpoint';
import { KubeApiError, KubeHttp } from './http';

export interface NodeInfo {
  readonly labels: Readonly<Record<string, string>>;
  /** `status.nodeInfo.containerRuntimeVersion`, e.g. `containerd://1.7.22`. */
  readonly containerRuntimeVersion?: string;
  /** `status.nodeInfo.kubeletVersion`, e.g. `v1.31.4+k3s1`. */
  readonly kubeletVersion?: string;
  /** `status.nodeInfo.osImage`: the host's /etc/os-release PRETTY_NAME, e.g. `Ubuntu 22.04.4 LTS`. */
  readonly osImage?: string;
  /** Names in `status.runtimeHandlers` (Kubernetes 1.30+); undefined when the kubelet reports none. */
  readonly runtimeHandlers?: readonly string[];
  /** `status.runtimeHandlers[].features` by handler name, for the handlers the kubelet reports features of. */
  readonly runtimeHandlerFeatures?: Readonly<Record<string, RuntimeHandlerFeatures>>;
}

/**
 * What the kubelet reports a runtime handler can do (from the runtime's CRI Status): pods asking for user
 * namespaces (`hostUsers: false`) or recursive read-only mounts are refused on a handler that lacks it.
 */
export interface RuntimeHandlerFeatures {
  readonly recursiveReadOnlyMounts?: boolean;
  readonly userNamespaces?: boolean;
}

/** A Warning Event the installer recorded on a Node, with the time it was last seen. */
export interface NodeWarning extends NodeEvent {
  readonly node: string;
  /** `lastTimestamp`, RFC 3339 (whole seconds). */
  readonly time: string;
}

/** An Event about a Node, as `kubectl describe node` shows them. */
export interface NodeEvent {
  readonly type: 'Normal' | 'Warning';
  /** CamelCase, e.g. `InstallFailed`. */
  readonly reason: string;
  /** One line. */
  readonly message: string;
}

/**
 * A ConfigMap as the installer may see it: absent (e.g. no Knative), not readable with its permissions (e.g.
 * Knative installed after the installer's RBAC), or its data at a resourceVersion.
 */
export type ConfigMapRead =
  | { readonly state: 'missing' }
  | { readonly state: 'forbidden'; readonly message: string }
  | { readonly state: 'found'; readonly data: Readonly<Record<string, string>>; readonly resourceVersion: string };

/** A taint on a Node's spec. */
export interface NodeTaint {
  readonly key: string;
  readonly value?: string;
  readonly effect: string;
}

/** A Node's name with its labels and annotations (a metadata-only list). */
export interface NodeMetadata {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
}

/** A coordination.k8s.io Lease as read, at its resourceVersion. */
export interface Lease {
  readonly name: string;
  readonly resourceVersion: string;
  /** `metadata.creationTimestamp`: the API server's clock, whole seconds. */
  readonly created: string;
  readonly spec: LeaseSpec;
  /** The object as read, written back with a new spec (so its metadata, labels included, is kept). */
  readonly object: Readonly<Record<string, unknown>>;
}

/** The Leases of a namespace at one resourceVersion (what a watch resumes from). */
export interface LeaseList {
  readonly resourceVersion: string;
  readonly leases: readonly Lease[];
}

/** What a watch on a namespace's Leases tells: a change, a bookmark (the version it got to), or an error event. */
export type LeaseEvent =
  | { readonly type: 'ADDED' | 'MODIFIED' | 'DELETED'; readonly lease: Lease }
  | { readonly type: 'BOOKMARK'; readonly resourceVersion: string }
  | { readonly type: 'ERROR'; readonly status: number | undefined; readonly message: string };

/** An open watch: `done` resolves when the server ended it, rejects (a KubeApiError) when it failed. */
export interface LeaseWatch {
  readonly done: Promise<void>;
  stop(): void;
}

export interface LeaseSpec {
  readonly holderIdentity?: string;
  readonly leaseDurationSeconds?: number;
  /** MicroTime: RFC 3339 with six fractional digits. */
  readonly acquireTime?: string;
  readonly renewTime?: string;
  readonly leaseTransitions?: number;
}

export interface ClusterApi {
  getNode(name: string): Promise<NodeInfo>;
  /**
   * Sets node labels, or removes them with `null`, in one JSON merge patch; annotations likewise in the same
   * patch when given.
   */
  setNodeLabels(name: string, labels: Readonly<Record<string, string | null>>, annotations?: Readonly<Record<string, string | null>>): Promise<void>;
  /** The Node's taints (its spec), in order. */
  nodeTaints(name: string): Promise<NodeTaint[]>;
  /**
   * Removes the taint at `index` (a JSON patch that first tests it is still `taint` there): `moved` when the
   * Node's taints changed meanwhile (read them again).
   */
  removeNodeTaint(name: string, index: number, taint: NodeTaint): Promise<'removed' | 'moved'>;
  /** Every Node's name, labels and annotations, in name order. */
  listNodeMetadata(): Promise<NodeMetadata[]>;
  /** A Lease, or undefined when it does not exist. */
  getLease(namespace: string, name: string): Promise<Lease | undefined>;
  /** Replaces the Lease's spec only while it is still at its resourceVersion: `conflict` when it moved on. */
  updateLease(namespace: string, lease: Lease, spec: LeaseSpec): Promise<Lease | 'conflict'>;
  /** The Leases in the namespace (all, or those matching a label selector), and the resourceVersion of that list. */
  listLeases(namespace: string, labelSelector?: string): Promise<LeaseList>;
  /**
   * Watches the namespace's Leases matching a label selector from `resourceVersion` (bookmarks asked for);
   * `onEvent` gets every event in order. A watch that sees nothing for `idleMs` fails (a connection that died
   * without a word).
   */
  watchLeases(namespace: string, labelSelector: string, resourceVersion: string, onEvent: (event: LeaseEvent) => void, idleMs: number): LeaseWatch;
  /** Creates a Lease: `exists` when one of that name is there already. */
  createLease(namespace: string, name: string, labels: Readonly<Record<string, string>>, spec: LeaseSpec): Promise<Lease | 'exists'>;
  /** Deletes a Lease; one that is gone already is no error. */
  deleteLease(namespace: string, name: string): Promise<void>;
  /** Records an Event on the Node (namespace `default`, as the kubelet's own node events). */
  createNodeEvent(name: string, event: NodeEvent): Promise<void>;
  /** The installer's Warning Events on Nodes (all, or of one reason), newest first. */
  nodeWarnings(reason?: string): Promise<NodeWarning[]>;
  /** Whether the API server serves `groupVersion` (e.g. `serving.knative.dev/v1`), from discovery. */
  servesApi(groupVersion: string): Promise<boolean>;
  getConfigMap(namespace: string, name: string): Promise<ConfigMapRead>;
  /**
   * Sets data keys, or removes them with `null` (JSON merge patch), only while the ConfigMap is still at
   * `resourceVersion`: `conflict` when someone changed it since it was read (read again and redo).
   */
  patchConfigMap(namespace: string, name: string, data: Readonly<Record<string, string | null>>, resourceVersion: string): Promise<'patched' | 'conflict'>;
  /** Names of the nodes matching a label selector. */
  listNodes(labelSelector: string): Promise<string[]>;
  /**
   * `namespace/name` of the pods on `node` that are not finished and run under a RuntimeClass whose handler is
   * `handler`: removing the handler under them would leave them stuck Terminating.
   */
  podsUsingHandler(node: string, handler: string): Promise<string[]>;
}

/**
 * The API client for this run: from `kubeconfig` when given, else the in-cluster config when the pod has
 * one; undefined when neither (then the API steps are skipped).
 */
export function connectCluster(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): ClusterApi | undefined {
  if (kubeconfig !== undefined) {
    let text: string;
    try {
      text = fs.readFileSync(kubeconfig, 'utf8');
    } catch (error) {
      throw new InstallerError(`cannot read kubeconfig ${kubeconfig}: ${error instanceof Error ? error.message : String(error)}`, 'pass a readable kubeconfig with --kubeconfig or KUBECONFIG');
    }
    return new HttpCluster(new KubeHttp(kubeconfigEndpoint(text, kubeconfig)));
  }
  const inCluster = inClusterEndpoint(env, (file) => fs.existsSync(file), serviceAccountDir);
  return inCluster && new HttpCluster(new KubeHttp(inCluster));
}

interface ObjectMeta {
  readonly name?: string;
  readonly namespace?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  readonly resourceVersion?: string;
}

interface List<T> {
  /** null when empty in some answers (a Go nil slice), e.g. PartialObjectMetadataList. */
  readonly items: T[] | null;
  readonly metadata?: { readonly continue?: string };
}

interface Node {
  readonly metadata?: ObjectMeta;
  readonly spec?: { readonly taints?: NodeTaint[] };
  readonly status?: {
    readonly nodeInfo?: { readonly containerRuntimeVersion?: string; readonly kubeletVersion?: string; readonly osImage?: string };
    readonly runtimeHandlers?: ReadonlyArray<{ readonly name?: string; readonly features?: RuntimeHandlerFeatures }>;
  };
}

interface NodeEventObject {
  readonly involvedObject?: { readonly name?: string };
  readonly reason?: string;
  readonly message?: string;
  readonly lastTimestamp?: string;
}

interface ConfigMap {
  readonly metadata?: { readonly resourceVersion?: string };
  readonly data?: Record<string, string>;
}

interface RuntimeClass {
  readonly metadata?: ObjectMeta;
  readonly handler: string;
}

interface Pod {
  readonly metadata?: ObjectMeta;
  readonly spec?: { readonly runtimeClassName?: string };
}

const MERGE_PATCH = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';
const EVENT_SOURCE = 'knawd-installer';
/** Nodes as metadata only: a labelled-node poll on a large cluster need not download every node's status. */
const METADATA_LIST = 'application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1';

export class HttpCluster implements ClusterApi {
  constructor(
    private readonly http: KubeHttp,
    /** Nodes per list request; pages keep a 5,000-node answer out of memory at once. */
    private readonly pageSize = 500,
  ) {}

  async getNode(name: string): Promise<NodeInfo> {
    const node = await call(`read node ${name}`, () => this.http.request<Node>({ method: 'GET', path: `/api/v1/nodes/${enc(name)}` }));
    const handlers = node.status?.runtimeHandlers?.map((h) => h.name ?? '');
    const features = Object.fromEntries((node.status?.runtimeHandlers ?? []).filter((h) => h.features).map((h) => [h.name ?? '', { ...h.features }]));
    return {
      labels: node.metadata?.labels ?? {},
      containerRuntimeVersion: node.status?.nodeInfo?.containerRuntimeVersion,
      // The API server gives "" for what the kubelet did not report: not reported.
      kubeletVersion: node.status?.nodeInfo?.kubeletVersion || undefined,
      osImage: node.status?.nodeInfo?.osImage || undefined,
      ...(handlers && handlers.length > 0 ? { runtimeHandlers: handlers } : {}),
      ...(Object.keys(features).length > 0 ? { runtimeHandlerFeatures: features } : {}),
    };
  }

  async setNodeLabels(name: string, labels: Readonly<Record<string, string | null>>, annotations?: Readonly<Record<string, string | null>>): Promise<void> {
    const body = { metadata: { labels, ...(annotations ? { annotations } : {}) } };
    await call(`label node ${name}`, () => this.http.request({ method: 'PATCH', path: `/api/v1/nodes/${enc(name)}`, body, contentType: MERGE_PATCH }));
  }

  async nodeTaints(name: string): Promise<NodeTaint[]> {
    const node = await call(`read node ${name}`, () => this.http.request<Node>({ method: 'GET', path: `/api/v1/nodes/${enc(name)}` }));
    return node.spec?.taints ?? [];
  }

  async removeNodeTaint(name: string, index: number, taint: NodeTaint): Promise<'removed' | 'moved'> {
    const at = `/spec/taints/${index}`;
    const body = [{ op: 'test', path: at, value: taint }, { op: 'remove', path: at }];
    try {
      await this.http.request({ method: 'PATCH', path: `/api/v1/nodes/${enc(name)}`, body, contentType: JSON_PATCH });
      return 'removed';
    } catch (error) {
      // A failed `test` operation is 422 (Unprocessable Entity): someone changed the taints since they were read.
      if (error instanceof KubeApiError && error.status === 422) return 'moved';
      throw apiError(`remove taint ${taint.key} from node ${name}`, error);
    }
  }

  async listNodeMetadata(): Promise<NodeMetadata[]> {
    const nodes: NodeMetadata[] = [];
    let page: string | undefined;
    do {
      const list = await call('list nodes', () =>
        this.http.request<List<{ metadata?: ObjectMeta }>>({ method: 'GET', path: '/api/v1/nodes', query: { limit: String(this.pageSize), continue: page }, accept: METADATA_LIST }),
      );
      nodes.push(...(list.items ?? []).map((n) => ({ name: n.metadata?.name ?? '?', labels: n.metadata?.labels ?? {}, annotations: n.metadata?.annotations ?? {} })));
      page = list.metadata?.continue || undefined;
    } while (page);
    return nodes.sort((a, b) => a.name.localeCompare(b.name));
  }

  async getLease(namespace: string, name: string): Promise<Lease | undefined> {
    try {
      return leaseOf(await this.http.request<LeaseObject>({ method: 'GET', path: leasePath(namespace, name) }));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return undefined;
      throw apiError(`read Lease ${namespace}/${name}`, error);
    }
  }

  async updateLease(namespace: string, lease: Lease, spec: LeaseSpec): Promise<Lease | 'conflict'> {
    // The resourceVersion of the object as read makes the PUT conditional: 409 if anyone wrote it since.
    const body = { ...lease.object, spec };
    try {
      return leaseOf(await this.http.request<LeaseObject>({ method: 'PUT', path: leasePath(namespace, lease.name), body }));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return 'conflict';
      throw apiError(`update Lease ${namespace}/${lease.name}`, error);
    }
  }

  async listLeases(namespace: string, labelSelector?: string): Promise<LeaseList> {
    const list = await call(`list Leases in ${namespace}`, () =>
      this.http.request<List<LeaseObject> & { metadata?: { resourceVersion?: string } }>({ method: 'GET', path: leasesPath(namespace), query: { labelSelector } }),
    );
    return { resourceVersion: list.metadata?.resourceVersion ?? '', leases: (list.items ?? []).map(leaseOf) };
  }

  watchLeases(namespace: string, labelSelector: string, resourceVersion: string, onEvent: (event: LeaseEvent) => void, idleMs: number): LeaseWatch {
    // timeoutSeconds: the server ends a watch after at most this; the waiter resumes it from the version it got to.
    const query = { watch: '1', labelSelector, resourceVersion, allowWatchBookmarks: 'true', timeoutSeconds: '1800' };
    return this.http.stream(
      { method: 'GET', path: leasesPath(namespace), query },
      (line) => {
        const event = JSON.parse(line) as { type?: string; object?: LeaseObject & { code?: number; message?: string } };
        const object = event.object ?? {};
        if (event.type === 'BOOKMARK') onEvent({ type: 'BOOKMARK', resourceVersion: object.metadata?.resourceVersion ?? '' });
        else if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED') onEvent({ type: event.type, lease: leaseOf(object) });
        else onEvent({ type: 'ERROR', status: object.code, message: object.message ?? line.slice(0, 200) });
      },
      { idleMs },
    );
  }

  async createLease(namespace: string, name: string, labels: Readonly<Record<string, string>>, spec: LeaseSpec): Promise<Lease | 'exists'> {
    const body = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace, labels }, spec };
    try {
      return leaseOf(await this.http.request<LeaseObject>({ method: 'POST', path: leasesPath(namespace), body }));
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return 'exists';
      throw apiError(`create Lease ${namespace}/${name}`, error);
    }
  }

  async deleteLease(namespace: string, name: string): Promise<void> {
    try {
      await this.http.request({ method: 'DELETE', path: leasePath(namespace, name) });
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return;
      throw apiError(`delete Lease ${namespace}/${name}`, error);
    }
  }

  async createNodeEvent(name: string, event: NodeEvent): Promise<void> {
    const now = new Date().toISOString();
    const body = {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { generateName: `${name}.knawd-`, namespace: NODE_EVENT_NAMESPACE },
      // uid = the node's name: what the kubelet writes for its node events and `kubectl describe node` looks for.
      involvedObject: { apiVersion: 'v1', kind: 'Node', name, uid: name },
      type: event.type,
      reason: event.reason,
      message: event.message,
      source: { component: EVENT_SOURCE, host: name },
      reportingComponent: EVENT_SOURCE,
      reportingInstance: name,
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
    };
    await call(`record an event on node ${name}`, () =>
      this.http.request({ method: 'POST', path: `/api/v1/namespaces/${NODE_EVENT_NAMESPACE}/events`, body }),
    );
  }

  async servesApi(groupVersion: string): Promise<boolean> {
    try {
      await this.http.request({ method: 'GET', path: `/apis/${groupVersion.split('/').map(enc).join('/')}` });
      return true;
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return false;
      throw apiError(`discover ${groupVersion}`, error);
    }
  }

  async getConfigMap(namespace: string, name: string): Promise<ConfigMapRead> {
    try {
      const cm = await this.http.request<ConfigMap>({ method: 'GET', path: configMapPath(namespace, name) });
      return { state: 'found', data: cm.data ?? {}, resourceVersion: cm.metadata?.resourceVersion ?? '' };
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 404) return { state: 'missing' };
      if (error instanceof KubeApiError && error.status === 403) return { state: 'forbidden', message: oneLine(error.message) };
      throw apiError(`read ConfigMap ${namespace}/${name}`, error);
    }
  }

  async patchConfigMap(namespace: string, name: string, data: Readonly<Record<string, string | null>>, resourceVersion: string): Promise<'patched' | 'conflict'> {
    // A resourceVersion in a merge patch is a precondition: the API server answers 409 if the object moved on.
    const body = { metadata: { resourceVersion }, data };
    try {
      await this.http.request({ method: 'PATCH', path: configMapPath(namespace, name), body, contentType: MERGE_PATCH });
      return 'patched';
    } catch (error) {
      if (error instanceof KubeApiError && error.status === 409) return 'conflict';
      throw apiError(`patch ConfigMap ${namespace}/${name}`, error);
    }
  }

  async nodeWarnings(reason?: string): Promise<NodeWarning[]> {
    const fieldSelector = `involvedObject.kind=Node,type=Warning,source=${EVENT_SOURCE}${reason ? `,reason=${reason}` : ''}`;
    const list = await call('list node events', () =>
      this.http.request<List<NodeEventObject>>({ method: 'GET', path: `/api/v1/namespaces/${NODE_EVENT_NAMESPACE}/events`, query: { fieldSelector } }),
    );
    return (list.items ?? [])
      .map((e) => ({ type: 'Warning' as const, node: e.involvedObject?.name ?? '', reason: e.reason ?? '', message: e.message ?? '', time: e.lastTimestamp ?? '' }))
      .sort((a, b) => b.time.localeCompare(a.time));
  }

  async listNodes(labelSelector: string): Promise<string[]> {
    const names: string[] = [];
    let page: string | undefined;
    do {
      const list = await call('list nodes', () =>
        this.http.request<List<{ metadata?: ObjectMeta }>>({ method: 'GET', path: '/api/v1/nodes', query: { labelSelector, limit: String(this.pageSize), continue: page }, accept: METADATA_LIST }),
      );
      names.push(...(list.items ?? []).map((n) => n.metadata?.name ?? '?'));
      page = list.metadata?.continue || undefined;
    } while (page);
    return names.sort();
  }

  async podsUsingHandler(node: string, handler: string): Promise<string[]> {
    const classes = await call('list RuntimeClasses', () => this.http.request<List<RuntimeClass>>({ method: 'GET', path: '/apis/node.k8s.io/v1/runtimeclasses' }));
    const names = new Set((classes.items ?? []).filter((c) => c.handler === handler).map((c) => c.metadata?.name));
    if (names.size === 0) return [];
    // Finished pods hold no container, so they do not keep the handler busy.
    const fieldSelector = `spec.nodeName=${node},status.phase!=Succeeded,status.phase!=Failed`;
    const pods = await call(`list pods on node ${node}`, () => this.http.request<List<Pod>>({ method: 'GET', path: '/api/v1/pods', query: { fieldSelector } }));
    return (pods.items ?? [])
      .filter((p) => names.has(p.spec?.runtimeClassName))
      .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)
      .sort();
  }
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

interface LeaseObject {
  readonly metadata?: ObjectMeta & { readonly creationTimestamp?: string };
  readonly spec?: LeaseSpec;
}

function leaseOf(object: LeaseObject): Lease {
  const metadata = object.metadata ?? {};
  return { name: metadata.name ?? '', resourceVersion: metadata.resourceVersion ?? '', created: metadata.creationTimestamp ?? '', spec: object.spec ?? {}, object: object as Record<string, unknown> };
}

function leasesPath(namespace: string): string {
  return `/apis/coordination.k8s.io/v1/namespaces/${enc(namespace)}/leases`;
}

function leasePath(namespace: string, name: string): string {
  return `${leasesPath(namespace)}/${enc(name)}`;
}

function configMapPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${enc(namespace)}/configmaps/${enc(name)}`;
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw apiError(what, error);
  }
}

/** A failed API call as the installer reports it, with the HTTP status (undefined: no answer) for callers that retry. */
export class ApiCallError extends InstallerError {
  constructor(
    message: string,
    fix: string,
    readonly status: number | undefined,
  ) {
    super(message, fix);
    this.name = 'ApiCallError';
  }
}

function apiError(what: string, error: unknown): InstallerError {
  const status = error instanceof KubeApiError ? error.status : undefined;
  const detail = error instanceof Error ? error.message : String(error);
  return new ApiCallError(
    `Kubernetes API: cannot ${what}${status ? ` (HTTP ${status})` : ''}: ${oneLine(detail).slice(0, 300)}`,
    status === 403
      ? "grant the installer's ServiceAccount the permission (see the chart's ClusterRoles)"
      : 'check that the API server is reachable from the node and retry',
    status,
  );
}
