/**
 * The real CLI as a child process: bad input gives exactly one line on stderr, a non-zero exit, and a node
 * tree that is byte-identical to before; a good run logs JSON lines; --stay idles and SIGTERM changes nothing.
 */
import { spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { bundleInstaller, REPO } from '../support/tools';
import { fixture, makeArtifacts, makeRoot, snapshot, tempDir } from './support';

// The CLI as shipped: bundled with esbuild into one file (as the image carries it), built once for this file.
const BUNDLE = path.join(tempDir('knawd-bundle-'), 'knawd-installer.js');
const NODE_ARGS = [BUNDLE];

beforeAll(() => bundleInstaller(BUNDLE));
const CLEAN_ENV: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, TS_NODE_TRANSPILE_ONLY: 'true' };

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [...NODE_ARGS, ...args], { cwd: REPO, env: { ...CLEAN_ENV, ...env }, encoding: 'utf8' });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const CONTAINERD = '/etc/containerd/config.toml';

interface BadCase {
  readonly name: string;
  readonly files?: Record<string, string>;
  readonly target?: string;
  readonly runtime?: string;
  readonly extra?: string[];
  readonly artifacts?: { corrupt?: string; omit?: string };
  readonly nodeRoot?: string;
  readonly code: number;
  readonly message: RegExp;
}

