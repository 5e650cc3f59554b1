/** The API side (fake cluster), SELinux labelling, restart failures with rollback, and the host-fs guard rails. */
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from '../../lib/installer/errors';
import { HostFs } from '../../lib/installer/host-fs';
import { install, remove } from '../../lib/installer/installer';
import { MemoryLogger } from '../../lib/installer/log';
import { status } from '../../lib/installer/status';
import { waitRemoved } from '../../lib/installer/wait-removed';
import { effectsFor, FakeCluster, fixture, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from './support';

const CONTAINERD = '/etc/containerd/config.toml';
const KNATIVE = 'knative-serving/config-features';
const FLAG = 'kubernetes.podspec-runtimeclassname';
const LABEL = 'knawd.dev/crun-wasm';

function args(command: string, root: string, artifacts: string, extra: string[] = []): string[] {
  return [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, '--node-name', 'node-a', ...extra];
}

describe('Kubernetes API steps (fake cluster)', () => {
  test('install labels the node and enables Knative, recording the previous value; remove undoes both', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const cluster = new FakeCluster().addNode('node-a', 'containerd://1.7.22', { 'kubernetes.io/os': 'linux' });
    cluster.configMaps.set(KNATIVE, { other: 'x' });

    await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { cluster }));
    expect(cluster.nodes.get('node-a')?.labels).toEqual({ 'kubernetes.io/os': 'linux', [LABEL]: 'installed' });
    expect(cluster.configMaps.get(KNATIVE)).toEqual({ other: 'x', [FLAG]: 'enabled' });
    const state = JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8'));
    expect(state.knative).toEqual({ previous: null });

    cluster.calls.length = 0;
    const again = await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { cluster }));
    expect(again.bytesWritten).toBe(0);
    expect(cluster.calls.filter((c) => c.startsWith('set'))).toEqual([]);

    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root, { cluster }));
    expect(cluster.nodes.get('node-a')?.labels).toEqual({ 'kubernetes.io/os': 'linux' });
    expect(cluster.configMaps.get(KNATIVE)).toEqual({ other: 'x' });
  });

  test('remove refuses, changing nothing on the node, while pods on it still run with the handler', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const cluster = new FakeCluster().addNode('node-a');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { cluster }));
    const installed = snapshot(root);
    cluster.handlerPods.set('node-a crun-wasm', ['apps/wasm-1', 'apps/wasm-2']);

    const refused = remove(settingsFor(args('remove', root, artifacts, ['--pods-timeout-seconds', '1'])), effectsFor(root, { cluster }));
    await expect(refused).rejects.toThrow(InstallerError);
    await expect(refused).rejects.toThrow('2 pod(s) on node node-a still run with handler crun-wasm (apps/wasm-1, apps/wasm-2); nothing was removed');
    expect(snapshot(root)).toEqual(installed);
    // Unlabelled first, so the RuntimeClass schedules no new WASM pods here while they drain.
    expect(cluster.nodes.get('node-a')?.labels).toEqual({});

    cluster.handlerPods.clear();
    await remove(settingsFor(args('remove', root, artifacts, ['--pods-timeout-seconds', '1'])), effectsFor(root, { cluster }));
    expect(fs.existsSync(path.join(root, 'opt/knawd'))).toBe(false);
  });

  test('a flag that was already enabled is not ours and stays; a previous "disabled" is restored', async () => {
    for (const [before, after] of [
      ['enabled', 'enabled'],
      ['disabled', 'disabled'],
    ]) {
      const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
      const artifacts = makeArtifacts('ubuntu_22_04');
      const cluster = new FakeCluster().addNode('node-a');
      cluster.configMaps.set(KNATIVE, { [FLAG]: before });
      await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { cluster }));
      expect(cluster.configMaps.get(KNATIVE)).toEqual({ [FLAG]: 'enabled' });
      await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root, { cluster }));
      expect(cluster.configMaps.get(KNATIVE)).toEqual({ [FLAG]: after });
    }
  });

  test('no Knative in the cluster is a warning, not a failure; --patch-knative false leaves it alone', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const cluster = new FakeCluster().addNode('node-a');
    const effects = effectsFor(root, { cluster });
    await install(settingsFor(args('install', root, artifacts)), effects);
    expect(effects.log.records.some((r) => r.level === 'warn' && /Knative not found/.test(r.msg))).toBe(true);
    expect(cluster.nodes.get('node-a')?.labels[LABEL]).toBe('installed');

    const root2 = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    cluster.configMaps.set(KNATIVE, {});
    await install(settingsFor(args('install', root2, artifacts, ['--patch-knative', 'false'])), effectsFor(root2, { cluster }));
    expect(cluster.configMaps.get(KNATIVE)).toEqual({});
  });

  test('a missing containerd config follows the containerd version the node reports', async () => {
    const root = makeRoot();
    const artifacts = makeArtifacts('ubuntu_22_04');
    const cluster = new FakeCluster().addNode('node-a', 'containerd://2.0.2');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { cluster }));
    const config = fs.readFileSync(path.join(root, CONTAINERD), 'utf8');
    expect(config).toContain('version = 3');
    expect(config).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]');

    const root1 = makeRoot();
    const cluster1 = new FakeCluster().addNode('node-a', 'containerd://1.7.22');
    await install(settingsFor(args('install', root1, artifacts)), effectsFor(root1, { cluster: cluster1 }));
    expect(fs.readFileSync(path.join(root1, CONTAINERD), 'utf8')).toContain('version = 2');
  });

  test('with --restart none the node is not labelled (the runtime does not know the handler yet)', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const cluster = new FakeCluster().addNode('node-a');
    await install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'), ['--restart', 'none'])), effectsFor(root, { cluster }));
    expect(cluster.nodes.get('node-a')?.labels[LABEL]).toBeUndefined();
  });

  test('remove on a node with nothing installed still clears a stale label', async () => {
    const root = makeRoot();
    const cluster = new FakeCluster().addNode('node-a', undefined, { [LABEL]: 'installed' });
    const report = await remove(settingsFor(['remove', '--node-root', root, '--node-name', 'node-a']), effectsFor(root, { cluster }));
    expect(report.changed).toEqual([]);
    expect(cluster.nodes.get('node-a')?.labels).toEqual({});
  });

  test('wait-removed polls until no node is labelled, and names the nodes left at the timeout', async () => {
    const cluster = new FakeCluster().addNode('a', undefined, { [LABEL]: 'installed' }).addNode('b', undefined, { [LABEL]: 'installed' });
    let clock = 0;
    let polls = 0;
    const sleep = async (ms: number): Promise<void> => {
      clock += ms;
      if (++polls === 2) await cluster.setNodeLabel('a', LABEL, null);
      if (polls === 3) await cluster.setNodeLabel('b', LABEL, null);
    };
    await waitRemoved(cluster, new MemoryLogger(), { labelSelector: `${LABEL}=installed`, timeoutSeconds: 60, now: () => clock, sleep });
    expect(polls).toBe(3);

    const stuck = new FakeCluster().addNode('c', undefined, { [LABEL]: 'installed' }).addNode('d');
    clock = 0;
    const promise = waitRemoved(stuck, new MemoryLogger(), { labelSelector: `${LABEL}=installed`, timeoutSeconds: 10, now: () => clock, sleep: async (ms) => void (clock += ms) });
    await expect(promise).rejects.toThrow(/timed out after 10 s: 1 node\(s\) still labelled knawd.dev\/crun-wasm=installed: c$/);
    await expect(waitRemoved(undefined, new MemoryLogger(), { labelSelector: 'x=y', timeoutSeconds: 1 })).rejects.toBeInstanceOf(InstallerError);
  });
});

