/**
 * Issue 15's figures: a first install of 50 simulated nodes against a real kube-apiserver (test/support/rollout),
 * once with K=1 and one holder SIGKILLed mid-restart, once with K=5, each restart taking T. The same run the
 * rollout test asserts on (test/cluster/rollout.test.ts); here T is longer, closer to a real runtime restart.
 * After the K=5 run, one drift check on an installed node: its requests, scaled to 5,000 nodes.
 * Issue 32's figures on the same API server: the restart budget of N virtual installers in this process
 * (test/support/rollout/virtual.ts), N = 1000, K = 10.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_RESTART_LEASE_SECONDS } from '../../lib/catalog';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { NAMESPACE, prepareRollout, RolloutResult, runRollout } from '../support/rollout/rollout';
import { runVirtualRollout } from '../support/rollout/virtual';
import { BenchResult } from './measure';
import { driftFigure, scaleFigures } from './rollout-scale';

const N = 50;
const T = 2000;
const SCALE_N = 1000;
const SCALE_K = 10;
const SCALE_T = 2000;

function problems(r: RolloutResult): string[] {
  return [
    ...r.unfinished.map((n) => `${n} never finished`),
    ...r.failed.map((f) => `${f.node} failed (exit ${f.code}): ${f.output}`),
    ...r.notInstalled.map((n) => `${n} not labelled installed`),
    ...r.heldAtEnd.map((h) => `slot still held at the end: ${h}`),
  ];
}

export async function benchRollout(): Promise<BenchResult[]> {
  let cluster: Cluster | undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-bench-rollout-'));
  try {
    cluster = await startCluster();
    const world = await prepareRollout(cluster, dir, SCALE_K);
    const one = await runRollout(world, { name: 'k1', nodes: N, slots: 1, restartMs: T, killAfterRestarts: 5, timeoutMs: 10 * 60_000 });
    const five = await runRollout(world, { name: 'k5', nodes: N, slots: 5, restartMs: T, timeoutMs: 5 * 60_000, driftCheck: true });
    const wrong = [...problems(one), ...problems(five)];
    if (wrong.length > 0) throw new Error(`the rollout benchmark's nodes did not all finish cleanly:\n${wrong.join('\n')}`);
    const scale = await runVirtualRollout({
      kubeconfig: world.kubeconfig,
      namespace: NAMESPACE,
      name: 'v',
      nodes: SCALE_N,
      slots: SCALE_K,
      restartMs: SCALE_T,
      leaseSeconds: DEFAULT_RESTART_LEASE_SECONDS,
      timeoutMs: 10 * 60_000,
    });
    const back = one.killed?.slotBackMs;
    const backLimit = DEFAULT_RESTART_LEASE_SECONDS + 5;
    const requests = (one.requestsPerNode + five.requestsPerNode) / 2;
    return [
      { name: 'rollout: nodes', value: N, unit: '' },
      { name: 'rollout: K=1 max concurrent restarts', value: one.maxConcurrent, unit: '', target: 1, pass: one.maxConcurrent <= 1 },
      { name: 'rollout: K=5 max concurrent restarts', value: five.maxConcurrent, unit: '', target: 5, pass: five.maxConcurrent <= 5 },
      { name: 'rollout: K=5 total time / (ceil(N/K) * T)', value: Number(five.ratio.toFixed(2)), unit: `(T = ${T / 1000} s; first restart to last: ${five.restartSpanRatio.toFixed(2)})` },
      { name: 'rollout: holder killed mid-restart, slot back after', value: back === undefined ? -1 : Number((back / 1000).toFixed(1)), unit: 's', target: backLimit, pass: back !== undefined && back < backLimit * 1000 },
      { name: 'rollout: API requests per node', value: Number(requests.toFixed(1)), unit: `(K=1: ${one.requestsPerNode.toFixed(1)}, K=5: ${five.requestsPerNode.toFixed(1)})` },
      ...scaleFigures(scale, SCALE_K, SCALE_T),
      driftFigure(five.driftCheckRequests!),
    ];
  } finally {
    await cluster?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
