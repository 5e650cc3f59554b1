/**
 * The refusing images of the architectures without a crun build (issue 29 item 4: build-image.sh
 * step_unbuilt_images, recorded in build/image/unbuilt.json), each proven on its own binaries on this x86_64
 * machine with Debian trixie's static qemu-user, invoked directly, except for the pod's own command line (the agent
 * execs Node.js), for which the emulator is registered with binfmt_misc for that test only and removed after:
 *
 * - its config says linux/<arch>; its /vendor has an artifacts.json with no builds, which SHA256SUMS checks;
 * - chrooted into its file system (the emulator copied in, the node root bind-mounted at /mnt/node-root and a
 *   kubeconfig for a real kube-apiserver, as a pod has them), its own Node.js says it runs as <arch> and runs the
 *   installer bundle against a Node object: `install` exits 1 with the one line, labels the Node failed with the
 *   reason in an Event, and leaves the node root byte-identical; `remove` exits 0 and takes the label off; the
 *   agent (`knawd-agent run -- node … install`, as the DaemonSet runs it) exits with that refusal;
 * Reproducible: `KNAWD_IMAGE_VERIFY=1` builds each again and compares (test/image/image.test.ts).
 *
 * Needs root (chroot, unshare, mount); anything missing fails with the reason.
 */
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { INSTALLER_ENTRYPOINT, NODE_STATE_LABEL, UNBUILT_ARCHITECTURES, VendorManifest } from '../../lib/catalog';
import { binfmtLeftovers, binfmtName, withBinfmt } from '../support/binfmt';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { builtImage, imageConfig, IMAGE_OUT } from '../../demo/cluster/images/built-image';
import { createNode, nodeEvents, nodeLabels } from '../support/cluster/node';
import { REPO } from '../support/tools';
import { fixture, makeRoot, snapshot } from '../installer/support';

jest.setTimeout(20 * 60_000);

interface UnbuiltImage {
  readonly name: string;
  readonly archive: string;
  readonly digest: string;
  readonly config: string;
  readonly layers: number;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
}

const REFUSAL = (arch: string): string => `no crun build for linux/${arch}; knawd-deployer is built for linux/amd64, linux/arm64; nothing was changed`;
/** Node.js names ppc64le ppc64 (it runs on little-endian only). */
const NODE_ARCH: Record<string, string> = { s390x: 's390x', ppc64le: 'ppc64' };
const ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

let record: Record<string, UnbuiltImage>;
let cluster: Cluster;
let base = '';

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = ENV) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 10 * 60_000, env, cwd: REPO });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

function recorded(): Record<string, UnbuiltImage> {
  return JSON.parse(readFileSync(join(IMAGE_OUT, 'unbuilt.json'), 'utf8')) as Record<string, UnbuiltImage>;
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the unbuilt images tests need root (chroot, unshare, mount)');
  builtImage();
  if (!existsSync(join(IMAGE_OUT, 'unbuilt.json'))) throw new Error(`npm run image wrote no ${join(IMAGE_OUT, 'unbuilt.json')} (step_unbuilt_images)`);
  record = recorded();
  base = mkdtempSync(join(tmpdir(), 'knawd-unbuilt-'));
  cluster = await startCluster();
}, 60 * 60_000);

afterAll(async () => {
  await cluster?.stop();
  if (base) rmSync(base, { recursive: true, force: true });
});

it('records an image for every unbuilt architecture', () => {
  expect(Object.keys(record).sort()).toEqual([...UNBUILT_ARCHITECTURES].sort());
});

