/**
 * The installer's side of the node's compile cache (issue 33 item 1): the wrapper names `<prefix>/cache` to crun,
 * `status` reports its size and counters, `remove` deletes it with the prefix. The cache's files here are laid out
 * as crun writes them (crun-patches/0101; crun itself filling it is test/image/compile-cache.test.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { install, remove } from '../../lib/installer/installer';
import { status } from '../../lib/installer/commands/status';
import { SCENARIOS, setUp } from './scenarios';
import { effectsFor, makeArtifacts, settingsFor, snapshot } from './support';

const scenario = SCENARIOS[0];
const args = (command: string, root: string, artifacts: string): string[] => [command, '--node-root', root, '--target', scenario.target, '--runtime', scenario.runtime, '--artifacts', artifacts];

test('the wrapper names the cache to crun; status reports its entries, bytes and counters; remove deletes it with the prefix', async () => {
  const root = setUp(scenario);
  const artifacts = makeArtifacts(scenario.target);
  const before = snapshot(root);
  const first = effectsFor(root, { answer: scenario.answer });
  await install(settingsFor(args('install', root, artifacts)), first);

  const wrapper = fs.readFileSync(path.join(root, `opt/knawd/bin/${scenario.runtime}`), 'utf8');
  expect(wrapper).toContain("KNAWD_WASM_CACHE='/opt/knawd/cache'\nexport LD_LIBRARY_PATH KNAWD_WASM_CACHE\n");
  expect(status(settingsFor(args('status', root, artifacts)), first.fs).compileCache).toBeUndefined();

  const cache = path.join(root, 'opt/knawd/cache');
  fs.mkdirSync(cache, { mode: 0o700 });
  fs.writeFileSync(path.join(cache, `${'a'.repeat(64)}.entry`), Buffer.alloc(3000));
  fs.writeFileSync(path.join(cache, `${'b'.repeat(64)}.entry`), Buffer.alloc(1000));
  fs.writeFileSync(path.join(cache, `${'c'.repeat(64)}.partial-42`), Buffer.alloc(500));
  fs.writeFileSync(path.join(cache, '.fill.lock'), '');
  fs.writeFileSync(path.join(cache, 'stats'), 'hits 7\nmisses 2\ncompiled 2\nrejected 1\nfailed 0\n');
  const report = status(settingsFor(args('status', root, artifacts)), first.fs);
  expect(report).toMatchObject({ state: 'installed', exitCode: 0 });
  expect(report.compileCache).toEqual({ path: '/opt/knawd/cache', entries: 2, bytes: 4000, counters: { hits: 7, misses: 2, compiled: 2, rejected: 1, failed: 0 } });

  const removing = effectsFor(root, { answer: scenario.answer });
  await remove(settingsFor(args('remove', root, artifacts)), removing);
  expect(fs.existsSync(cache)).toBe(false);
  expect(snapshot(root)).toEqual(before);
});
