/**
 * SIGTERM while the installer restarts a real containerd, as a DaemonSet rollout or `helm upgrade` sends it,
 * with the installer image's own bundle: the installer finishes the step (the restart, the CRI Status check
 * that containerd serves — or no longer serves — the handler, the state record) and exits; the time from the
 * signal to the exit is the worst case the pods' terminationGracePeriodSeconds must cover. The restart is made
 * deliberately slow (as on a loaded node) to measure the case where the signal lands right at its start.
 *
 * What is not real: systemd (PID 1 is not systemd here). The node root's `systemctl` (busybox sh, run through
 * `--host-exec chroot`) asks the test over a FIFO, and the test restarts its containerd — every call recorded
 * and asserted. containerd is Debian's 1.6 with its own root, state and socket (the node root's
 * /run/containerd/containerd.sock, where the installer looks), reading the node root's config.toml.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HANDLER, INSTALLER_GRACE_SECONDS, INSTALLER_TERMINATION_GRACE_SECONDS } from '../../lib/catalog';
import { readCriStatus } from '../../lib/installer/runtime/cri-status';
import { installHostBinary } from '../support/chroot-runner';
import { builtImage } from '../../demo/cluster/images/built-image';
import { ContainerdDaemon, daemonPaths, requireContainerdBinaries, testConfig } from './support/containerd-daemon';
import { must, requireExecutable, sleep } from '../../demo/cluster/process';

jest.setTimeout(10 * 60_000);

/** How long the fake systemd takes before it restarts containerd: a slow node. */
const SLOW_RESTART_MS = 3000;

interface Ctx {
  base: string;
  nodeRoot: string;
  configFile: string;
  configBefore: Buffer;
  daemon: ContainerdDaemon;
  socket: string;
  installer: string;
  vendor: string;
  systemd: FakeSystemd;
}

/**
 * The node's systemd as far as the installer reaches it: `systemctl <args>` in the node root writes its
 * arguments to a FIFO and waits for an exit code on another; `restart containerd` restarts the test's daemon.
 */
class FakeSystemd {
  readonly calls: string[] = [];
  private stopped = false;
  private readonly loop: Promise<void>;
  onRestart: () => void = () => undefined;

  constructor(
    private readonly requests: string,
    private readonly answers: string,
    private readonly daemon: ContainerdDaemon,
  ) {
    this.loop = this.serve();
  }

  private async serve(): Promise<void> {
    while (!this.stopped) {
      const call = (await fsp.readFile(this.requests, 'utf8')).trim();
      if (this.stopped || call === '') continue;
      this.calls.push(call);
      let code = 0;
      if (call === 'restart containerd') {
        this.onRestart();
        await sleep(SLOW_RESTART_MS);
        await this.daemon.stop();
        await this.daemon.start();
      } else code = 1;
      await fsp.writeFile(this.answers, `${code}\n`);
    }
  }

  async close(): Promise<void> {
    this.stopped = true;
    // A writer that opens and closes the FIFO ends the pending read.
    await fsp.writeFile(this.requests, '');
    await this.loop;
  }
}

let ctx: Ctx | undefined;
const worst: Array<{ what: string; ms: number }> = [];

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the SIGTERM end-to-end test needs root (it starts containerd and chroots); run it as root');
  requireContainerdBinaries();
  requireExecutable('/bin/busybox', "Debian's busybox-static package; `npm run tools` installs it");
  const image = builtImage();
  const base = mkdtempSync(join(tmpdir(), 'knawd-e2e-sigterm-'));
  const nodeRoot = join(base, 'node');
  for (const dir of ['etc/containerd', 'run/containerd', 'opt', 'usr/bin']) mkdirSync(join(nodeRoot, dir), { recursive: true });
  const socket = join(nodeRoot, 'run/containerd/containerd.sock');
  const paths = { ...daemonPaths(join(base, 'containerd')), socket };
  mkdirSync(paths.base);
  const configFile = join(nodeRoot, 'etc/containerd/config.toml');
  const configBefore = Buffer.from(testConfig(paths, { sandboxImage: 'knawd.test/e2e/pause:1', snapshotter: 'native' }), 'utf8');
  writeFileSync(configFile, configBefore);
  const daemon = new ContainerdDaemon(paths, configFile);
  await daemon.start();

  installHostBinary(nodeRoot, '/bin/busybox', '/bin/busybox');
  const requests = join(nodeRoot, 'run/knawd-test-systemctl.req');
  const answers = join(nodeRoot, 'run/knawd-test-systemctl.ack');
  must('mkfifo', [requests, answers]);
  writeFileSync(
    join(nodeRoot, 'usr/bin/systemctl'),
    '#!/bin/busybox sh\n# The test\'s systemd: hands the call to the test and exits with its answer.\necho "$*" > /run/knawd-test-systemctl.req\nread code < /run/knawd-test-systemctl.ack\nexit "$code"\n',
    { mode: 0o755 },
  );
  ctx = {
    base,
    nodeRoot,
    configFile,
    configBefore,
    daemon,
    socket,
    // The test installs crun-wasmtime: its image's installer and /vendor.
    installer: join(image.installers['crun-wasmtime'].rootfs, 'usr/local/lib/knawd-installer.js'),
    vendor: image.installers['crun-wasmtime'].vendor,
    systemd: new FakeSystemd(requests, answers, daemon),
  };
}, 60 * 60_000);