describe.each([...UNBUILT_ARCHITECTURES])('linux/%s', (arch) => {
  let image: UnbuiltImage;
  let archive: string;
  let rootfs: string;
  const kubeconfig = '/kubeconfig';

  /** The installer bundle under the image's Node.js, in the image's file system, as the pod runs it. */
  function installer(nodeRoot: string, args: readonly string[]) {
    const script = 'r="$1"; n="$2"; shift 2; mount --bind "$n" "$r/mnt/node-root" && mount -t proc proc "$r/proc" && exec chroot "$r" "$@"';
    return run('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', 'sh', '-c', script, 'sh', rootfs, nodeRoot, '/qemu', '/usr/bin/node', '/usr/local/lib/knawd-installer.js', ...args]);
  }

  /**
   * The installer container's own command line (lib/constructs/node-agent-daemonset.ts): the image's agent runs the
   * installer with the image's Node.js. The agent execs Node.js itself, so the emulator must be registered with
   * binfmt_misc (by the caller, for the call's duration only).
   */
  function agentRun(nodeRoot: string, args: readonly string[]) {
    const script = 'r="$1"; n="$2"; shift 2; mount --bind "$n" "$r/mnt/node-root" && mount -t proc proc "$r/proc" && exec chroot "$r" "$@"';
    const agent = ['/usr/local/bin/knawd-agent', 'run', '--ready-file', '/tmp/ready', '--check-every', '0', '--', ...INSTALLER_ENTRYPOINT, ...args];
    return run('unshare', ['--mount', '--propagation', 'private', '--pid', '--fork', 'sh', '-c', script, 'sh', rootfs, nodeRoot, ...agent]);
  }

  beforeAll(() => {
    image = record[arch];
    if (!image) throw new Error(`build/image/unbuilt.json has no ${arch} image`);
    archive = join(IMAGE_OUT, image.archive);
    // A copy of its one layer: the mount points and the emulator are added to it, never to a shared extraction.
    rootfs = join(base, arch);
    mkdirSync(rootfs);
    const manifest = JSON.parse(run('tar', ['-xOf', archive, `blobs/sha256/${image.digest.replace(/^sha256:/, '')}`]).stdout) as { layers: Array<{ digest: string }> };
    expect(manifest.layers).toHaveLength(1);
    const layer = `blobs/sha256/${manifest.layers[0].digest.replace(/^sha256:/, '')}`;
    const x = run('sh', ['-c', 'tar -xOf "$0" "$1" | tar -xz -C "$2" --numeric-owner --same-permissions', archive, layer, rootfs]);
    if (x.code !== 0) throw new Error(`extracting ${archive}: ${x.stderr}`);
    const qemu = join(IMAGE_OUT, arch, 'qemu');
    if (!existsSync(qemu)) throw new Error(`${qemu} is missing: npm run image links trixie's qemu-user there`);
    copyFileSync(realpathSync(qemu), join(rootfs, 'qemu'));
    run('chmod', ['0755', join(rootfs, 'qemu')]);
    mkdirSync(join(rootfs, 'mnt', 'node-root'), { recursive: true });
    mkdirSync(join(rootfs, 'proc'), { recursive: true });
    const ca = readFileSync(cluster.caFile).toString('base64');
    writeFileSync(
      join(rootfs, kubeconfig),
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [{ name: 'c', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
        users: [{ name: 'u', user: { token: cluster.token } }],
        contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }],
        'current-context': 'c',
      }),
    );
  });

  it(`is linux/${arch} by its config, with no builds in its artifacts`, () => {
    expect(imageConfig(archive)).toMatchObject({ architecture: arch, os: 'linux', config: { Entrypoint: ['node', '/usr/local/lib/knawd-installer.js'] } });
    const manifest = JSON.parse(readFileSync(join(rootfs, 'vendor', 'artifacts.json'), 'utf8')) as VendorManifest;
    expect(manifest).toMatchObject({ schema: 1, builds: {}, targets: {} });
    expect(manifest.packages).toEqual(expect.arrayContaining([expect.stringMatching(/^nodejs=/), expect.stringMatching(/^libc6=/)]));
    expect(run('sh', ['-c', 'cd "$0" && sha256sum -c SHA256SUMS', join(rootfs, 'vendor')]).stdout).toBe('artifacts.json: OK\n');
  });

  it(`its own Node.js runs as ${arch} under qemu-user`, () => {
    const r = run('chroot', [rootfs, '/qemu', '/usr/bin/node', '-e', 'console.log(process.arch, process.version)']);
    if (r.code !== 0) throw new Error(`Node.js of the ${arch} image does not run under qemu-${arch}: exit ${r.code}: ${r.stderr.slice(-2000)}`);
    expect(r.stdout).toMatch(new RegExp(`^${NODE_ARCH[arch]} v\\d+\\.\\d+\\.\\d+\\n$`));
  });

  it('install refuses with one line and labels the Node failed; the node root is byte-identical; remove takes the label off', async () => {
    const node = `unbuilt-${arch}`;
    await createNode(cluster, node, 'containerd://1.7.24', { 'kubernetes.io/arch': arch });
    const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml'), '/opt/other/keep': 'not ours\n' });
    const before = snapshot(root);
    const flags = ['--runtime', 'crun-wasmtime', '--node-name', node, '--kubeconfig', kubeconfig];

    const install = installer(root, ['install', ...flags]);
    expect(install.code).toBe(1);
    const lines = install.stderr.split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^knawd-installer install: error: ${escape(REFUSAL(arch))} \\(fix: .+\\)$`));
    expect(await nodeLabels(cluster, node)).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
    expect(await nodeEvents(cluster, node)).toEqual([['Warning', 'InstallFailed', REFUSAL(arch)]]);
    expect(snapshot(root)).toEqual(before);

    const remove = installer(root, ['remove', '--node-name', node, '--kubeconfig', kubeconfig]);
    if (remove.code !== 0) throw new Error(`remove exited ${remove.code}: ${remove.stderr}${remove.stdout.slice(-2000)}`);
    expect(await nodeLabels(cluster, node)).not.toHaveProperty(NODE_STATE_LABEL);
    expect(snapshot(root)).toEqual(before);
  });

  it("the pod's own command (knawd-agent run -- node … install) exits with the installer's refusal and the Node failed", async () => {
    const node = `unbuilt-agent-${arch}`;
    await createNode(cluster, node, 'containerd://1.7.24', { 'kubernetes.io/arch': arch });
    const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const emulator = realpathSync(join(IMAGE_OUT, arch, 'qemu'));
    const r = await withBinfmt([{ arch, interpreter: emulator }], async (registered) => {
      expect(registered()).toEqual([binfmtName(arch)]);
      return agentRun(root, ['install', '--runtime', 'crun-wasmtime', '--node-name', node, '--kubeconfig', kubeconfig]);
    });
    if (r.code === 126 || r.code === 127 || /exec format error/i.test(r.stderr)) throw new Error(`the agent did not run under binfmt_misc's qemu-${arch}: exit ${r.code}: ${r.stderr.slice(-2000)}`);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l !== '')).toEqual([expect.stringMatching(new RegExp(`^knawd-installer install: error: ${escape(REFUSAL(arch))} \\(fix: .+\\)$`))]);
    expect(r.stdout).toContain('"msg":"the installer failed (exit 1); exiting with its status so that the container is restarted"');
    expect(await nodeLabels(cluster, node)).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
    expect(await nodeEvents(cluster, node)).toEqual([['Warning', 'InstallFailed', REFUSAL(arch)]]);
    expect(snapshot(root)).toEqual(before);
  });
});

it('never leaves an emulator registered with binfmt_misc', () => {
  expect(binfmtLeftovers()).toEqual([]);
});


function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