const BAD: BadCase[] = [
  { name: 'unknown target', target: 'debian_13', code: 2, message: /unknown target "debian_13"; valid targets: .*ubuntu_22_04/ },
  { name: 'unknown runtime', runtime: 'crun-wasmer', code: 2, message: /unknown ociType "crun-wasmer"; valid ociTypes: crun-wasmedge/ },
  { name: 'pair not shipped', target: 'rhel8_plugins', runtime: 'crun-wasmtime', code: 2, message: /not available for target "rhel8_plugins"/ },
  { name: 'pair not shipped (crun-wasm-nodejs)', target: 'rhel8_plugins', runtime: 'crun-wasm-nodejs', code: 2, message: /not available for target "rhel8_plugins"/ },
  { name: 'prefix too long', extra: ['--prefix', `/opt/${'k'.repeat(60)}`], code: 2, message: /invalid --prefix "\/opt\/k+": use .*at most 64 characters/ },
  { name: 'bad --restart', extra: ['--restart', 'later'], code: 2, message: /invalid --restart "later": use auto or none/ },
  { name: 'unknown flag', extra: ['--force'], code: 2, message: /unknown flag --force/ },
  { name: 'node root missing', nodeRoot: '/nonexistent/knawd-node-root', code: 1, message: /node root \/nonexistent\/knawd-node-root does not exist/ },
  { name: 'invalid TOML on the host', files: { [CONTAINERD]: 'version = 2\n[plugins\nfoo = 1\n' }, code: 1, message: /\/etc\/containerd\/config.toml is not valid TOML/ },
  {
    name: 'handler already defined',
    files: { [CONTAINERD]: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]\n  runtime_type = "io.containerd.runc.v2"\n' },
    code: 1,
    message: /runtime "crun-wasm" is already defined in \/etc\/containerd\/config.toml \(line 2\)/,
  },
  {
    name: "Docker's containerd config (CRI disabled)",
    files: { [CONTAINERD]: 'disabled_plugins = ["cri"]\n' },
    code: 1,
    message: /\/etc\/containerd\/config.toml disables containerd's CRI plugin \(disabled_plugins has "cri"\)/,
  },
  { name: 'checksum mismatch', files: { [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') }, artifacts: { corrupt: 'libwasmtime.so' }, code: 1, message: /checksum mismatch for .*libwasmtime.so.*nothing was changed/ },
  { name: 'artifact missing', files: { [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') }, artifacts: { omit: 'crun-wasmtime' }, code: 1, message: /artifact .*crun-wasmtime\/crun is missing/ },
  {
    name: 'CRI-O built-in handler name',
    target: 'crio',
    files: { '/etc/crio/crio.conf': fixture('crio.conf') },
    extra: ['--handler', 'crun'],
    code: 1,
    message: /runtime handler "crun" is a runtime CRI-O defines itself/,
  },
  {
    name: 'k3s already renders the handler',
    target: 'k3s',
    files: { '/var/lib/rancher/k3s/agent/etc/containerd/config.toml': fixture('k3s-rendered-v2.toml') },
    extra: ['--handler', 'crun'],
    code: 1,
    message: /k3s already defines runtime "crun" in its rendered config.toml/,
  },
];

describe('bad input: one line on stderr, non-zero exit, node unchanged', () => {
  test.each(BAD)('$name', (c) => {
    const target = c.target ?? 'ubuntu_22_04';
    const root = makeRoot(c.files ?? { [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts(target === 'debian_13' ? 'ubuntu_22_04' : target, c.artifacts);
    const before = snapshot(root);
    const result = cli(['install', '--node-root', c.nodeRoot ?? root, '--target', target, '--runtime', c.runtime ?? 'crun-wasmtime', '--artifacts', artifacts, ...(c.extra ?? [])]);
    expect(result.code).toBe(c.code);
    const lines = result.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(c.message);
    expect(lines[0]).toMatch(/^knawd-installer( install)?: error: .* \(fix: .+\)$/);
    expect(result.stderr).not.toMatch(/\bat .*\.ts:\d+/);
    // stdout holds only JSON log lines, the last one the error with its fix.
    const records = result.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l));
    expect(records[records.length - 1]).toMatchObject({ level: 'error', fix: expect.any(String) });
    expect(snapshot(root)).toEqual(before);
  });
});

describe('a good run through the CLI, configured from the environment', () => {
  test('install (env only), status, install again, remove, status', () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const before = snapshot(root);
    const env = { VENDOR: 'ubuntu_22_04', OCI_TYPE: 'crun-wasmtime', NODE_ROOT: root, AUTO_RESTART: 'false', KNAWD_ARTIFACTS: artifacts, LOG_LEVEL: 'info' };

    const first = cli(['install'], env);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const records = first.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(records.every((r) => typeof r.level === 'string' && typeof r.msg === 'string')).toBe(true);
    expect(records[records.length - 1]).toMatchObject({ msg: 'install complete', restarts: 0, restartPending: true });
    expect(records[records.length - 1].bytesWritten).toBeGreaterThan(0);

    const state = cli(['status'], env);
    expect(state.code).toBe(0);
    expect(JSON.parse(state.stdout)).toMatchObject({ state: 'installed', restartPending: true, artifactsMatch: true });

    const second = cli(['install', '--log-level', 'warn'], env);
    expect(second.code).toBe(0);
    const secondRecords = second.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(secondRecords.every((r) => r.level === 'warn' || r.level === 'error')).toBe(true);

    const counted = cli(['install'], env);
    const last = counted.stdout.trim().split('\n').map((l) => JSON.parse(l)).pop();
    expect(last).toMatchObject({ msg: 'install complete', bytesWritten: 0, filesWritten: 0, restarts: 0 });

    // Drift: someone edits the config.
    fs.appendFileSync(path.join(root, CONTAINERD), '# edited\n');
    expect(cli(['status'], env).code).toBe(3);
    fs.writeFileSync(path.join(root, CONTAINERD), fs.readFileSync(path.join(root, CONTAINERD), 'utf8').replace('# edited\n', ''));

    expect(cli(['remove'], env).code).toBe(0);
    expect(snapshot(root)).toEqual(before);
    expect(cli(['status'], env).code).toBe(1);
    expect(cli(['remove'], env).code).toBe(0);
  });

  test('plan prints the diff on stdout and writes nothing', () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const result = cli(['plan', '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('ubuntu_22_04')]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--- /etc/containerd/config.toml\n+++ /etc/containerd/config.toml');
    expect(result.stdout).toContain('restart: containerd would be restarted');
    expect(snapshot(root)).toEqual(before);
  });

  test('--help prints the usage and exits 0', () => {
    const result = cli(['--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: knawd-installer <command> [flags]');
  });

  test('install --stay idles after success; SIGTERM exits 0 and changes nothing', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const args = ['install', '--stay', '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('ubuntu_22_04'), '--restart', 'none'];
    const child = spawn(process.execPath, [...NODE_ARGS, ...args], { cwd: REPO, env: CLEAN_ENV });
    let out = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no idle line; got ${out}`)), 30000);
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('staying idle')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    const installed = snapshot(root);
    // Idle, it holds no node lock: the remover on this node must not wait for it.
    expect(fs.existsSync(path.join(root, 'run/knawd-installer.lock'))).toBe(false);
    const code = await new Promise<number | null>((resolve) => {
      child.on('exit', (c) => resolve(c));
      child.kill('SIGTERM');
    });
    expect(code).toBe(0);
    expect(snapshot(root)).toEqual(installed);
  });
});
