/** SELinux labelling, restart failures with rollback, and the host-fs guard rails. */
import * as fs from 'fs';
import * as path from 'path';
import { HostFs } from '../../lib/installer/host/fs';
import { install, remove } from '../../lib/installer/installer';
import { MemoryLogger } from '../../lib/installer/log';
import { status } from '../../lib/installer/commands/status';
import { waitRemoved } from '../../lib/installer/commands/wait-removed';
import { effectsFor, fixture, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from './support';

const CONTAINERD = '/etc/containerd/config.toml';

function args(command: string, root: string, artifacts: string, extra: string[] = []): string[] {
  return [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, '--node-name', 'node-a', ...extra];
}

describe('wait-removed', () => {
  // Its polling against a real API server is in test/cluster/installer-kube.test.ts.
  test('without any API access it fails at once with what to do', async () => {
    await expect(waitRemoved(undefined, new MemoryLogger(), { labelSelector: 'x=y', timeoutSeconds: 1 })).rejects.toThrow(
      'wait-removed needs the Kubernetes API, but there is no in-cluster config and no kubeconfig',
    );
  });
});

describe('SELinux', () => {
  test('installed binaries get the label of the host runc; rewritten configs get their policy label', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml'), '/sys/fs/selinux/enforce': '1' });
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

  test('on a CRI-O node (OpenShift): the binaries get the host runc label, the new drop-in its policy label', async () => {
    const root = makeRoot({
      '/etc/crio/crio.conf': fixture('crio.conf'),
      '/etc/crio/crio.conf.d/00-default': '[crio.runtime]\nconmon = ""\n',
      '/sys/fs/selinux/enforce': '1',
      '/usr/bin/crio': '#!/bin/false stand-in for the host crio\n',
      // RHCOS' own loader and libc, whose labels (ld_so_t, lib_t) the build's loader and libraries copy.
      '/usr/lib64/ld-linux-x86-64.so.2': 'loader',
      '/usr/lib64/libc.so.6': 'libc',
    });
    // The host's crio answers its version; loading a config cannot be faked (the real one is in test/e2e).
    const effects = effectsFor(root, {
      answer: (argv) =>
        argv.includes('sh') ? { stdout: '/usr/bin/runc\n' } : argv.includes('--version') ? { stdout: 'crio version 1.29.4\n' } : argv.includes('config') ? { code: -1, stderr: 'not here' } : undefined,
    });
    const argv = ['install', '--node-root', root, '--target', 'rhel8', '--runtime', 'crun-wasmedge', '--artifacts', makeArtifacts('rhel8')];
    await install(settingsFor(argv), effects);
    const libraries: string[] = JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8'))
      .files.filter((f: { role: string }) => f.role === 'library')
      .map((f: { path: string }) => f.path);
    expect(libraries.some((p) => p.includes('/ld-linux'))).toBe(true);
    expect(libraries.some((p) => !p.includes('/ld-linux'))).toBe(true);
    expect(effects.runner.calls).toEqual([
      ['nsenter', '-t', '1', '-m', '--', '/usr/bin/crio', '--version'],
      ['nsenter', '-t', '1', '-m', '--', '/usr/bin/crio', '--config', '/etc/crio/crio.conf', '--config-dir', '/run/knawd-preflight', 'config'],
      ['nsenter', '-t', '1', '-m', '--', 'sh', '-c', 'command -v runc || command -v crun'],
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', '/opt/knawd/bin/crun-wasmedge'],
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', '/opt/knawd/libexec/crun-wasmedge/crun'],
      ...libraries.filter((p) => p.includes('/ld-linux')).map((p) => ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/lib64/ld-linux-x86-64.so.2', p]),
      ...libraries.filter((p) => !p.includes('/ld-linux')).map((p) => ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/lib64/libc.so.6', p]),
      ['nsenter', '-t', '1', '-m', '--', 'restorecon', '/etc/crio/crio.conf.d/50-knawd-crun-wasm.conf'],
      RESTART('crio'),
    ]);
    expect(fs.readFileSync(path.join(root, 'etc/crio/crio.conf.d/50-knawd-crun-wasm.conf'), 'utf8')).toContain('allowed_annotations = ["module.wasm.image/variant", "run.oci."]');
    // The engine is dlopen()ed (mapped executable) by crun in the runtime's domain: it is labelled as a library too.
    expect(libraries).toContain('/opt/knawd/lib/libwasmedge.so.0');
  });

  test('/etc/selinux/config saying enforcing counts too; disabled does not', async () => {
    for (const [mode, labelled] of [
      ['enforcing', true],
      ['disabled', false],
    ] as const) {
      const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml'), '/etc/selinux/config': `# comment\nSELINUX=${mode}\nSELINUXTYPE=targeted\n` });
      const effects = effectsFor(root, { answer: (argv) => (argv.includes('sh') ? { stdout: '/usr/bin/runc\n' } : undefined) });
      await install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects);
      expect(effects.runner.calls.some((c) => c.includes('chcon'))).toBe(labelled);
    }
  });
});

describe('CRI-O version detection', () => {
  test('without a node object or a host crio binary, the drop-in gets no allowed_annotations and the run warns what to check', async () => {
    const root = makeRoot({ '/etc/crio/crio.conf': fixture('crio.conf') });
    const effects = effectsFor(root, { answer: (argv) => (argv.includes('--version') ? { code: 127, stderr: 'nsenter: failed to execute crio: No such file or directory' } : undefined) });
    await install(settingsFor(['install', '--node-root', root, '--target', 'crio', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('crio')]), effects);
    expect(fs.readFileSync(path.join(root, 'etc/crio/crio.conf.d/50-knawd-crun-wasm.conf'), 'utf8')).not.toContain('allowed_annotations');
    const warnings = effects.log.records.filter((r) => r.level === 'warn').map((r) => r.msg);
    expect(warnings).toContainEqual(expect.stringMatching(/^the CRI-O version is unknown .*exec format error/));
  });
});

describe('restart failures roll the install back', () => {
  test.each([
    ['the restart command fails with the new config', { answer: (() => { let n = 0; return (argv: readonly string[]) => (argv.includes('restart') && n++ === 0 ? { code: 1, stderr: 'Job for containerd.service failed' } : undefined); })() }, /systemctl restart containerd failed \(exit 1\): Job for containerd.service failed; the install was rolled back/],
    ['the socket does not answer after the change', { socketOk: (() => { let n = 0; return () => n++ > 0; })() }, /did not accept connections within 60 s; the install was rolled back/],
  ])('%s', async (_name, options, message) => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const effects = effectsFor(root, options);
    await expect(install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects)).rejects.toThrow(message);
    expect(snapshot(root)).toEqual(before);
    expect(effects.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART('containerd'), RESTART('containerd')]);
  });

  test('when the rollback cannot bring the runtime back either, the error says so', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const effects = effectsFor(root, { answer: (argv) => (argv.includes('restart') ? { code: 1 } : undefined) });
    await expect(install(settingsFor(args('install', root, makeArtifacts('ubuntu_22_04'))), effects)).rejects.toThrow(/rolling back failed too/);
  });

  test('a failed restart during remove keeps the state so that remove can be run again', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
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
    const root = makeRoot({ '/etc/k8s/containerd.toml': fixture('containerd-1.6-systemd-cgroup.toml') });
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
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    fs.chmodSync(path.join(root, CONTAINERD), 0o600);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    expect(fs.statSync(path.join(root, CONTAINERD)).mode & 0o777).toBe(0o600);
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(fs.statSync(path.join(root, CONTAINERD)).mode & 0o777).toBe(0o600);
  });

  test('edits made after install survive remove: only our block is taken out', async () => {
    const original = fixture('containerd-1.6-systemd-cgroup.toml');
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
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });

  test('a lost state file: install again does not take the patched config as the original', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    fs.rmSync(path.join(root, 'opt/knawd/state.json'));
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    await remove(settingsFor(args('remove', root, artifacts)), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });

  test('switching the runtime replaces the old binary and library and keeps one block', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    const other = [...args('install', root, artifacts)];
    other[other.indexOf('crun-wasmtime')] = 'crun-wasmedge';
    const report = await install(settingsFor(other), effectsFor(root));
    expect(report.restarts).toBe(1);
    expect(fs.readdirSync(path.join(root, 'opt/knawd/bin'))).toEqual(['crun-wasmedge']);
    expect(fs.readdirSync(path.join(root, 'opt/knawd/lib'))).toEqual(['ld-linux-x86-64.so.2', 'libc.so.6', 'libwasmedge.so.0']);
    expect(fs.readFileSync(path.join(root, CONTAINERD), 'utf8').match(/BEGIN knawd/g)).toHaveLength(1);
    await remove(settingsFor(['remove', '--node-root', root]), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
  });
});
