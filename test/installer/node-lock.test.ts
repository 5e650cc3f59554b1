/**
 * The node lock: a second changing run on the same node waits for the first, gives up at its bound without
 * touching the node, takes over a lock whose holder died, and never leaves the lock behind. The contender is
 * the bundled CLI as a child process; the holder is this process (lockNode), as another pod would be.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { lockNode, NODE_LOCK } from '../../lib/installer/host/lock';
import { MemoryLogger } from '../../lib/installer/log';
import { bundleInstaller, REPO } from '../support/tools';
import { fixture, makeArtifacts, makeRoot, snapshot, tempDir } from './support';

jest.setTimeout(60_000);

const BUNDLE = path.join(tempDir('knawd-bundle-'), 'knawd-installer.js');
const CONTAINERD = '/etc/containerd/config.toml';

beforeAll(() => bundleInstaller(BUNDLE));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** The CLI as a child process, resolving when it exits; `onLine` sees each stdout line as it comes. */
function cli(args: string[], onLine: (line: string) => void = () => undefined): Promise<Result> {
  const started = Date.now();
  const child = spawn(process.execPath, [BUNDLE, ...args], { cwd: REPO, env: { PATH: process.env.PATH } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    stdout += text;
    text.split('\n').filter(Boolean).forEach(onLine);
  });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr, ms: Date.now() - started })));
}

function node(): { root: string; args: (command: string, ...extra: string[]) => string[] } {
  const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
  const artifacts = makeArtifacts('ubuntu_22_04');
  return {
    root,
    args: (command, ...extra) => [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, '--restart', 'none', ...extra],
  };
}

const lockDir = (root: string) => path.join(root, NODE_LOCK);

test('a second run waits while another holds the lock, then does its work', async () => {
  const { root, args } = node();
  const held = await lockNode(lockDir(root), 1, new MemoryLogger());
  let releasedAt = 0;
  const run = cli(args('install', '--lock-timeout-seconds', '30'), (line) => {
    if (line.includes('holds /run/knawd-installer.lock')) {
      setTimeout(() => {
        releasedAt = Date.now();
        void held.release();
      }, 1500);
    }
  });
  const result = await run;
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).toContain('another knawd-installer run on this node holds /run/knawd-installer.lock; waiting up to 30 s');
  expect(releasedAt).toBeGreaterThan(0);
  expect(fs.readFileSync(path.join(root, CONTAINERD), 'utf8')).toContain('crun-wasm');
  expect(fs.existsSync(lockDir(root))).toBe(false);
});

test('a run that cannot get the lock in time gives up with one line and changes nothing', async () => {
  const { root, args } = node();
  const held = await lockNode(lockDir(root), 1, new MemoryLogger());
  try {
    const before = snapshot(root);
    const result = await cli(args('install', '--lock-timeout-seconds', '2'));
    expect(result.code).toBe(1);
    expect(result.stderr.trimEnd().split('\n')).toEqual([
      'knawd-installer install: error: another knawd-installer run on this node still holds /run/knawd-installer.lock after 2 s; nothing was changed (fix: let it finish (see the logs of the knawd pods on this node) and run again; a lock whose holder died expires after 30 s)',
    ]);
    expect(result.ms).toBeGreaterThanOrEqual(2000);
    expect(snapshot(root)).toEqual(before);
  } finally {
    await held.release();
  }
});

test('a lock left by a run that died (not refreshed for 30 s) is taken over at once', async () => {
  const { root, args } = node();
  fs.mkdirSync(lockDir(root));
  const longAgo = new Date(Date.now() - 60_000);
  fs.utimesSync(lockDir(root), longAgo, longAgo);
  const result = await cli(args('install', '--lock-timeout-seconds', '2'));
  expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
  expect(result.stdout).not.toContain('waiting up to');
  expect(fs.existsSync(lockDir(root))).toBe(false);
});

test('a failed run releases the lock; remove takes it too', async () => {
  const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
  const common = ['--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--restart', 'none'];
  const failed = await cli(['install', ...common, '--artifacts', makeArtifacts('ubuntu_22_04', { corrupt: 'crun-wasmtime' })]);
  expect(failed.code).toBe(1);
  expect(fs.existsSync(lockDir(root))).toBe(false);

  const held = await lockNode(lockDir(root), 1, new MemoryLogger());
  try {
    const removing = await cli(['remove', ...common, '--artifacts', makeArtifacts('ubuntu_22_04'), '--lock-timeout-seconds', '1']);
    expect(removing.code).toBe(1);
    expect(removing.stderr).toContain('knawd-installer remove: error: another knawd-installer run on this node still holds /run/knawd-installer.lock after 1 s');
  } finally {
    await held.release();
  }
});

test('a holder whose lock was taken over learns it when it releases', async () => {
  const root = makeRoot();
  const held = await lockNode(lockDir(root), 1, new MemoryLogger(), 2000);
  // What a second run does to a lock it finds stale: the holder's next refresh sees a different mtime.
  const longAgo = new Date(Date.now() - 60_000);
  fs.utimesSync(lockDir(root), longAgo, longAgo);
  // proper-lockfile refreshes (and so notices) at most once a second; 3 s leaves room for a loaded machine.
  await new Promise((r) => setTimeout(r, 3000));
  await expect(held.release()).rejects.toThrow(/^the node lock \/run\/knawd-installer\.lock was taken over during this run/);
});

test('a node root without run/ is refused before anything is done', async () => {
  const { root, args } = node();
  fs.rmdirSync(path.join(root, 'run'));
  const before = snapshot(root);
  const result = await cli(args('install'));
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`node root ${root} has no run/ directory: it is not a host's root file system`);
  expect(snapshot(root)).toEqual(before);
});
