/**
 * Issue 15 (items 2-5) and issue 17 (item 1) on the real single-node cluster with containerd 1.7, the chart
 * and the image as built: the node carries a startup taint before `helm install` (the node-restriction policy
 * is installed: Kubernetes serves it, and the installer's token is bound to its pod); `kubectl rollout
 * status` returns once the node is installed and the taint is gone; the pod then runs only the static agent;
 * `knawd-installer status --cluster` (the image's bundle) prints the node; a distribution upgrade that
 * rewrites containerd's config and restarts it is found by the drift check and repaired (pending, Event,
 * one more restart, Ready again); deleting the pod stops the agent at once and the new pod changes nothing.
 */
import * as fs from 'fs';
import * as path from 'path';
import { AGENT_PATH, INSTALLED_LABEL, NODE_STATE_LABEL, NODE_STATUS_ANNOTATION } from '../../lib/catalog';
import { runCommand } from '../../demo/cluster/control-plane';
import { CHART } from '../support/cluster/objects';
import { builtImage } from '../../demo/cluster/images/built-image';
import { NODE_NAME, NodeCluster } from '../../demo/cluster/cluster';
import { containerCgroups, containerUsage } from '../support/node/pod-usage';
import { chartFlags, componentPods, helmUninstall, NAMESPACE, nodeLabels, productLogs, RELEASE, restartsOf, waitFor } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(10 * 60_000);

const TAINT = 'example.com/wasm-not-ready';
const DRIFT_CHECK_SECONDS = 5;

async function nodeObject(h: NodeCluster): Promise<any> {
  return JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json']));
}

async function nodeEventReasons(h: NodeCluster): Promise<string[]> {
  const list = JSON.parse(await h.kubectlOk(['-n', 'default', 'get', 'events', '--field-selector', `involvedObject.kind=Node,involvedObject.name=${NODE_NAME},source=knawd-installer`, '-o', 'json']));
  return (list.items as Array<{ reason: string; metadata: { resourceVersion: string } }>)
    .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
    .map((e) => e.reason);
}

/** Runs a command in the node's mount namespace (as a package upgrade on the node would). */
function onNode(h: NodeCluster, argv: readonly string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const pid1 = h.node.pid1();
  if (!pid1) throw new Error("the node's PID 1 is not running");
  return runCommand('nsenter', ['-t', String(pid1), '-m', '--', ...argv], { input });
}