afterAll(async () => {
  const c = ctx;
  if (!c) return;
  await c.systemd.close();
  const problems = await c.daemon.cleanup();
  rmSync(c.base, { recursive: true, force: true });
  if (worst.length > 0) process.stdout.write(`SIGTERM to exit, real containerd restart (${SLOW_RESTART_MS} ms slow): ${worst.map((w) => `${w.what} ${w.ms} ms`).join(', ')}\n`);
  if (problems.length > 0) throw new Error(`clean-up left: ${problems.join('; ')}`);
});

function need(): Ctx {
  if (!ctx) throw new Error('set-up failed');
  return ctx;
}

/** Runs the image's installer; sends SIGTERM the moment the fake systemd is asked to restart containerd. */
async function terminatedDuringRestart(c: Ctx, args: string[]): Promise<{ code: number | null; stderr: string; stdout: string; afterSignalMs: number }> {
  const child = spawn(process.execPath, [c.installer, ...args], { cwd: c.base, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  let stdout = '';
  let stderr = '';
  let sentAt = 0;
  c.systemd.onRestart = () => {
    sentAt = Date.now();
    child.kill('SIGTERM');
  };
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (x) => resolve(x)));
  c.systemd.onRestart = () => undefined;
  return { code, stdout, stderr, afterSignalMs: sentAt ? Date.now() - sentAt : -1 };
}

const common = (c: Ctx): string[] => ['--node-root', c.nodeRoot, '--target', 'containerd', '--host-exec', 'chroot', '--patch-knative', 'false'];

describe('SIGTERM while the installer restarts a real containerd', () => {
  test('install: the restart and its verification are finished, the install recorded; within the grace', async () => {
    const c = need();
    const r = await terminatedDuringRestart(c, ['install', ...common(c), '--runtime', 'crun-wasmtime', '--artifacts', c.vendor]);
    if (r.code !== 0) throw new Error(`install exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    expect(r.afterSignalMs).toBeGreaterThanOrEqual(SLOW_RESTART_MS);
    worst.push({ what: 'install', ms: r.afterSignalMs });
    expect(r.afterSignalMs).toBeLessThan(INSTALLER_GRACE_SECONDS * 1000);
    expect(r.stdout).toMatch(/"msg":"containerd serves handler crun-wasm"/);
    expect(c.systemd.calls).toEqual(['restart containerd']);
    expect((await readCriStatus(c.socket, 10_000)).info.config).toContain(DEFAULT_HANDLER);
    const state = JSON.parse(readFileSync(join(c.nodeRoot, 'opt/knawd/state.json'), 'utf8')) as { phase: string; restartPending: boolean };
    expect(state).toMatchObject({ phase: 'installed', restartPending: false });
  });

  test('remove: the revert, restart and check are finished, the host restored; within the grace', async () => {
    const c = need();
    const r = await terminatedDuringRestart(c, ['remove', ...common(c)]);
    if (r.code !== 0) throw new Error(`remove exited ${r.code}: ${r.stderr}\n${r.stdout}`);
    worst.push({ what: 'remove', ms: r.afterSignalMs });
    expect(r.afterSignalMs).toBeGreaterThanOrEqual(SLOW_RESTART_MS);
    expect(r.afterSignalMs).toBeLessThan(INSTALLER_GRACE_SECONDS * 1000);
    expect(c.systemd.calls).toEqual(['restart containerd', 'restart containerd']);
    expect(readFileSync(c.configFile).equals(c.configBefore)).toBe(true);
    expect(existsSync(join(c.nodeRoot, 'opt/knawd'))).toBe(false);
    expect((await readCriStatus(c.socket, 10_000)).info.config).not.toContain(DEFAULT_HANDLER);
  });

  test("the pods' grace period covers the installer's own bound and the worst case measured", () => {
    expect(worst).toHaveLength(2);
    expect(Math.max(...worst.map((w) => w.ms))).toBeLessThan(INSTALLER_GRACE_SECONDS * 1000);
    expect(INSTALLER_TERMINATION_GRACE_SECONDS).toBeGreaterThan(INSTALLER_GRACE_SECONDS);
  });
});
