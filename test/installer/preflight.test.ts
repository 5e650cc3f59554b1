/**
 * The pre-flight with the node's own containerd: the real binaries (Debian's 1.6, the 2.2 and 2.3 builds) placed
 * in a temp node root at /usr/bin/containerd and run there under chroot (the stand-in for nsenter into PID 1's
 * mount namespace), resolving every path as on a node. The version install writes for comes from that binary's
 * `--version` when no Node object says; what it loads decides whether anything is written.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HostFs } from '../../lib/installer/host/fs';
import { install } from '../../lib/installer/installer';
import { containerdReads, findRuntimeBinary } from '../../lib/installer/runtime/loader';
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
    ['containerd 2.2, version 3', 'containerd-2-default.toml', 2, /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.crun-wasm\]/],
    ['containerd 2.3, version 4', 'containerd-2.3-v4.toml', '2.3', /\[plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\.crun-wasm\]/],
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

  it('a containerd 2.x that cannot tell its version, on a version 2 file with 2.x names: refused, nothing written', async () => {
    const script = '#!/bin/sh\n[ "$1" = --version ] && exit 1\nexec /opt/vendor/containerd "$@"\n';
    const { root, runner } = node(fixture('containerd2-version2-2x-names.toml'), { script, binary: 2 });
    const before = snapshot(root);
    const { error } = await runInstall(root, runner);
    expect(error?.message).toMatch(
      /^pre-flight: the node's containerd \(\/usr\/bin\/containerd\) would not see the handler in the config install would write to \/etc\/containerd\/config\.toml; it reads these runtime handlers instead: runc \(under plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\); nothing was changed$/,
    );
    expect(snapshot(root)).toEqual(before);
    expect(runner.calls.some((c) => c.includes('systemctl') && c.includes('restart'))).toBe(false);
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

