import * as fs from 'fs';
import * as path from 'path';
import { planCommand } from '../../lib/installer/commands/plan';
import { install, remove } from '../../lib/installer/installer';
import { status } from '../../lib/installer/commands/status';
import { SCENARIOS, setUp } from './scenarios';
import { effectsFor, fixture, makeArtifacts, RESTART, settingsFor, snapshot } from './support';
import { NODEJS_DATA } from '../support/fake-artifacts';

describe.each(SCENARIOS)('$name', (scenario) => {
  const args = (command: string, root: string, artifacts: string, extra: string[] = []): string[] => [
    command,
    '--node-root',
    root,
    '--target',
    scenario.target,
    '--runtime',
    scenario.runtime,
    '--artifacts',
    artifacts,
    ...extra,
  ];

  test('plan shows a diff with host paths and changes nothing', async () => {
    const root = setUp(scenario);
    const artifacts = makeArtifacts(scenario.target);
    const before = snapshot(root);
    const out = await planCommand(settingsFor(args('plan', root, artifacts)), effectsFor(root, { answer: scenario.answer }));
    expect(snapshot(root)).toEqual(before);
    expect(out.text).toContain(`+++ ${scenario.edited}`);
    expect(out.text).toContain(`+  BinaryName = "/opt/knawd/bin/${scenario.runtime}"`.replace('BinaryName', scenario.target.match(/crio|rhel/) ? 'runtime_path' : 'BinaryName'));
    expect(out.text).toContain(`create /opt/knawd/libexec/${scenario.runtime}/crun`);
    expect(out.text).toMatch(/restart: .* would be restarted/);
    expect(out.text).toContain(`detected: config: ${scenario.edited}`);
    for (const note of scenario.notes ?? []) expect(out.text).toMatch(note);
    expect(out.text).not.toContain(root);
  });

  test('install keeps the rest, restarts once; again writes nothing; remove restores the tree byte for byte', async () => {
    const root = setUp(scenario);
    const artifacts = makeArtifacts(scenario.target);
    const before = snapshot(root);

    const first = effectsFor(root, { answer: scenario.answer });
    const report = await install(settingsFor(args('install', root, artifacts)), first);
    expect(report.restarts).toBe(1);
    expect(report.bytesWritten).toBeGreaterThan(0);
    expect(first.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART(scenario.unit)]);
    expect(first.socketWaits).toHaveLength(1);

    const edited = fs.readFileSync(path.join(first.fs.local(scenario.edited)), 'utf8');
    expect(edited).toContain('crun-wasm');
    expect(edited).toContain(`/opt/knawd/bin/${scenario.runtime}`);
    if (scenario.keeps) expect(edited.startsWith(scenario.keeps)).toBe(true);
    for (const line of scenario.has ?? []) expect(edited.split('\n')).toContain(line);
    for (const text of scenario.lacks ?? []) expect(edited).not.toContain(text);
    const wrapper = fs.readFileSync(path.join(root, `opt/knawd/bin/${scenario.runtime}`), 'utf8');
    expect(wrapper).toContain(`exec '/opt/knawd/libexec/${scenario.runtime}/crun' "$@"`);
    expect(fs.statSync(path.join(root, `opt/knawd/libexec/${scenario.runtime}/crun`)).mode & 0o777).toBe(0o755);
    // Nothing outside the prefix and the edited file (and its new parent directories) was touched.
    const after = snapshot(root);
    const touched = Object.keys(after).filter((k) => after[k] !== before[k]);
    const editedLocal = path.relative(root, first.fs.local(scenario.edited));
    expect(touched.filter((entry) => !(entry === editedLocal || entry.startsWith('opt') || editedLocal.startsWith(entry + '/')))).toEqual([]);
    expect(status(settingsFor(args('status', root, artifacts)), first.fs)).toMatchObject({ state: 'installed', exitCode: 0, restartPending: false, artifactsMatch: true });

    const second = effectsFor(root, { answer: scenario.answer });
    const again = await install(settingsFor(args('install', root, artifacts)), second);
    expect(again).toMatchObject({ bytesWritten: 0, filesWritten: 0, restarts: 0, changed: [] });
    expect(second.runner.calls).toEqual(scenario.detects ?? []);
    expect(snapshot(root)).toEqual(after);

    const third = effectsFor(root, { answer: scenario.answer });
    const removed = await remove(settingsFor(args('remove', root, artifacts)), third);
    expect(removed.restarts).toBe(1);
    expect(third.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART(scenario.unit)]);
    expect(snapshot(root)).toEqual(before);

    const fourth = effectsFor(root, { answer: scenario.answer });
    const twice = await remove(settingsFor(args('remove', root, artifacts)), fourth);
    expect(twice).toMatchObject({ bytesWritten: 0, restarts: 0, changed: [] });
    expect(fourth.runner.calls).toEqual([]);
    expect(snapshot(root)).toEqual(before);
    expect(status(settingsFor(args('status', root, artifacts)), fourth.fs).exitCode).toBe(1);
  });

  test('--restart none restarts nothing and reports the restart as pending', async () => {
    const root = setUp(scenario);
    const artifacts = makeArtifacts(scenario.target);
    const effects = effectsFor(root, { answer: scenario.answer });
    const report = await install(settingsFor(args('install', root, artifacts, ['--restart', 'none'])), effects);
    expect(report).toMatchObject({ restarts: 0, restartPending: true });
    expect(effects.runner.calls).toEqual([...(scenario.detects ?? []), ...(scenario.preflights ?? [])]);
    expect(effects.log.records.some((r) => r.level === 'warn' && /restart pending/.test(r.msg))).toBe(true);
    expect(status(settingsFor(args('status', root, artifacts)), effects.fs)).toMatchObject({ exitCode: 0, restartPending: true });

    // A later run with restarts allowed performs the pending restart although no file changes.
    const later = effectsFor(root, { answer: scenario.answer });
    const done = await install(settingsFor(args('install', root, artifacts)), later);
    expect(done).toMatchObject({ restarts: 1, restartPending: false, changed: [] });
    expect(later.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART(scenario.unit)]);
  });
});