describe('SELinux', () => {
  test('installed binaries get the label of the host runc; rewritten configs get their policy label', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml'), '/sys/fs/selinux/enforce': '1' });
    const effects = effectsFor(root, { answer: (argv) => (argv.includes('sh') ? { stdout: '/usr/bin/runc\n' } : undefined) });
    await install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects);
    expect(effects.runner.calls).toEqual([
      ['nsenter', '-t', '1', '-m', '--', 'sh', '-c', 'command -v runc || command -v crun'],
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', '/opt/knawd/bin/crun-wasmtime'],
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', '/opt/knawd/libexec/crun-wasmtime/crun'],
      ['nsenter', '-t', '1', '-m', '--', 'restorecon', '/etc/containerd/config.toml'],
      RESTART('containerd'),
    ]);
  });

  test('/etc/selinux/config saying enforcing counts too; disabled does not', async () => {
    for (const [mode, labelled] of [
      ['enforcing', true],
      ['disabled', false],
    ] as const) {
      const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml'), '/etc/selinux/config': `# comment\nSELINUX=${mode}\nSELINUXTYPE=targeted\n` });
      const effects = effectsFor(root, { answer: (argv) => (argv.includes('sh') ? { stdout: '/usr/bin/runc\n' } : undefined) });
      await install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects);
      expect(effects.runner.calls.some((c) => c.includes('chcon'))).toBe(labelled);
    }
  });
});