describe('rollout safety on a real node with containerd 1.7', () => {
  const steps = clusterForFile(1);
  const need = (...names: string[]): NodeCluster => steps.need(...names);

  test('helm install onto a tainted node: rollout status returns once the node is installed, the startup taint gone', async () => {
    const h = need();
    await h.kubectlOk(['taint', 'node', NODE_NAME, `${TAINT}:NoSchedule`]);
    const extra = { 'startupTaint.key': TAINT, driftCheckSeconds: String(DRIFT_CHECK_SECONDS) };
    const r = await h.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--create-namespace', ...chartFlags(h, 'crun-wasmtime', extra)]);
    if (r.code !== 0) throw new Error(`helm install failed: ${r.stderr}\n${await productLogs(h)}`);
    const rollout = await h.cluster.kubectl(['-n', NAMESPACE, 'rollout', 'status', 'daemonset/knawd-installer', '--timeout=180s'], { timeoutMs: 190_000 });
    if (rollout.code !== 0) throw new Error(`rollout status failed: ${rollout.stderr}\n${await productLogs(h)}`);
    // Ready means done: at this moment the node is installed and its startup taint gone.
    const node = await nodeObject(h);
    expect(node.metadata.labels[INSTALLED_LABEL.key]).toBe(INSTALLED_LABEL.value);
    expect((node.spec.taints ?? []).map((t: { key: string }) => t.key)).not.toContain(TAINT);
    expect(JSON.parse(node.metadata.annotations[NODE_STATUS_ANNOTATION])).toMatchObject({ state: 'installed', reason: 'Installed', target: 'containerd', runtime: 'crun-wasmtime' });
    expect(await h.kubectlOk(['get', 'validatingadmissionpolicy', 'knawd-installer-own-node', '-o', 'name'])).toContain('knawd-installer-own-node');
    expect(restartsOf(h, 'containerd')).toBe(1);
    steps.mark('install');
  });

  test('idle, the pod runs only the static agent; its installer left the readiness marker', async () => {
    const h = need('install');
    const [pod] = await componentPods(h, 'installer');
    const json = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pod', pod.name, '-o', 'json']));
    const cg = containerCgroups(String(json.status.containerStatuses[0].containerID).replace(/^[a-z]+:\/\//, ''));
    const usage = await waitFor(h, 'only the agent left in the installer container', async () => {
      const u = containerUsage(cg);
      return u.processes.length === 1 ? u : undefined;
    }, 60_000);
    expect(usage.processes[0].cmdline).toBe(`${AGENT_PATH} run --ready-file /run/knawd/ready --check-every ${DRIFT_CHECK_SECONDS} -- node /usr/local/lib/knawd-installer.js install`);
    expect(usage.rssKiB).toBeLessThan(1024);
    const probe = await h.cluster.kubectl(['-n', NAMESPACE, 'exec', pod.name, '--', AGENT_PATH, 'ready', '/run/knawd/ready']);
    expect(probe.code).toBe(0);
  });

  test('status --cluster (the image\'s installer bundle) prints the node installed, and exits 0', async () => {
    const h = need('install');
    const bundle = path.join(builtImage().installers['crun-wasmtime'].rootfs, 'usr/local/lib/knawd-installer.js');
    const r = await runCommand('nsenter', [`--net=${h.netns.file}`, '--', process.execPath, bundle, 'status', '--cluster', '--kubeconfig', h.cluster.kubeconfig], { env: { KUBERNETES_SERVICE_HOST: '' } });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${NODE_NAME} `))!.split(/\s{2,}/);
    expect(line.slice(0, 4)).toEqual([NODE_NAME, 'containerd', 'crun-wasmtime', 'installed']);
    expect(line[5]).toMatch(/^Installed: containerd serves handler crun-wasm/);
  });

  test('drift: a distribution upgrade rewrites config.toml and restarts containerd; the drift check repairs it through the budget', async () => {
    const h = need('install');
    const seed = fs.readFileSync(h.node.seedPath(h.node.containerdConfigPath), 'utf8');
    const [before] = await componentPods(h, 'installer');
    expect((await onNode(h, ['/bin/sh', '-c', `cat > /${h.node.containerdConfigPath}`], seed)).code).toBe(0);
    expect((await onNode(h, ['systemctl', 'restart', 'containerd'])).code).toBe(0);
    const seenPending = await waitFor(h, 'the drift seen: node pending', async () => ((await nodeLabels(h))[NODE_STATE_LABEL] === 'pending' ? true : undefined), 60_000);
    expect(seenPending).toBe(true);
    await waitFor(h, 'the node repaired and installed again', async () => ((await nodeLabels(h))[NODE_STATE_LABEL] === 'installed' ? true : undefined), 120_000);
    await waitFor(h, 'the installer pod Ready again', async () => ((await componentPods(h, 'installer'))[0]?.ready ? true : undefined), 60_000);
    // Ours, the upgrade's, the repair's; the same pod did it (no container restart).
    expect(restartsOf(h, 'containerd')).toBe(3);
    const [after] = await componentPods(h, 'installer');
    expect(after.uid).toBe(before.uid);
    expect(h.node.nodeFile(h.node.containerdConfigPath)!.toString('utf8')).toContain('crun-wasm');
    const reasons = await nodeEventReasons(h);
    // A drift check that runs between the upgrade's write and its restart sees the drift, and the next one sees
    // it again until the repair is in place: one or more DriftDetected, then Installed (still one repair restart).
    expect(reasons.slice(reasons.indexOf('Installed') + 1).join(',')).toMatch(/^(DriftDetected,)+Installed$/);
    const logs = (await h.cluster.kubectl(['-n', NAMESPACE, 'logs', after.name])).stdout;
    expect(logs).toContain('"msg":"drift check: the node drifted; repairing it"');
    expect(logs).toMatch(/"msg":"holding restart slot knawd\/knawd-restart-0"/);
    steps.mark('drift');
  });

  test('deleting the installer pod stops the agent at once (SIGTERM), changes nothing, and the new pod only checks', async () => {
    const h = need('drift');
    const [pod] = await componentPods(h, 'installer');
    const upper = h.node.upperSummary();
    const restarts = restartsOf(h, 'containerd');
    const started = Date.now();
    await h.kubectlOk(['-n', NAMESPACE, 'delete', 'pod', pod.name, '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    // Far within the 30 s grace period: the agent exits 0 on SIGTERM while idle.
    expect(Date.now() - started).toBeLessThan(15_000);
    await waitFor(h, 'a new installer pod Ready', async () => {
      const [p] = await componentPods(h, 'installer');
      return p && p.uid !== pod.uid && p.ready ? true : undefined;
    }, 120_000);
    expect(restartsOf(h, 'containerd')).toBe(restarts);
    expect(h.node.upperSummary()).toEqual(upper);
  });

  test('helm uninstall restores the node', async () => {
    const h = need('install');
    const r = await helmUninstall(h);
    expect({ code: r.code, output: r.code === 0 ? '' : r.output }).toEqual({ code: 0, output: '' });
    expect(JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json'])).metadata.annotations[NODE_STATUS_ANNOTATION]).toBeUndefined();
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await need().stop()).toEqual([]);
  });
});
