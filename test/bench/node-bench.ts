/**
 * The product on the real single-node cluster (demo/cluster), once per containerd: node Ready after the
 * node starts, helm install → node labelled, helm uninstall → node restored (config byte for byte, prefix and
 * labels gone), and the resident memory of the whole cluster while the installer runs; on containerd 1.x also
 * the installer pod's own cost (per-node-bench.ts).
 */
import { startNodeCluster } from '../../demo/cluster/cluster';
import { helmInstall, helmUninstall } from '../../demo/cluster/product';
import { BenchResult } from './measure';
import { benchPerNode } from './per-node-bench';

export async function benchNode(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const major of [1, 2] as const) {
    const h = await startNodeCluster(major);
    try {
      const { labelledMs } = await helmInstall(h, 'crun-wasmtime');
      const memory = h.memory();
      const totalMiB = Object.values(memory).reduce((a, b) => a + b, 0);
      if (major === 1) results.push(...(await benchPerNode(h)));
      const uninstall = await helmUninstall(h);
      if (uninstall.code !== 0) throw new Error(`helm uninstall failed in the benchmark: ${uninstall.output}`);
      const label = `node (containerd ${major}.x)`;
      const top = Object.entries(memory).sort((a, b) => b[1] - a[1]).slice(0, 4).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
      results.push(
        { name: `${label}: node Ready after its start`, value: h.readyMs, unit: 'ms' },
        { name: `${label}: helm install → node labelled`, value: labelledMs, unit: 'ms' },
        { name: `${label}: helm uninstall → node restored`, value: uninstall.restoredMs, unit: 'ms' },
        { name: `${label}: cluster RSS, installed (${top} MiB …)`, value: Number(totalMiB.toFixed(0)), unit: 'MiB' },
      );
    } finally {
      const left = await h.stop();
      if (left.length > 0) throw new Error(`the benchmark's cluster left: ${left.join('; ')}`);
    }
  }
  return results;
}
