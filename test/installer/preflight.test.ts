/**
 * The pre-flight with the node's own containerd: the real binaries (Debian's 1.6, the 2.2 and 2.3 builds) placed
 * in a temp node root at /usr/bin/containerd and run there under chroot (the stand-in for nsenter into PID 1's
 * mount namespace), resolving every path as on a node. The version install writes for comes from that binary's
 * `--version` when no Node object says; what it loads decides whether anything is written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HostFs } from '../../lib/installer/host/fs';
import * as TOML from '@iarna/toml';
import { install, remove } from '../../lib/installer/installer';
import { containerdReads, containerdReadsDropIn, findRuntimeBinary } from '../../lib/installer/runtime/loader';
import { findTarget } from '../../lib/catalog';
import { ChrootRunner, installHostBinary } from '../support/chroot-runner';
import { containerdBinary, ContainerdReader } from '../support/containerd-binaries';
import { effectsFor, fixture, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from './support';

jest.setTimeout(60_000);

const CONFIG = '/etc/containerd/config.toml';
const TARGET = 'containerd';
const RUNTIME = 'crun-wasmtime';

function node(config: string, reader: ContainerdReader | { script: string; binary: ContainerdReader }): { root: string; runner: ChrootRunner } {
  const root = makeRoot({ [CONFIG]: config });
  if (typeof reader === 'object') {
    // A containerd that will not tell its version (a wrapper, say): busybox sh runs the script under chroot.
    installHostBinary(root, '/opt/vendor/containerd', containerdBinary(reader.binary));
    installHostBinary(root, '/bin/sh', '/bin/busybox');
    fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/bin/containerd'), reader.script, { mode: 0o755 });
  } else {
    installHostBinary(root, '/usr/bin/containerd', containerdBinary(reader));
  }
  // systemctl does not exist on a node root: its calls are answered (and recorded), never run.
  return { root, runner: new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined)) };
}

async function runInstall(root: string, runner: ChrootRunner) {
  const effects = { ...effectsFor(root), runner };
  const settings = settingsFor(['install', '--target', TARGET, '--runtime', RUNTIME, '--node-root', root, '--artifacts', makeArtifacts(TARGET)]);
  let error: Error | undefined;
  try {
    await install(settings, effects);
  } catch (e) {
    error = e as Error;
  }
  return { error, effects };
}

function loaderCalls(runner: ChrootRunner): string[][] {
  return runner.calls.filter((c) => c.includes('/usr/bin/containerd'));
}

describe("pre-flight: the node's containerd loads the config before anything is written", () => {
  it.each<[string, string, ContainerdReader, RegExp]>([
    ['containerd 1.6, version 2', 'containerd-1.6-systemd-cgroup.toml', 1, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.crun-wasm\]/],
    ['containerd 1.6, explicit version 1', 'version1-explicit.toml', 1, /\[plugins\.cri\.containerd\.runtimes\.crun-wasm\]/],
    ['containerd 2.2, version 2 with 2.x names', 'containerd2-version2-2x-names.toml', 2, /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.crun-wasm\]/],
    ['containerd 2.2, version 3 without imports', 'containerd-2-no-imports.toml', 2, /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.crun-wasm\]/],
    ['containerd 2.2, dotted CRI keys under [plugins]', 'dotted-cri-under-plugins.toml', 2, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.crun-wasm\]/],
  ])('%s: the version comes from the host binary, the block goes where it reads, and it sees the handler', async (_name, file, reader, block) => {
    const { root, runner } = node(fixture(file), reader);
    const { error, effects } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    const config = fs.readFileSync(path.join(root, CONFIG), 'utf8');
    expect(config.startsWith(fixture(file))).toBe(true);
    expect(config).toMatch(block);
    const calls = loaderCalls(runner);
    expect(calls[0]).toEqual(['nsenter', '-t', '1', '-m', '--', '/usr/bin/containerd', '--version']);
    expect(calls[1]).toEqual(['nsenter', '-t', '1', '-m', '--', '/usr/bin/containerd', '--config', '/etc/containerd/.config.toml.knawd-preflight', 'config', 'dump']);
    expect(runner.calls).toContainEqual(RESTART('containerd'));
    expect(effects.log.records.map((r) => r.msg)).toContain('pre-flight: /usr/bin/containerd loads the new /etc/containerd/config.toml and sees handler crun-wasm, and nothing else changes');
    // The candidate is gone again.
    expect(fs.readdirSync(path.join(root, 'etc/containerd')).sort()).toEqual(['config.toml']);
  });

  it('a containerd 2.x that cannot tell its version, on a version 2 file with 2.x names: the names win, and containerd 2.2 sees the handler', async () => {
    const script = '#!/bin/sh\n[ "$1" = --version ] && exit 1\nexec /opt/vendor/containerd "$@"\n';
    const file = fixture('containerd2-version2-2x-names.toml');
    const { root, runner } = node(file, { script, binary: 2 });
    const { error, effects } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    const config = fs.readFileSync(path.join(root, CONFIG), 'utf8');
    expect(config.startsWith(file)).toBe(true);
    expect(config).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]');
    expect(config).not.toContain('io.containerd.grpc.v1.cri');
    const messages = effects.log.records.map((r) => r.msg);
    expect(messages).toContain('containerd 2.x (the config uses containerd 2.x plugin names (io.containerd.cri.v1.runtime) under version = 2; neither the node object nor a host binary said)');
    expect(messages).toContain('pre-flight: /usr/bin/containerd loads the new /etc/containerd/config.toml and sees handler crun-wasm, and nothing else changes');
    expect(runner.calls).toContainEqual(RESTART('containerd'));
  });

  it('a version 4 file on containerd 2.2: refused by the version rule, nothing written', async () => {
    const { root, runner } = node(fixture('containerd-2.3-v4.toml'), 2);
    const before = snapshot(root);
    const { error } = await runInstall(root, runner);
    expect(error?.message).toMatch(/version 4 config, which containerd 2\.2 cannot read; version 4 needs containerd 2\.3 or later/);
    expect(snapshot(root)).toEqual(before);
  });

  it('a file containerd itself rejects: refused with its message, nothing written', async () => {
    // Valid TOML to us, but containerd 2.x refuses a type it cannot decode.
    const bad = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd]\n  default_runtime_name = 5\n';
    const { root, runner } = node(bad, 2);
    const before = snapshot(root);
    const { error } = await runInstall(root, runner);
    expect(error?.message).toMatch(/^pre-flight: the node's containerd \(\/usr\/bin\/containerd, version 2\.2\.\d+\) rejects the config that install would write to \/etc\/containerd\/config\.toml: .+; nothing was changed$/);
    expect(snapshot(root)).toEqual(before);
  });
});

describe("pre-flight compares the runtime's reading before and after: only our handler may change", () => {
  it('containerd 1.6 on its defaults: a block that defined only our handler would drop the implicit runc', async () => {
    const { root, runner } = node('version = 2\n', 1);
    const fs_ = new HostFs(root);
    const binary = await findRuntimeBinary(findTarget(TARGET), fs_, runner);
    const block = '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]\n  runtime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm.options]\n  BinaryName = "/opt/knawd/bin/crun-wasmtime"\n';
    const verdict = await containerdReads(fs_, runner, binary!, { path: CONFIG, text: `version = 2\n${block}` }, 'version = 2\n', 'crun-wasm');
    expect(verdict.handler).toBeDefined();
    expect(verdict.sideEffects).toContainEqual(expect.stringMatching(/^plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.runc\.runtime_type \("io\.containerd\.runc\.v2" → unset\)$/));
  });

  it('what install writes there keeps runc, so containerd 1.6 reads nothing else differently (and its CRI plugin loads: see test/e2e/cri-status)', async () => {
    const { root, runner } = node('version = 2\n', 1);
    const { error } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    expect(fs.readFileSync(path.join(root, CONFIG), 'utf8')).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]');
  });

  it('no config file at all: compared with containerd 2.2 on its defaults', async () => {
    const root = makeRoot();
    installHostBinary(root, '/usr/bin/containerd', containerdBinary(2));
    const runner = new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined));
    const { error } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    const config = fs.readFileSync(path.join(root, CONFIG), 'utf8');
    expect(config).toMatch(/^# BEGIN knawd-deployer managed block[^\n]*\nversion = 3\n/);
    expect(config).not.toContain('runtimes.runc]');
  });
});


describe('containerd 2.x whose config imports a directory: our drop-in there, the config untouched', () => {
  const DROP_IN = '/etc/containerd/conf.d/50-knawd-crun-wasm.toml';
  const IMPORTS_V2 = [
    'version = 2',
    'imports = ["/etc/containerd/conf.d/*.toml"]',
    '[plugins."io.containerd.grpc.v1.cri"]',
    '  sandbox_image = "example.com/pause:9"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]',
    '  runtime_type = "io.containerd.runc.v2"',
    '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
    '  SystemdCgroup = true',
    '',
  ].join('\n');

  /** What the node's containerd reads from its real config (imports and all) after the run. */
  async function nodeReads(runner: ChrootRunner): Promise<Record<string, any>> {
    const result = await runner.run(['nsenter', '-t', '1', '-m', '--', '/usr/bin/containerd', '--config', CONFIG, 'config', 'dump'], 30_000);
    expect(result.code).toBe(0);
    return TOML.parse(result.stdout) as Record<string, any>;
  }

  it.each<[string, string, ContainerdReader, number]>([
    ['containerd 2.2, its default config (version 3)', 'containerd-2-default.toml', 2, 3],
    ['containerd 2.3, its default config (version 4)', 'containerd-2.3-v4.toml', '2.3', 4],
  ])('%s: the dump with the drop-in shows the handler; remove deletes it, byte for byte', async (_name, file, reader, version) => {
    const { root, runner } = node(fixture(file), reader);
    const before = snapshot(root);
    const { error, effects } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    expect(fs.readFileSync(path.join(root, CONFIG), 'utf8')).toBe(fixture(file));
    const dropIn = fs.readFileSync(path.join(root, DROP_IN), 'utf8');
    expect(dropIn.split('\n')).toContain(`version = ${version}`);
    expect(dropIn).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]');
    expect(dropIn).not.toMatch(/^imports/m);
    // The pre-flight loaded the config twice beside it (with the drop-in's directory copied to /run, and as it is).
    const dumps = loaderCalls(runner).filter((c) => c.includes('dump'));
    expect(dumps).toEqual([0, 1].map(() => ['nsenter', '-t', '1', '-m', '--', '/usr/bin/containerd', '--config', '/etc/containerd/.config.toml.knawd-preflight', 'config', 'dump']));
    expect(effects.log.records.map((r) => r.msg)).toContain(
      `pre-flight: /usr/bin/containerd loads /etc/containerd/config.toml with the new drop-in ${DROP_IN} and sees handler crun-wasm, and nothing else changes`,
    );
    expect(fs.readdirSync(path.join(root, 'etc/containerd')).sort()).toEqual(['conf.d', 'config.toml']);
    expect(fs.existsSync(path.join(root, 'run/knawd-preflight'))).toBe(false);
    const handler = (await nodeReads(runner)).plugins['io.containerd.cri.v1.runtime'].containerd.runtimes['crun-wasm'];
    expect(handler.options.BinaryName).toBe('/opt/knawd/bin/crun-wasmtime');

    const settings = settingsFor(['remove', '--target', TARGET, '--node-root', root]);
    await remove(settings, { ...effectsFor(root), runner });
    expect(snapshot(root)).toEqual(before);
  });

  it('a version 2 config with 1.x names: the drop-in says version 2 and uses them, so containerd 2.2 keeps every setting of the config', async () => {
    const { root, runner } = node(IMPORTS_V2, 2);
    const { error } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    expect(fs.readFileSync(path.join(root, CONFIG), 'utf8')).toBe(IMPORTS_V2);
    const dropIn = fs.readFileSync(path.join(root, DROP_IN), 'utf8');
    expect(dropIn.split('\n')).toEqual(expect.arrayContaining(['version = 2', '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]', '  SystemdCgroup = true']));
    const dump = await nodeReads(runner);
    expect(dump.plugins['io.containerd.cri.v1.images'].pinned_images.sandbox).toBe('example.com/pause:9');
    expect(dump.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes.runc.options.SystemdCgroup).toBe(true);
    expect(dump.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes['crun-wasm'].options.BinaryName).toBe('/opt/knawd/bin/crun-wasmtime');
  });

  it("why the drop-in takes the config's version: with version = 3 there, containerd 2.2 would drop the config's 1.x-named settings, and the pre-flight says so", async () => {
    const { root, runner } = node(IMPORTS_V2, 2);
    const fs_ = new HostFs(root);
    const binary = await findRuntimeBinary(findTarget(TARGET), fs_, runner);
    const v3 = 'version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]\n  runtime_type = "io.containerd.runc.v2"\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm.options]\n  BinaryName = "/opt/knawd/bin/crun-wasmtime"\n';
    const verdict = await containerdReadsDropIn(fs_, runner, binary!, { config: { path: CONFIG, now: IMPORTS_V2, after: IMPORTS_V2 }, dropIn: { path: DROP_IN, text: v3 } }, 'crun-wasm');
    expect(verdict.handler).toBeDefined();
    expect(verdict.sideEffects).toContainEqual(expect.stringMatching(/^plugins\."io\.containerd\.cri\.v1\.images"\.pinned_images\.sandbox \("example\.com\/pause:9" → "registry\.k8s\.io\/pause:[\d.]+"\)$/));
    expect(verdict.sideEffects).toContainEqual(expect.stringMatching(/runtimes\.runc\.options\.SystemdCgroup \(true → (false|unset)\)$/));
    expect(fs.readdirSync(path.join(root, 'etc/containerd')).sort()).toEqual(['config.toml']);
  });

  it("other drop-ins are read as containerd reads them: the last one's SystemdCgroup wins, a file the glob skips is not read", async () => {
    const { root, runner } = node(fixture('containerd-2-default.toml'), 2);
    const runc = '[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]\n  SystemdCgroup = true\n';
    fs.mkdirSync(path.join(root, 'etc/containerd/conf.d'));
    fs.writeFileSync(path.join(root, 'etc/containerd/conf.d/10-cgroup.toml'), `version = 3\n${runc}`);
    fs.writeFileSync(path.join(root, 'etc/containerd/conf.d/README'), 'not TOML at all = [');
    const { error } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    expect(fs.readFileSync(path.join(root, DROP_IN), 'utf8').split('\n')).toContain('  SystemdCgroup = true');
    expect(fs.readdirSync(path.join(root, 'etc/containerd/conf.d')).sort()).toEqual(['10-cgroup.toml', '50-knawd-crun-wasm.toml', 'README']);
  });

  it('a node installed in place whose config later imports conf.d: the block leaves the config, the handler moves to the drop-in', async () => {
    const { root, runner } = node(fixture('containerd-2-no-imports.toml'), 2);
    expect((await runInstall(root, runner)).error).toBeUndefined();
    const patched = fs.readFileSync(path.join(root, CONFIG), 'utf8');
    expect(patched).toContain('# BEGIN knawd-deployer managed block');
    // The operator adds the import (as containerd 2.2's default config has it) above our block.
    const imports = "imports = ['/etc/containerd/conf.d/*.toml']\n";
    fs.writeFileSync(path.join(root, CONFIG), patched.replace('version = 3\n', `version = 3\n${imports}`));
    const { error } = await runInstall(root, runner);
    expect(error).toBeUndefined();
    expect(fs.readFileSync(path.join(root, CONFIG), 'utf8')).toBe(fixture('containerd-2-no-imports.toml').replace('version = 3\n', `version = 3\n${imports}`));
    expect(fs.existsSync(path.join(root, DROP_IN))).toBe(true);
    const runtimes = (await nodeReads(runner)).plugins['io.containerd.cri.v1.runtime'].containerd.runtimes;
    expect(runtimes['crun-wasm'].options.BinaryName).toBe('/opt/knawd/bin/crun-wasmtime');
  });
});