/** A node of the first scenario and a way to install or remove any runtime on it. */
function switchingNode() {
  const scenario = SCENARIOS[0];
  const root = setUp(scenario);
  const before = snapshot(root);
  const artifacts = makeArtifacts(scenario.target);
  const run = (command: string, runtime: string) =>
    (command === 'install' ? install : remove)(
      settingsFor([command, '--node-root', root, '--target', scenario.target, '--runtime', runtime, '--artifacts', artifacts]),
      effectsFor(root, { answer: scenario.answer }),
    );
  return { root, before, artifacts, run };
}

test('switching the runtime takes the old build out, its directories too; remove restores the tree', async () => {
  const { root, before, run } = switchingNode();
  await run('install', 'crun-wasmtime');
  expect(fs.existsSync(path.join(root, 'opt/knawd/libexec/crun-wasmtime'))).toBe(true);
  const switched = await run('install', 'crun-wasmedge');
  expect(switched.restarts).toBe(1);
  const left = Object.keys(snapshot(root)).filter((p) => /wasmtime/.test(p));
  expect(left).toEqual([]);
  expect(fs.existsSync(path.join(root, 'opt/knawd/libexec/crun-wasmedge/crun'))).toBe(true);
  await run('remove', 'crun-wasmedge');
  expect(snapshot(root)).toEqual(before);
});

