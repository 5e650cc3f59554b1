/** `npm run bench`: prints every figure with its target, and exits non-zero when a target is missed. */
import { BenchResult } from './measure';
import { benchDemo } from './demo-bench';
import { benchFaults } from './faults-bench';
import { benchInstaller } from './installer-bench';
import { benchImage } from './image-bench';
import { benchNode } from './node-bench';
import { benchRollout } from './rollout-bench';
import { benchSynth } from './synth-bench';

async function main(): Promise<void> {
  const results: BenchResult[] = [...benchSynth(), ...(await benchInstaller()), ...benchFaults(), ...benchImage(), ...(await benchRollout()), ...(await benchNode()), ...(await benchDemo())];
  for (const r of results) {
    const verdict = r.pass === undefined ? '' : r.pass ? `  (target ${r.target}: met)` : `  (target ${r.target}: MISSED)`;
    console.log(`${r.name.padEnd(60)} ${String(r.value).padStart(10)} ${r.unit}${verdict}`);
  }
  process.exit(results.some((r) => r.pass === false) ? 1 : 0);
}

void main();
