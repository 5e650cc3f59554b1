/**
 * The few Kubernetes API calls the installer makes, behind {@link ClusterApi}: read the node (containerd
 * version, labels), set/remove the installed label, read/patch one key of Knative's feature ConfigMap, list
 * labelled nodes. The real implementation is a thin layer over @kubernetes/client-node; tests use a fake.
 */
import * as fs from 'fs';
import type * as k8s from '@kubernetes/client-node';
import { InstallerError, oneLine } from './errors';

export interface NodeInfo {
  readonly labels: Readonly<Record<string, string>>;
  /** `status.nodeInfo.containerRuntimeVersion`, e.g. `containerd://1.7.22`. */
  readonly containerRuntimeVersion?: string;
}

/** A ConfigMap key: `found` false when the ConfigMap itself does not exist (e.g. no Knative). */
export type ConfigMapKey = { readonly found: false } | { readonly found: true; readonly value: string | undefined };

export interface ClusterApi {
  getNode(name: string): Promise<NodeInfo>;
  /** Sets a node label, or removes it with `null` (JSON merge patch). */
  setNodeLabel(name: string, key: string, value: string | null): Promise<void>;
  getConfigMapKey(namespace: string, name: string, key: string): Promise<ConfigMapKey>;
  /** Sets one data key, or removes it with `null` (JSON merge patch). */
  setConfigMapKey(namespace: string, name: string, key: string, value: string | null): Promise<void>;
  /** Names of the nodes matching a label selector. */
  listNodes(labelSelector: string): Promise<string[]>;
  /**
   * `namespace/name` of the pods on `node` that are not finished and run under a RuntimeClass whose handler is
   * `handler`: removing the handler under them would leave them stuck Terminating.
   */
  podsUsingHandler(node: string, handler: string): Promise<string[]>;
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/**
 * The API client for this run: from `kubeconfig` when given, else the in-cluster config when the pod has
 * one; undefined when neither (then the API steps are skipped).
 */
export function connectCluster(kubeconfig: string | undefined, env: NodeJS.ProcessEnv = process.env): ClusterApi | undefined {
  if (kubeconfig === undefined && !(env.KUBERNETES_SERVICE_HOST && fs.existsSync(SERVICE_ACCOUNT_TOKEN))) return undefined;
  const client = loadClient();
  const config = new client.KubeConfig();
  if (kubeconfig !== undefined) {
    try {
      config.loadFromFile(kubeconfig);
    } catch (error) {
      throw new InstallerError(`cannot read kubeconfig ${kubeconfig}: ${error instanceof Error ? error.message : String(error)}`, 'pass a readable kubeconfig with --kubeconfig or KUBECONFIG');
    }
  } else if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
    config.loadFromCluster();
  } else {
    return undefined;
  }
  return new ClientNodeCluster(config.makeApiClient(client.CoreV1Api), config.makeApiClient(client.NodeV1Api));
}

/** Loaded on first use only: the client is large, and most node runs outside a cluster never need it. */
function loadClient(): typeof k8s {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('@kubernetes/client-node') as typeof k8s;
}

const MERGE_PATCH = { headers: { 'Content-Type': 'application/merge-patch+json' } };

export class ClientNodeCluster implements ClusterApi {
  constructor(
    private readonly core: k8s.CoreV1Api,
    private readonly nodeApi: k8s.NodeV1Api,
  ) {}

  async getNode(name: string): Promise<NodeInfo> {
    const { body } = await call(`read node ${name}`, () => this.core.readNode(name));
    return { labels: body.metadata?.labels ?? {}, containerRuntimeVersion: body.status?.nodeInfo?.containerRuntimeVersion };
  }

  async setNodeLabel(name: string, key: string, value: string | null): Promise<void> {
    const patch = { metadata: { labels: { [key]: value } } };
    await call(`label node ${name}`, () => this.core.patchNode(name, patch, undefined, undefined, undefined, undefined, undefined, MERGE_PATCH));
  }

  async getConfigMapKey(namespace: string, name: string, key: string): Promise<ConfigMapKey> {
    try {
      const { body } = await this.core.readNamespacedConfigMap(name, namespace);
      return { found: true, value: body.data?.[key] };
    } catch (error) {
      if (statusOf(error) === 404) return { found: false };
      throw apiError(`read ConfigMap ${namespace}/${name}`, error);
    }
  }

  async setConfigMapKey(namespace: string, name: string, key: string, value: string | null): Promise<void> {
    const patch = { data: { [key]: value } };
    await call(`patch ConfigMap ${namespace}/${name}`, () =>
      this.core.patchNamespacedConfigMap(name, namespace, patch, undefined, undefined, undefined, undefined, undefined, MERGE_PATCH),
    );
  }

  async listNodes(labelSelector: string): Promise<string[]> {
    const { body } = await call('list nodes', () => this.core.listNode(undefined, undefined, undefined, undefined, labelSelector));
    return body.items.map((n) => n.metadata?.name ?? '?').sort();
  }

  async podsUsingHandler(node: string, handler: string): Promise<string[]> {
    const classes = await call('list RuntimeClasses', () => this.nodeApi.listRuntimeClass());
    const names = new Set(classes.body.items.filter((c) => c.handler === handler).map((c) => c.metadata?.name));
    if (names.size === 0) return [];
    const pods = await call(`list pods on node ${node}`, () =>
      this.core.listPodForAllNamespaces(undefined, undefined, `spec.nodeName=${node}`),
    );
    return pods.body.items
      .filter((p) => names.has(p.spec?.runtimeClassName) && !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''))
      .map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`)
      .sort();
  }
}

async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    throw apiError(what, error);
  }
}

export function statusOf(error: unknown): number | undefined {
  const e = error as { statusCode?: number; response?: { statusCode?: number } } | undefined;
  return e?.statusCode ?? e?.response?.statusCode;
}

function apiError(what: string, error: unknown): InstallerError {
  const status = statusOf(error);
  const body = (error as { body?: { message?: string } } | undefined)?.body;
  const detail = body?.message ?? (error instanceof Error ? error.message : String(error));
  return new InstallerError(
    `Kubernetes API: cannot ${what}${status ? ` (HTTP ${status})` : ''}: ${oneLine(String(detail)).slice(0, 300)}`,
    status === 403
      ? "grant the installer's ServiceAccount the permission (see the chart's ClusterRoles)"
      : 'check that the API server is reachable from the node and retry',
  );
}
