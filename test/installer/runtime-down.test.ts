/**
 * A runtime that is not running before the run (nothing answers on its socket): install says so, writes the
 * files and config (the runtime reads them when it starts), does not start it, and leaves the node pending;
 * `--start-stopped-runtime` (or KNAWD_START_STOPPED_RUNTIME=true) starts it. remove reverts without a restart:
 * a stopped runtime has nothing loaded.
 */
import { status } from '../../lib/installer/commands/status';
import { install, remove } from '../../lib/installer/installer';
import { effectsFor, fixture, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from './support';

const CONTAINERD = '/etc/containerd/config.toml';

function args(command: string, root: string, artifacts: string, extra: string[] = []): string[] {
  return [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, ...extra];
}

describe('runtime down before the run', () => {
  test('install: says so, installs, does not start it; the next run once it is up restarts and verifies', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const down = effectsFor(root, { runtimeUp: false });
    const report = await install(settingsFor(args('install', root, artifacts)), down);
    expect(report).toMatchObject({ restarts: 0, restartPending: true });
    expect(down.socketProbes).toEqual([`${root}/run/containerd/containerd.sock`]);
    expect(down.runner.calls).toEqual([]);
    const warnings = down.log.records.filter((r) => r.level === 'warn').map((r) => r.msg);
    expect(warnings).toContain(
      'containerd is not running on the node (nothing answers on /run/containerd/containerd.sock): it is not started: it reads the new config when it starts; run install again then to verify it and label the node (or pass --start-stopped-runtime)',
    );
    expect(status(settingsFor(args('status', root, artifacts)), down.fs)).toMatchObject({ state: 'installed', restartPending: true });

    const up = effectsFor(root);
    expect(await install(settingsFor(args('install', root, artifacts)), up)).toMatchObject({ restarts: 1, restartPending: false });
    expect(up.runner.calls).toEqual([RESTART('containerd')]);
  });

  test.each([
    ['--start-stopped-runtime', ['--start-stopped-runtime'], {}],
    ['KNAWD_START_STOPPED_RUNTIME=true', [], { KNAWD_START_STOPPED_RUNTIME: 'true' }],
  ])('install with %s starts it', async (_name, extra, env) => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const effects = effectsFor(root, { runtimeUp: false });
    const report = await install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'), extra), env), effects);
    expect(report).toMatchObject({ restarts: 1, restartPending: false });
    expect(effects.runner.calls).toEqual([RESTART('containerd')]);
  });

  test('remove: reverts everything without a restart; the host is restored', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const down = effectsFor(root, { runtimeUp: false });
    expect(await remove(settingsFor(args('remove', root, artifacts)), down)).toMatchObject({ restarts: 0, restartPending: false });
    expect(down.runner.calls).toEqual([]);
    expect(snapshot(root)).toEqual(before);
    expect(down.log.records.filter((r) => r.level === 'warn').map((r) => r.msg)).toContain(
      'containerd is not running on the node (nothing answers on /run/containerd/containerd.sock): it is not started: it reads the restored config when it starts',
    );
  });

  test('an unchanged node asks nothing of the runtime beyond whether it is up', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const again = effectsFor(root, { runtimeUp: false });
    expect(await install(settingsFor(args('install', root, artifacts)), again)).toMatchObject({ restarts: 0, restartPending: false, bytesWritten: 0 });
    expect(again.runner.calls).toEqual([]);
  });
});
