/**
 * The installer's post-restart check against real runtimes: its CRI Status client (lib/installer/runtime/
 * cri-status.ts) asks a real containerd — Debian's 1.6 and the 2.2 build, each with its own root, state and
 * socket — which handlers it serves, for a config holding our handler, for one without it, and for the
 * AKS-style file whose 1.x-named block containerd 2.x ignores (what the check must catch, so that install
 * rolls back instead of labelling the node), and for our drop-in in a directory the config imports. Needs root;
 * a runtime that does not start fails the test.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryLogger } from '../../lib/installer/log';
import { findTarget } from '../../lib/catalog';
import { listPodSandboxes, readCriStatus, servedHandlers } from '../../lib/installer/runtime/cri-status';
import { checkRuntimeServes } from '../../lib/installer/runtime/verify';
import { addContainerdRuntime, findDropInLocation, renderContainerdDropIn } from '../../lib/toml';
import { containerdBinary, ContainerdMajor } from '../support/containerd-binaries';
import { fixture } from '../installer/support';

jest.setTimeout(120_000);

const HANDLER = 'crun-wasm';
const SPEC = { handler: HANDLER, binaryPath: '/opt/knawd/bin/crun-wasmtime' };

/** A containerd of this test's own: everything under `base`, the CRI plugin on, nothing of the host's read. */
function ownConfig(major: ContainerdMajor, base: string): string {
  const cri = major === 1 ? 'io.containerd.grpc.v1.cri' : 'io.containerd.cri.v1.runtime';
  return [
    `version = ${major === 1 ? 2 : 3}`,
    `root = ${JSON.stringify(join(base, 'root'))}`,
    `state = ${JSON.stringify(join(base, 'state'))}`,
    '[grpc]',
    `  address = ${JSON.stringify(join(base, 'containerd.sock'))}`,
    '[ttrpc]',
    `  address = ${JSON.stringify(join(base, 'containerd.sock.ttrpc'))}`,
    `[plugins."${cri}"]`,
    '  disable_apparmor = true',
    '  restrict_oom_score_adj = true',
    `[plugins."${cri}".cni]`,
    `  conf_dir = ${JSON.stringify(join(base, 'cni', 'net.d'))}`,
    `  ${major === 1 ? 'bin_dir' : 'bin_dirs'} = ${major === 1 ? JSON.stringify(join(base, 'cni', 'bin')) : JSON.stringify([join(base, 'cni', 'bin')])}`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${JSON.stringify(join(base, 'opt'))}`,
    '',
  ].join('\n');
}

class Daemon {
  private child?: ChildProcess;
  readonly socket: string;
  constructor(
    readonly major: ContainerdMajor,
    readonly base: string,
  ) {
    this.socket = join(base, 'containerd.sock');
  }

  async start(config: string): Promise<void> {
    const file = join(this.base, 'config.toml');
    writeFileSync(file, config);
    const log = join(this.base, 'containerd.log');
    this.child = spawn(containerdBinary(this.major), ['--config', file], { stdio: ['ignore', 'ignore', 'pipe'] });
    let output = '';
    this.child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await readCriStatus(this.socket, 2000);
        return;
      } catch (error) {
        if (this.child.exitCode !== null || Date.now() > deadline) {
          writeFileSync(log, output);
          throw new Error(`containerd ${this.major}.x did not answer CRI Status (${String(error)}); its log:\n${output.split('\n').slice(-20).join('\n')}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

const daemons: Daemon[] = [];
const bases: string[] = [];

function daemon(major: ContainerdMajor): Daemon {
  if (process.getuid?.() !== 0) throw new Error('this test starts containerd and needs root');
  const base = mkdtempSync(join(tmpdir(), 'knawd-cri-'));
  bases.push(base);
  const d = new Daemon(major, base);
  daemons.push(d);
  return d;
}

afterAll(async () => {
  for (const d of daemons) await d.stop();
  for (const b of bases) rmSync(b, { recursive: true, force: true });
});

describe.each([1, 2] as const)('CRI Status of a real containerd %d.x', (major) => {
  it('lists our handler when the config defines it, and not once it is taken out again', async () => {
    const d = daemon(major);
    const base = ownConfig(major, d.base);
    await d.start(addContainerdRuntime(base, { ...SPEC, containerdMajor: major }).text);
    const status = await readCriStatus(d.socket, 5000);
    expect(status.conditions.find((c) => c.type === 'RuntimeReady')?.status).toBe(true);
    expect(servedHandlers(status)).toEqual(expect.arrayContaining([HANDLER, 'runc']));
    await d.stop();

    await d.start(base);
    expect(servedHandlers(await readCriStatus(d.socket, 5000))).not.toContain(HANDLER);
    // ListPodSandbox, which the take-over of the original knawd-deployer asks: a fresh runtime runs none (the
    // e2e WASM test sees its pod in the list, with the handler).
    expect(await listPodSandboxes(d.socket, 5000)).toEqual([]);
    await d.stop();
  });
});

describe('a real containerd 2.2 serves the handler from our drop-in where its config imports the directory', () => {
  it('served (CRI Status) with the drop-in in place; gone once the drop-in is deleted', async () => {
    const d = daemon(2);
    const dir = join(d.base, 'conf.d');
    const config = ownConfig(2, d.base).replace(/^version = 3\n/, `version = 3\nimports = [${JSON.stringify(`${dir}/*.toml`)}]\n`);
    const configPath = join(d.base, 'config.toml');
    const { location } = findDropInLocation(config, configPath, HANDLER);
    expect(location?.path).toBe(join(dir, '50-knawd-crun-wasm.toml'));
    mkdirSync(dir);
    writeFileSync(location!.path, renderContainerdDropIn({ ...SPEC, config: { path: configPath, text: config }, dropIns: [] }));
    await d.start(config);
    expect(servedHandlers(await readCriStatus(d.socket, 5000))).toEqual(expect.arrayContaining([HANDLER, 'runc']));
    await d.stop();

    rmSync(location!.path);
    await d.start(config);
    expect(servedHandlers(await readCriStatus(d.socket, 5000))).not.toContain(HANDLER);
    await d.stop();
  });
});

describe('what the post-restart check catches', () => {
  it("containerd 2.x ignores a 1.x-named block in a version 2 file with 2.x names: the check fails, install would roll back", async () => {
    const d = daemon(2);
    const aks = fixture('containerd2-version2-2x-names.toml').replace(/^version = 2$/m, ownConfig(2, d.base).split('\n').slice(1, 7).join('\n').replace(/^/, 'version = 2\n'));
    const ignored = `${aks}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${HANDLER}]\n  runtime_type = "io.containerd.runc.v2"\n`;
    await d.start(ignored);
    const log = new MemoryLogger();
    await expect(
      checkRuntimeServes({ target: findTarget('containerd'), handler: HANDLER, socket: d.socket, readStatus: readCriStatus, timeoutMs: 2000, log, expect: 'served' }),
    ).rejects.toThrow(/^containerd came back without handler crun-wasm \(it serves runc\): it ignored the config that was written$/);
    await d.stop();

    // Where the installer writes it in that file, containerd 2.x serves it.
    await d.start(addContainerdRuntime(aks, { ...SPEC, containerdMajor: 2 }).text);
    await checkRuntimeServes({ target: findTarget('containerd'), handler: HANDLER, socket: d.socket, readStatus: readCriStatus, timeoutMs: 5000, log, expect: 'served' });
    expect(log.records.map((r) => r.msg)).toContain('containerd serves handler crun-wasm');
    await d.stop();
    void readFileSync;
  });
});
