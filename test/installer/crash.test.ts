/**
 * Crash safety: a failure injected before or after every mutation of the host (each write, mkdir, delete,
 * rmdir, state writes included) leaves a node that the next run converges from: re-running install gives
 * exactly the tree of an uninterrupted install, and remove (after an interrupted install or an interrupted
 * remove) gives back exactly the original tree.
 */
import * as path from 'path';
import { FsEvent, HostFs } from '../../lib/installer/host/fs';
import { install, remove } from '../../lib/installer/installer';
import { SCENARIOS, setUp } from './scenarios';
import { diffKeys, effectsFor, makeArtifacts, settingsFor, snapshot } from './support';

class Crash extends Error {}

const crashAt = (index: number, phase: FsEvent['phase']) => (event: FsEvent) => {
  if (event.index === index && event.phase === phase) throw new Crash(`injected crash ${phase} ${event.op} ${event.path}`);
};

let currentEdited = '';

// Every scenario at the default prefix, and one where the copies' prefix bytes are rewritten. Its parent (/opt)
// exists, as for the default: with a missing parent (e.g. /srv/x), a crash right after mkdir /srv leaves /srv
// behind, since it is created before the first state write records it (a gap of its own, not of the rewrite).
const CASES = [...SCENARIOS.map((s) => ({ ...s, prefix: undefined as string | undefined })), { ...SCENARIOS[0], name: `${SCENARIOS[0].name}, prefix /opt/wasm-crash`, prefix: '/opt/wasm-crash' }];

describe.each(CASES)('$name', (scenario) => {
  beforeEach(() => {
    currentEdited = scenario.edited;
  });
  const artifacts = makeArtifacts(scenario.target);
  const args = (command: string, root: string): string[] =>
    [command, '--node-root', root, '--target', scenario.target, '--runtime', scenario.runtime, '--artifacts', artifacts, ...(scenario.prefix ? ['--prefix', scenario.prefix] : [])];

  // Reference: an uninterrupted install and the number of mutations each command makes.
  const reference = (() => {
    const root = setUp(scenario);
    return { root, before: snapshot(root) };
  })();
  let installed: Record<string, string>;
  let installMutations = 0;
  let removeMutations = 0;

  beforeAll(async () => {
    const effects = effectsFor(reference.root, { answer: scenario.answer });
    await install(settingsFor(args('install', reference.root)), effects);
    installed = snapshot(reference.root);
    installMutations = effects.fs.counters.mutations;
    const removing = effectsFor(reference.root, { answer: scenario.answer });
    await remove(settingsFor(args('remove', reference.root)), removing);
    removeMutations = removing.fs.counters.mutations;
    expect(snapshot(reference.root)).toEqual(reference.before);
  });

  test('install interrupted at any mutation: install again converges, remove restores', async () => {
    expect(installMutations).toBeGreaterThan(5);
    let caughtUp = 0;
    for (let index = 0; index < installMutations; index++) {
      for (const phase of ['before', 'after'] as const) {
        for (const recovery of ['install', 'remove'] as const) {
          const root = setUp(scenario);
          const crashed = effectsFor(root, { answer: scenario.answer, hook: crashAt(index, phase) });
          await expect(install(settingsFor(args('install', root)), crashed)).rejects.toBeInstanceOf(Crash);
          const configTouched = snapshot(root)[editedEntry(root)] !== reference.before[editedEntry(root)];
          const recovering = effectsFor(root, { answer: scenario.answer });
          await (recovery === 'install' ? install : remove)(settingsFor(args(recovery, root)), recovering);
          // The runtime may already have read a config we wrote: the recovery restarts it in every case.
          const restarted = crashed.runner.calls.some((c) => c.includes('restart'));
          if (configTouched && !restarted) {
            expect(recovering.runner.calls.some((c) => c.includes('restart'))).toBe(true);
            caughtUp++;
          }
          const expected = recovery === 'install' ? installed : reference.before;
          const actual = snapshot(root);
          if (JSON.stringify(actual) !== JSON.stringify(expected)) {
            throw new Error(`crash ${phase} mutation ${index}, then ${recovery}: tree differs\n${diffKeys(expected, actual)}`);
          }
          if (recovery === 'install') {
            await remove(settingsFor(args('remove', root)), effectsFor(root, { answer: scenario.answer }));
            expect(snapshot(root)).toEqual(reference.before);
          }
        }
      }
    }
    // Some crash points fall between the config write and the restart: the catch-up above was exercised.
    expect(caughtUp).toBeGreaterThan(0);
  });

  test('remove interrupted at any mutation: remove again restores the original tree', async () => {
    expect(removeMutations).toBeGreaterThan(5);
    let caughtUp = 0;
    for (let index = 0; index < removeMutations; index++) {
      for (const phase of ['before', 'after'] as const) {
        const root = setUp(scenario);
        await install(settingsFor(args('install', root)), effectsFor(root, { answer: scenario.answer }));
        const crashed = effectsFor(root, { answer: scenario.answer, hook: crashAt(index, phase) });
        await expect(remove(settingsFor(args('remove', root)), crashed)).rejects.toBeInstanceOf(Crash);
        const reverted = snapshot(root)[editedEntry(root)] === reference.before[editedEntry(root)];
        const restarted = crashed.runner.calls.some((c) => c.includes('restart'));
        const again = effectsFor(root, { answer: scenario.answer });
        await remove(settingsFor(args('remove', root)), again);
        // The runtime still holds our handler until restarted: a crash between revert and restart is caught up.
        if (reverted && !restarted) {
          expect(again.runner.calls.some((c) => c.includes('restart'))).toBe(true);
          caughtUp++;
        }
        const actual = snapshot(root);
        if (JSON.stringify(actual) !== JSON.stringify(reference.before)) {
          throw new Error(`remove crash ${phase} mutation ${index}: tree differs\n${diffKeys(reference.before, actual)}`);
        }
      }
    }
    expect(caughtUp).toBeGreaterThan(0);
  });
});

function editedEntry(root: string): string {
  return path.relative(root, new HostFs(root).local(currentEdited));
}

