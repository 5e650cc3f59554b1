/**
 * `npm run bench`: prints every figure with its target, and exits non-zero when a target is missed.
 * `npm run bench -- <part> …` runs only those parts (synth, installer, faults, image, rollout, node, demo, wasm, wasm-cache, knative, release).
 */
import { BenchResult } from './measure';
import { benchDemo } from './demo-bench';
import { benchFaults } from './faults-bench';
import { benchInstaller } from './installer-bench';
import { benchKnative } from './knative-bench';
import { benchImage } from './image-bench';
import { benchNode } from './node-bench';
import { benchRelease } from './release-bench';
import { benchRollout } from './rollout-bench';
import { benchSynth } from './synth-bench';
import { benchWasm, benchWasmCache } from './wasm-bench';

const PARTS: Record<string, () => BenchResult[] | Promise<BenchResult[]>> = {
  synth: benchSynth,
  installer: benchInstaller,
  faults: benchFaults,
  image: benchImage,
  rollout: benchRollout,
  node: benchNode,
  demo: benchDemo,
  wasm: benchWasm,
  'wasm-cache': benchWasmCache,
  knative: benchKnative,
  release: benchRelease,
};

async function main(): Promise<void> {
  const asked = process.argv.slice(2);
  const unknown = asked.filter((p) => !(p in PARTS));
  if (unknown.length > 0) {
    console.error(`unknown bench part ${unknown.join(', ')}: the parts are ${Object.keys(PARTS).join(', ')}`);
    process.exit(2);
  }
  const started = Date.now();
  const results: BenchResult[] = [];
  for (const [name, part] of Object.entries(PARTS)) if (asked.length === 0 || asked.includes(name)) results.push(...(await part()));
  for (const r of results) {
    const verdict = r.pass === undefined ? '' : r.pass ? `  (target ${r.target}: met)` : `  (target ${r.target}: MISSED)`;
    console.log(`${r.name.padEnd(60)} ${String(r.value).padStart(10)} ${r.unit}${verdict}`);
  }
  console.log(`bench wall time: ${((Date.now() - started) / 1000).toFixed(0)} s (${new Date().toISOString().slice(0, 10)}, ${asked.length ? asked.join(' ') : 'every part'})`);
  process.exit(results.some((r) => r.pass === false) ? 1 : 0);
}

void main();
