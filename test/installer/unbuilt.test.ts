/**
 * Nodes this image has no build for (issue 29 item 4): a node of an architecture without a crun build (s390x,
 * ppc64le: the index's refusing image), and an image without the requested ociType's build (each per-engine
 * image carries one). install and plan refuse with one line and a non-zero exit, with the node root byte-identical
 * and no host command run; status says why; remove succeeds and removes nothing that is not ours. Through the
 * CLI's own entry (`run`), on temp node roots; the node's architecture is given as the effects carry it (the
 * process's own, mapped to its OCI name). The label and Event on a real API server: test/image/unbuilt.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { BUILT_ARCHITECTURES, UNBUILT_ARCHITECTURES } from '../../lib/catalog';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { ociArchitecture } from '../../lib/installer/installer-image';
import { run } from '../../lib/installer/run';
import { version } from '../../package.json';
import { fixture, handlersOnNodeRoot, makeArtifacts, makeRoot, snapshot } from './support';

const TARGET = 'ubuntu_22_04';
const CONTAINERD = '/etc/containerd/config.toml';
/** What is on the node and not ours: the runtime's config, a neighbour under /opt, a file in /run. */
const HOST = { [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml'), '/opt/other/keep': 'not ours\n', '/run/containerd/marker': 'x' };

interface Outcome {
  readonly code: number;
  readonly stdout: string[];
  readonly stderr: string[];
  readonly runner: RecordingRunner;
  readonly probes: string[];
}

async function installer(args: string[], architecture: string): Promise<Outcome> {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const runner = new RecordingRunner();
  const probes: string[] = [];
  const code = await run(args, {}, { stdout: (l) => stdout.push(l), stderr: (l) => stderr.push(l) }, {
    architecture,
    cluster: undefined,
    runner,
    probeSocket: async (p) => {
      probes.push(p);
      return true;
    },
    waitForSocket: async () => true,
    readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: [] }),
  });
  // plan's log lines go to stderr (its stdout is the diff): the human lines are the others.
  return { code, stdout, stderr: stderr.filter((l) => !l.startsWith('{')), runner, probes };
}

/** The artifacts of a per-engine image: the builds of `runtimes` only (none: the unbuilt image's /vendor). */
function engineArtifacts(runtimes: readonly string[]): string {
  return makeArtifacts(TARGET, { runtimes });
}

function unbuiltArtifacts(): string {
  return engineArtifacts([]);
}

const archRefusal = (arch: string): string => `no crun build for linux/${arch}; knawd-deployer is built for linux/amd64, linux/arm64; nothing was changed`;

describe('the architectures', () => {
  it('are the built amd64 and arm64, and the refusing s390x and ppc64le', () => {
    expect([...BUILT_ARCHITECTURES]).toEqual(['amd64', 'arm64']);
    expect([...UNBUILT_ARCHITECTURES]).toEqual(['s390x', 'ppc64le']);
  });

  it("are named as OCI names them, from Node.js's process.arch", () => {
    expect(['x64', 'arm64', 's390x', 'ppc64', 'riscv64'].map((a) => ociArchitecture(a))).toEqual(['amd64', 'arm64', 's390x', 'ppc64le', 'riscv64']);
    expect(ociArchitecture()).toBe(process.arch === 'x64' ? 'amd64' : process.arch);
  });
});