describe.each(SCENARIOS.filter((s) => /\/50-knawd-[^/]+\.toml$/.test(s.edited)))('$name, the state file lost', (scenario) => {
  test('install again recognises our drop-in as ours; remove still finds it and restores the tree', async () => {
    // A drop-in directory that exists already (another tool's file in it): without the state, nothing says we made it.
    const dir = scenario.edited.slice(0, scenario.edited.lastIndexOf('/'));
    const root = setUp({ ...scenario, files: { ...scenario.files, [`${dir}/99-other.toml`]: 'version = 3\n' } });
    const before = snapshot(root);
    const artifacts = makeArtifacts(scenario.target);
    const run = (command: 'install' | 'remove') =>
      (command === 'install' ? install : remove)(
        settingsFor([command, '--node-root', root, '--target', scenario.target, '--runtime', scenario.runtime, '--artifacts', artifacts]),
        effectsFor(root, { answer: scenario.answer }),
      );
    await run('install');
    const installed = snapshot(root);
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    const again = await run('install');
    expect(again).toMatchObject({ restarts: 0, changed: [] });
    const state = JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8'));
    expect(state.files).toContainEqual(expect.objectContaining({ path: scenario.edited, role: 'containerd-dropin', created: true }));
    expect(snapshot(root)).toEqual(installed);
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    await run('remove');
    expect(snapshot(root)).toEqual(before);
  });
});

test('k3s upgraded to a release whose rendered config imports config-v3.toml.d: the handler moves from our template to a drop-in', async () => {
  const K3S = '/var/lib/rancher/k3s/agent/etc/containerd';
  const scenario = SCENARIOS.find((s) => s.name.startsWith('k3s agent whose rendered config imports')) as (typeof SCENARIOS)[number];
  const root = setUp({ ...scenario, files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3.toml') } });
  const artifacts = makeArtifacts('k3s');
  const run = (command: 'install' | 'remove') =>
    (command === 'install' ? install : remove)(
      settingsFor([command, '--node-root', root, '--target', 'k3s', '--runtime', scenario.runtime, '--artifacts', artifacts]),
      effectsFor(root, { answer: scenario.answer }),
    );
  await run('install');
  const template = fs.readFileSync(path.join(root, K3S, 'config-v3.toml.tmpl'), 'utf8');
  // k3s restarts on the new release: it renders its base, now importing the drop-in directory, then our template's block.
  const rendered = fixture('k3s-rendered-v3-imports.toml') + template.slice(template.indexOf('\n') + 1);
  fs.writeFileSync(path.join(root, K3S, 'config.toml'), rendered);

  const moved = await run('install');
  expect(moved.restarts).toBe(1);
  expect(fs.existsSync(path.join(root, K3S, 'config-v3.toml.tmpl'))).toBe(false);
  expect(fs.readFileSync(path.join(root, K3S, 'config-v3.toml.d/50-knawd-crun-wasm.toml'), 'utf8')).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]');
  expect(fs.readFileSync(path.join(root, K3S, 'config.toml'), 'utf8')).toBe(rendered);

  // At that restart k3s rendered its base alone (no template any more); remove then leaves what k3s itself made.
  fs.writeFileSync(path.join(root, K3S, 'config.toml'), fixture('k3s-rendered-v3-imports.toml'));
  await run('remove');
  expect(snapshot(root)).toEqual(snapshot(setUp({ ...scenario, files: { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3-imports.toml') } })));
});

test('crun-wasm-nodejs: its data file keeps its directories under <prefix>/lib; switching away and remove take them out', async () => {
  const { root, before, artifacts, run } = switchingNode();
  await run('install', 'crun-wasm-nodejs');
  const installed = path.join(root, 'opt/knawd/lib/nodejs/cjs-module-lexer/lexer.js');
  expect(fs.readFileSync(installed, 'utf8')).toBe(fs.readFileSync(path.join(artifacts, NODEJS_DATA), 'utf8'));
  expect(fs.statSync(installed).mode & 0o777).toBe(0o644);
  expect(fs.existsSync(path.join(root, 'opt/knawd/lib/libnode.so.115'))).toBe(true);
  await run('install', 'crun-wasmedge');
  expect(fs.existsSync(path.join(root, 'opt/knawd/lib/nodejs'))).toBe(false);
  await run('install', 'crun-wasm-nodejs');
  await run('remove', 'crun-wasm-nodejs');
  expect(snapshot(root)).toEqual(before);
});
