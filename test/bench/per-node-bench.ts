/**
 * Issue 17's per-node cost, on the real single-node cluster right after `helm install` with the chart's
 * defaults: what the installer pod's container holds and burns while it idles (its processes' RSS once the
 * installer has exited and only the agent is left; its cgroup's CPU time over 60 s, readiness probes included),
 * what it took to install (the cgroup's memory peak, page cache included: what the memory limit must allow),
 * and what one drift check costs (run as the agent runs it, in the container). The requests and limits are
 * the DaemonSet's, as the chart renders them.
 */
import { NodeCluster } from '../../demo/cluster/cluster';
import { componentPods, NAMESPACE, waitFor } from '../../demo/cluster/product';
import { containerCgroups, containerUsage, resetMemoryPeak } from '../support/node/pod-usage';
import { BenchResult } from './measure';

const IDLE_WINDOW_MS = 60_000;
const MiB = 1024 * 1024;

export async function benchPerNode(h: NodeCluster): Promise<BenchResult[]> {
  const [pod] = await componentPods(h, 'installer');
  // The node is labelled before the kubelet, which lost containerd for the restart, reports the container again.
  const podJson = await waitFor(h, 'the installer pod reporting its container', async () => {
    const json = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pod', pod.name, '-o', 'json']));
    return json.status?.containerStatuses?.[0]?.containerID ? json : undefined;
  }, 120_000);
  const containerId = String(podJson.status.containerStatuses[0].containerID).replace(/^[a-z]+:\/\//, '');
  const resources = podJson.spec.containers[0].resources as { requests: Record<string, string>; limits: Record<string, string> };
  const cg = containerCgroups(containerId);
  // Idle: Ready, and the installer has exited (only the agent is left in the container).
  await waitFor(h, 'the installer pod Ready with only the agent left', async () => {
    const [p] = await componentPods(h, 'installer');
    const usage = containerUsage(cg);
    return p?.ready && usage.processes.length === 1 && usage.processes[0].cmdline.startsWith('/usr/local/bin/knawd-agent') ? true : undefined;
  }, 120_000, () => JSON.stringify(containerUsage(cg).processes));
  const installed = containerUsage(cg);
  await new Promise((r) => setTimeout(r, IDLE_WINDOW_MS));
  const idle = containerUsage(cg);
  const idleMillicores = Number(idle.cpuNs - installed.cpuNs) / 1e6 / (IDLE_WINDOW_MS / 1000);

  resetMemoryPeak(cg);
  const before = containerUsage(cg);
  const check = await h.cluster.kubectl(['-n', NAMESPACE, 'exec', pod.name, '--', 'node', '/usr/local/lib/knawd-installer.js', 'install', '--drift-check']);
  if (check.code !== 0) throw new Error(`the drift check in the installer pod failed (exit ${check.code}): ${check.stderr}${check.stdout}`);
  if (check.stdout.includes('DriftDetected') || check.stdout.includes('repairing')) throw new Error(`the benchmark's node drifted: ${check.stdout}`);
  const after = containerUsage(cg);

  const rssMiB = idle.rssKiB / 1024;
  return [
    { name: 'per-node: idle RSS after install (MiB)', value: Number(rssMiB.toFixed(2)), unit: 'MiB', target: 8, pass: rssMiB <= 8 },
    { name: 'per-node: idle CPU over 60 s (millicores)', value: Number(idleMillicores.toFixed(2)), unit: 'm', target: 1, pass: idleMillicores <= 1 },
    { name: 'per-node: requests cpu / memory', value: `${resources.requests.cpu} / ${resources.requests.memory}`, unit: '' },
    { name: 'per-node: limits cpu / memory', value: `${resources.limits.cpu} / ${resources.limits.memory}`, unit: '' },
    { name: 'per-node: install, container memory peak incl. page cache (MiB)', value: Number((installed.memoryPeakBytes / MiB).toFixed(1)), unit: 'MiB' },
    { name: 'per-node: install, container CPU time (ms)', value: Number((Number(installed.cpuNs) / 1e6).toFixed(0)), unit: 'ms' },
    { name: 'per-node: one drift check, CPU time (ms)', value: Number((Number(after.cpuNs - before.cpuNs) / 1e6).toFixed(0)), unit: 'ms' },
    { name: 'per-node: one drift check, container memory peak (MiB)', value: Number((after.memoryPeakBytes / MiB).toFixed(1)), unit: 'MiB' },
    { name: 'per-node: idle container memory, working set / incl. page cache (MiB)', value: `${(idle.workingSetBytes / MiB).toFixed(1)} / ${(idle.memoryBytes / MiB).toFixed(1)}`, unit: 'MiB' },
  ];
}