describe.each([...UNBUILT_ARCHITECTURES, 'riscv64'])('a linux/%s node', (arch) => {
  for (const [image, artifacts] of [
    ['the unbuilt image', unbuiltArtifacts],
    ['an image with every build', () => makeArtifacts(TARGET)],
  ] as const) {
    it(`install with ${image}: one line, exit 1, the node root byte-identical, no host command run`, async () => {
      const root = makeRoot(HOST);
      const before = snapshot(root);
      const r = await installer(['install', '--target', 'auto', '--runtime', 'crun-wasmtime', '--node-root', root, '--artifacts', artifacts(), '--node-name', 'n1'], arch);
      expect(r.code).toBe(1);
      expect(r.stderr).toHaveLength(1);
      expect(r.stderr[0]).toMatch(new RegExp(`^knawd-installer install: error: ${escape(archRefusal(arch))} \\(fix: .*\\)$`));
      const error = r.stdout.map((l) => JSON.parse(l) as { level: string; msg: string }).filter((l) => l.level === 'error');
      expect(error.map((l) => l.msg)).toEqual([archRefusal(arch)]);
      expect(snapshot(root)).toEqual(before);
      expect(r.runner.calls).toEqual([]);
      expect(r.probes).toEqual([]);
    });
  }

  it('plan refuses the same way and status says why', async () => {
    const root = makeRoot(HOST);
    const before = snapshot(root);
    const plan = await installer(['plan', '--runtime', 'crun-wasmedge', '--node-root', root, '--artifacts', unbuiltArtifacts()], arch);
    expect(plan.code).toBe(1);
    expect(plan.stderr).toEqual([expect.stringContaining(`knawd-installer plan: error: ${archRefusal(arch)} (fix: `)]);
    const status = await installer(['status', '--node-root', root, '--artifacts', unbuiltArtifacts()], arch);
    expect(status.code).toBe(1);
    expect(status.stdout).toHaveLength(1);
    expect(JSON.parse(status.stdout[0])).toMatchObject({ msg: `status: not-installed (${archRefusal(arch)})`, state: 'not-installed', refused: archRefusal(arch) });
    expect(snapshot(root)).toEqual(before);
    expect([...plan.runner.calls, ...status.runner.calls]).toEqual([]);
  });

  it('remove succeeds and removes nothing that is not ours', async () => {
    const root = makeRoot(HOST);
    const before = snapshot(root);
    const r = await installer(['remove', '--node-root', root, '--artifacts', unbuiltArtifacts(), '--node-name', 'n1'], arch);
    expect(r.stderr).toEqual([]);
    expect(r.code).toBe(0);
    expect(r.stdout.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(
      expect.arrayContaining([`no crun build for linux/${arch}; knawd-deployer is built for linux/amd64, linux/arm64: remove takes this node's label off`, 'nothing installed: nothing to do']),
    );
    expect(snapshot(root)).toEqual(before);
  });
});

describe('a per-engine image', () => {
  it.each([
    [['crun-wasmedge'], 'carries crun-wasmedge only'],
    [[], 'carries no crun build'],
    [['crun-wasmedge', 'crun-wasm-nodejs'], 'carries crun-wasm-nodejs, crun-wasmedge only'],
  ])('without the ociType\'s build (%j) is refused naming the image that has it', async (keep, carries) => {
    const root = makeRoot(HOST);
    const before = snapshot(root);
    const artifacts = engineArtifacts(keep);
    for (const command of ['install', 'plan']) {
      const r = await installer([command, '--target', TARGET, '--runtime', 'crun-wasmtime', '--node-root', root, '--artifacts', artifacts, '--node-name', 'n1'], 'amd64');
      expect(r.code).toBe(1);
      expect(r.stderr).toEqual([
        `knawd-installer ${command}: error: this image (${artifacts}/artifacts.json) ${carries}; ociType crun-wasmtime needs image quay.io/knawd/deployer:v${version}-crun-wasmtime; nothing was changed` +
          ` (fix: run the installer from quay.io/knawd/deployer:v${version}-crun-wasmtime (the chart picks it by ociType; an image.reference override must name that ociType's image))`,
      ]);
      expect(r.runner.calls).toEqual([]);
    }
    const status = await installer(['status', '--runtime', 'crun-wasmtime', '--node-root', root, '--artifacts', artifacts], 'arm64');
    expect(JSON.parse(status.stdout[0])).toMatchObject({ state: 'not-installed', refused: expect.stringContaining(`${carries}; ociType crun-wasmtime needs image`) });
    expect(snapshot(root)).toEqual(before);
  });

  it('installs its own ociType, and remove takes it back byte-identically', async () => {
    const root = makeRoot(HOST);
    const before = snapshot(root);
    const artifacts = engineArtifacts(['crun-wasmtime']);
    const args = ['--target', TARGET, '--node-root', root, '--artifacts', artifacts];
    const stdout: string[] = [];
    const handlers = { readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) };
    const io = { stdout: (l: string) => stdout.push(l), stderr: (l: string) => stdout.push(l) };
    const effects = { architecture: 'arm64', cluster: undefined, runner: new RecordingRunner(), probeSocket: async () => true, waitForSocket: async () => true, ...handlers };
    expect(await run(['install', '--runtime', 'crun-wasmtime', ...args], {}, io, effects)).toBe(0);
    expect(fs.existsSync(path.join(root, 'opt/knawd/libexec/crun-wasmtime/crun'))).toBe(true);
    expect(await run(['remove', ...args], {}, io, effects)).toBe(0);
    expect(snapshot(root)).toEqual(before);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
