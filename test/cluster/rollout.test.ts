/**
 * Issue 15's measurement as a test: a first install of 50 nodes against a real kube-apiserver — 50 installer
 * processes, each with its own node root and Node object, the installer's ServiceAccount token and RBAC as the
 * manifests ship them, a restart behind the installer's command runner that takes T — never has more than K
 * runtimes restarting at once, for K = 1 (with one holder SIGKILLed in the middle of its restart: its slot must
 * come back once its lease expires, and the node must finish when started again) and K = 5. Every node must
 * finish (none waits forever), be labelled installed, and every slot be free at the end. `npm run bench`
 * prints the same figures (test/bench/rollout-bench.ts).
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { DEFAULT_RESTART_LEASE_SECONDS } from '../../lib/catalog';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { maxOverlap, prepareRollout, RolloutResult, RolloutWorld, runRollout } from '../support/rollout/rollout';

jest.setTimeout(10 * 60_000);

const N = 50;
const T = 1000;

function expectClean(r: RolloutResult): void {
  expect({ unfinished: r.unfinished, failed: r.failed, notInstalled: r.notInstalled, heldAtEnd: r.heldAtEnd }).toEqual({ unfinished: [], failed: [], notInstalled: [], heldAtEnd: [] });
  expect(Object.keys(r.restarts)).toHaveLength(N);
}

describe(`a first install of ${N} nodes with a restart budget, against a real API server`, () => {
  let cluster: Cluster;
  let world: RolloutWorld;
  let dir: string;

  beforeAll(async () => {
    cluster = await startCluster();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-rollout-'));
    world = await prepareRollout(cluster, dir, 5);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the overlap of restart intervals is counted as the test means it', () => {
    expect(maxOverlap([{ start: 0, end: 10 }, { start: 10, end: 20 }])).toBe(1);
    expect(maxOverlap([{ start: 0, end: 10 }, { start: 5, end: 20 }, { start: 6, end: 7 }])).toBe(3);
  });

  it('K=1: one restart at a time; a holder killed mid-restart gets its slot taken over once its lease expires, and finishes when started again', async () => {
    const r = await runRollout(world, { name: 'k1', nodes: N, slots: 1, restartMs: T, killAfterRestarts: 5, timeoutMs: 8 * 60_000 });
    console.log(`K=1: max ${r.maxConcurrent} concurrent, ${(r.totalMs / 1000).toFixed(1)} s, ${r.requestsPerNode.toFixed(1)} requests/node, slot back after ${((r.killed?.slotBackMs ?? NaN) / 1000).toFixed(1)} s`);
    expectClean(r);
    expect(r.maxConcurrent).toBe(1);
    expect(r.killed?.slot).toBe('knawd-restart-0');
    // Back once the lease went unrenewed for its duration (renewals come every third of it), and not before.
    expect(r.killed?.slotBackMs).toBeGreaterThanOrEqual(((DEFAULT_RESTART_LEASE_SECONDS * 2) / 3) * 1000 - 1000);
    expect(r.killed?.slotBackMs).toBeLessThan((DEFAULT_RESTART_LEASE_SECONDS + 5) * 1000);
    // The killed node restarted twice (its first restart was cut off), every other node once.
    expect(r.restarts[r.killed!.node]).toBe(2);
    expect(Object.entries(r.restarts).filter(([n]) => n !== r.killed!.node).every(([, c]) => c === 1)).toBe(true);
  });

  it('K=5: never more than five at once, and the slots are used: the rollout takes about ceil(N/K) * T', async () => {
    const r = await runRollout(world, { name: 'k5', nodes: N, slots: 5, restartMs: T, timeoutMs: 5 * 60_000 });
    console.log(`K=5: max ${r.maxConcurrent} concurrent, ${(r.totalMs / 1000).toFixed(1)} s (ratio ${r.ratio.toFixed(2)}; restarts span ${r.restartSpanRatio.toFixed(2)}, first after ${r.firstRestartMs} ms), ${r.requestsPerNode.toFixed(1)} requests/node`);
    expectClean(r);
    expect(r.maxConcurrent).toBeLessThanOrEqual(5);
    expect(r.maxConcurrent).toBeGreaterThanOrEqual(2);
    // One slot at a time would take five times as long.
    expect(r.restartSpanRatio).toBeLessThan(3);
    expect(Object.values(r.restarts).every((c) => c === 1)).toBe(true);
  });
});