describe('restart failures roll the install back', () => {
  test.each([
    ['the restart command fails with the new config', { answer: (() => { let n = 0; return (argv: readonly string[]) => (argv.includes('restart') && n++ === 0 ? { code: 1, stderr: 'Job for containerd.service failed' } : undefined); })() }, /systemctl restart containerd failed \(exit 1\): Job for containerd.service failed; the install was rolled back/],
    ['the socket does not answer after the change', { socketOk: (() => { let n = 0; return () => n++ > 0; })() }, /did not accept connections within 60 s; the install was rolled back/],
  ])('%s', async (_name, options, message) => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const before = snapshot(root);
    const cluster = new FakeCluster().addNode('node-a');
    const effects = effectsFor(root, { ...options, cluster });
    await expect(install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects)).rejects.toThrow(message);
    expect(snapshot(root)).toEqual(before);
    expect(effects.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART('containerd'), RESTART('containerd')]);
    expect(cluster.nodes.get('node-a')?.labels[LABEL]).toBeUndefined();
  });

  test('when the rollback cannot bring the runtime back either, the error says so', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const effects = effectsFor(root, { answer: (argv) => (argv.includes('restart') ? { code: 1 } : undefined) });
    await expect(install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects)).rejects.toThrow(/rolling back failed too/);
  });

  test('a failed restart during remove keeps the state so that remove can be run again', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const failing = effectsFor(root, { answer: (argv) => (argv.includes('restart') ? { code: 1 } : undefined) });
    await expect(remove(settingsFor(args('remove', root, artifacts)), failing)).rejects.toThrow(/systemctl restart containerd failed/);
    expect(status(settingsFor(args('status', root, artifacts)), failing.fs)).toMatchObject({ state: 'drifted', phase: 'removing', restartPending: true });
    const retry = effectsFor(root);
    await remove(settingsFor(args('remove', root, artifacts)), retry);
    expect(retry.runner.calls).toEqual([RESTART('containerd')]);
    expect(snapshot(root)).toEqual(before);
  });
});

describe('host file system guard rails', () => {
  test('symlinks resolve inside the node root, absolute or with ..', () => {
    const root = makeRoot({ '/etc/real/config.toml': 'x = 1\n' });
    fs.symlinkSync('/etc/real', path.join(root, 'etc/containerd'));
    fs.symlinkSync('../../../../../../etc/real/config.toml', path.join(root, 'etc/escape.toml'));
    const host = new HostFs(root);
    expect(host.local(CONTAINERD)).toBe(path.join(root, 'etc/real/config.toml'));
    expect(host.local('/etc/escape.toml')).toBe(path.join(root, 'etc/real/config.toml'));
    host.writeFile(CONTAINERD, Buffer.from('x = 2\n'));
    expect(fs.readFileSync(path.join(root, 'etc/real/config.toml'), 'utf8')).toBe('x = 2\n');
    expect(fs.lstatSync(path.join(root, 'etc/containerd')).isSymbolicLink()).toBe(true);
  });

  test('a config behind an absolute symlink is edited where it lives and restored exactly', async () => {
    const root = makeRoot({ '/etc/k8s/containerd.toml': fixture('containerd-v2.toml') });
    fs.mkdirSync(path.join(root, 'etc/containerd'));
    fs.symlinkSync('/etc/k8s/containerd.toml', path.join(root, 'etc/containerd/config.toml'));
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    expect(fs.readFileSync(path.join(root, 'etc/k8s/containerd.toml'), 'utf8')).toContain('crun-wasm');
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });

  test('the mode and content of a replaced config are kept; the original is restored with its mode', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    fs.chmodSync(path.join(root, CONTAINERD), 0o600);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    expect(fs.statSync(path.join(root, CONTAINERD)).mode & 0o777).toBe(0o600);
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(fs.statSync(path.join(root, CONTAINERD)).mode & 0o777).toBe(0o600);
  });

  test('edits made after install survive remove: only our block is taken out', async () => {
    const original = fixture('containerd-v2.toml');
    const root = makeRoot({ [CONTAINERD]: original });
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const local = path.join(root, CONTAINERD);
    fs.writeFileSync(local, '# added by an admin\n' + fs.readFileSync(local, 'utf8'));
    const effects = effectsFor(root);
    await remove(settingsFor(args('remove', root, artifacts)), effects);
    expect(fs.readFileSync(local, 'utf8')).toBe('# added by an admin\n' + original);
    expect(effects.log.records.some((r) => r.level === 'warn' && /changed after install/.test(r.msg))).toBe(true);
  });

  test('a lost state file: remove still finds and takes out what install put there', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });

  test('a lost state file: install again does not take the patched config as the original', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });

  test('switching the runtime replaces the old binary and library and keeps one block', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-v2.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const other = [...args('install', root, artifacts)];
    other[other.indexOf('crun-wasmtime')] = 'crun-wasmedge';
    const report = await install(settingsFor(other), effectsFor(root));
    expect(report.restarts).toBe(1);
    expect(fs.readdirSync(path.join(root, 'opt/knawd/bin'))).toEqual(['crun-wasmedge']);
    expect(fs.readdirSync(path.join(root, 'opt/knawd/lib'))).toEqual(['libwasmedge.so.0']);
    expect(fs.readFileSync(path.join(root, CONTAINERD), 'utf8').match(/BEGIN knawd/g)).toHaveLength(1);
    await remove(settingsFor(['remove', '--node-root', root]), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });
});
