/**
 * A pretend node for running the real installer against the real API server: Node objects in the API and
 * the installer's command line (node roots and artifacts come from the installer tests' support).
 */
import * as path from 'path';
import { Cluster, REPO, runCommand, RunResult } from '../../../demo/cluster/control-plane';

/**
 * Creates a Node object (no kubelet behind it) and sets its status.nodeInfo.containerRuntimeVersion (and the
 * other nodeInfo fields given, such as kubeletVersion and osImage), and, like a 1.30+ kubelet whose runtime
 * reports them, status.runtimeHandlers when `runtimeHandlers` is given.
 */
export async function createNode(
  cluster: Cluster,
  name: string,
  containerRuntimeVersion: string,
  labels: Record<string, string> = {},
  runtimeHandlers?: readonly string[],
  nodeInfo: Readonly<Record<string, string>> = {},
): Promise<void> {
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } };
  await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(node) });
  const status = { status: { nodeInfo: { ...nodeInfo, containerRuntimeVersion } } };
  await cluster.kubectlOk(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
  if (runtimeHandlers) await setRuntimeHandlers(cluster, name, runtimeHandlers);
}

/** What a kubelet writes into status.runtimeHandlers after its runtime reported these handlers. */
export async function setRuntimeHandlers(cluster: Cluster, name: string, handlers: readonly string[]): Promise<void> {
  const status = { status: { runtimeHandlers: handlers.map((h) => ({ name: h, features: { recursiveReadOnlyMounts: false, userNamespaces: false } })) } };
  await cluster.kubectlOk(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
}

/** The Events recorded on a Node (in `default`), oldest first, as [type, reason, message]. */
export async function nodeEvents(cluster: Cluster, name: string): Promise<Array<[string, string, string]>> {
  const list = JSON.parse(await cluster.kubectlOk(['-n', 'default', 'get', 'events', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${name}`, '-o', 'json']));
  // resourceVersion orders writes (etcd's revision); timestamps have whole seconds only.
  return (list.items as Array<{ type: string; reason: string; message: string; metadata: { resourceVersion: string } }>)
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
    .map((e) => [e.type, e.reason, e.message]);
}

export async function nodeLabels(cluster: Cluster, name: string): Promise<Record<string, string>> {
  const node = JSON.parse(await cluster.kubectlOk(['get', 'node', name, '-o', 'json']));
  return node.metadata.labels ?? {};
}

export async function configMapData(cluster: Cluster, namespace: string, name: string): Promise<Record<string, string>> {
  const cm = JSON.parse(await cluster.kubectlOk(['-n', namespace, 'get', 'configmap', name, '-o', 'json']));
  return cm.data ?? {};
}

/**
 * The installer CLI from source, as a child process (`node -r ts-node/register/transpile-only
 * lib/installer/main.ts ...`), the way the uninstall Job runs the built one.
 */
export function installerCli(args: readonly string[], options: { timeoutMs?: number; env?: Record<string, string>; onStdout?: (chunk: string) => void } = {}): Promise<RunResult> {
  return runCommand(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(REPO, 'lib', 'installer', 'main.ts'), ...args], {
    timeoutMs: options.timeoutMs ?? 60_000,
    // No in-cluster config: only --kubeconfig counts.
    env: { KUBERNETES_SERVICE_HOST: '', KUBECONFIG: '', ...options.env },
    onStdout: options.onStdout,
  });
}

/**
 * The installer CLI from source, and a promise that resolves once its output matches `pattern` (rejecting if
 * it ends or `timeoutMs` passes first): a test can act after the CLI reached a point, however slowly it
 * started on a busy machine.
 */
export function installerCliUntil(args: readonly string[], pattern: RegExp, timeoutMs = 60_000): { done: Promise<RunResult>; reached: Promise<void> } {
  let out = '';
  let reach: () => void = () => undefined;
  const reached = new Promise<void>((resolve) => (reach = resolve));
  const done = installerCli(args, { onStdout: (chunk) => ((out += chunk), pattern.test(out) && reach()) });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`the installer CLI printed nothing matching ${pattern} within ${timeoutMs} ms`)), timeoutMs).unref());
  const ended = done.then((r) => Promise.reject(new Error(`the installer CLI ended (exit ${r.code}) before printing ${pattern}:\n${r.stdout}${r.stderr}`)));
  return { done, reached: Promise.race([reached, timeout, ended]) };
}

/** A ServiceAccount token from the TokenRequest API, and a kubeconfig that uses it. */
export async function serviceAccountKubeconfig(cluster: Cluster, namespace: string, name: string): Promise<string> {
  const token = (await cluster.kubectlOk(['-n', namespace, 'create', 'token', name, '--duration=30m'])).trim();
  return cluster.writeKubeconfig(`${namespace}-${name}`, token);
}
