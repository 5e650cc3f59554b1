/**
 * A pretend node for running the real installer against the real API server: a temp node root with a
 * containerd config, fake (but checksummed) artifacts, and Node objects in the API.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { findRuntime, findTarget } from '../../../lib/catalog';
import { Cluster, REPO, runCommand, RunResult } from './api-server';

/** A node root with `etc/`, `opt/` and the given host files (host path → content). */
export function makeNodeRoot(files: Record<string, string> = {}): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-cluster-root-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.mkdirSync(path.join(root, 'opt'));
  for (const [hostPath, content] of Object.entries(files)) {
    const local = path.join(root, hostPath);
    fs.mkdirSync(path.dirname(local), { recursive: true });
    fs.writeFileSync(local, content);
  }
  return root;
}

/** Fake crun + engine library for one (target, runtime), listed in SHA256SUMS. */
export function makeArtifacts(targetName: string, runtimeName: string): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-cluster-art-'));
  const target = findTarget(targetName);
  const runtime = findRuntime(runtimeName);
  const dir = path.join(root, target.artifactDir);
  fs.mkdirSync(dir, { recursive: true });
  const sums: string[] = [];
  for (const file of [runtime.name, runtime.library]) {
    const data = Buffer.from(`\x7fELF fake ${file} for ${targetName}\n`);
    fs.writeFileSync(path.join(dir, file), data);
    sums.push(`${createHash('sha256').update(data).digest('hex')}  ${file}`);
  }
  fs.writeFileSync(path.join(dir, 'SHA256SUMS'), sums.join('\n') + '\n');
  return root;
}

/** Creates a Node object (no kubelet behind it) and sets its status.nodeInfo.containerRuntimeVersion. */
export async function createNode(cluster: Cluster, name: string, containerRuntimeVersion: string, labels: Record<string, string> = {}): Promise<void> {
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } } };
  await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(node) });
  const status = { status: { nodeInfo: { containerRuntimeVersion } } };
  await cluster.kubectlOk(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
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
export function installerCli(args: readonly string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<RunResult> {
  return runCommand(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(REPO, 'lib', 'installer', 'main.ts'), ...args], {
    timeoutMs: options.timeoutMs ?? 60_000,
    // No in-cluster config: only --kubeconfig counts.
    env: { KUBERNETES_SERVICE_HOST: '', KUBECONFIG: '', ...options.env },
  });
}

/** A ServiceAccount token from the TokenRequest API, and a kubeconfig that uses it. */
export async function serviceAccountKubeconfig(cluster: Cluster, namespace: string, name: string): Promise<string> {
  const token = (await cluster.kubectlOk(['-n', namespace, 'create', 'token', name, '--duration=30m'])).trim();
  return cluster.writeKubeconfig(`${namespace}-${name}`, token);
}
