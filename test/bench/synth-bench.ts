import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../support/tools';
import { BenchResult, timeMs } from './measure';

/** A throw-away copy of the sources, so the `cdk8s synth` run can wipe its dist/ without touching ours. */
function scratchCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'knawd-bench-synth-'));
  for (const entry of ['lib', 'charts-src', 'package.json', 'tsconfig.json', 'cdk8s.yaml', 'docs']) {
    cpSync(join(REPO, entry), join(dir, entry), { recursive: true });
  }
  symlinkSync(join(REPO, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** `npm run synth` against `npx cdk8s synth` of the same app run the default way (ts-node), in one run. */
export function benchSynth(): BenchResult[] {
  const dir = scratchCopy();
  try {
    const ours = timeMs(() => execFileSync('npm', ['run', '-s', 'synth'], { cwd: dir, stdio: 'pipe' }));
    const cdk8s = timeMs(() => execFileSync('npx', ['cdk8s', 'synth'], { cwd: dir, stdio: 'pipe', env: { ...process.env, CDK8S_CHECK_UPGRADE: 'false' } }));
    return [
      { name: 'synth: npm run synth (esbuild bundle)', value: ours, unit: 'ms' },
      { name: 'synth: npx cdk8s synth (ts-node, default)', value: cdk8s, unit: 'ms' },
      { name: 'synth: ratio ours / cdk8s (target <= 0.3)', value: Number((ours / cdk8s).toFixed(3)), unit: 'x', target: 0.3, pass: ours / cdk8s <= 0.3 },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
