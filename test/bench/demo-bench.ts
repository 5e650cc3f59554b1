/**
 * `npm run demo` on warm caches (issue 25): its wall-clock time as a user sees it, and, from its summary, the
 * time from starting the cluster to the WASM HTTP service's answer. The caches are warmed first (untimed), so
 * that the figure never includes a build.
 */
import { execFileSync } from 'child_process';
import * as path from 'path';
import { REPO } from '../../demo/cluster/process';
import { parseSummary } from '../../demo/summary';
import { runDemoCommand } from '../support/demo';
import { BenchResult } from './measure';

export async function benchDemo(): Promise<BenchResult[]> {
  execFileSync('bash', [path.join(REPO, 'tools', 'install-tools.sh'), 'demo'], { cwd: REPO, stdio: 'ignore' });
  const r = await runDemoCommand([]);
  if (r.code !== 0) throw new Error(`npm run demo failed in the benchmark (exit ${r.code ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  const { totals } = parseSummary(r.stdout);
  if (totals.answered === undefined) throw new Error(`npm run demo printed no "cluster up → WASM service answered" figure:\n${r.stdout}`);
  return [
    { name: 'demo: npm run demo, warm caches (s)', value: Number(r.seconds.toFixed(1)), unit: 's' },
    { name: 'demo: cluster up → WASM service answered (s)', value: Number(totals.answered.toFixed(1)), unit: 's' },
  ];
}
