/**
 * The take-over of nodes the original knawd-deployer (1.x) configured. The node is made by the original itself:
 * its manager (built from ../shared/original by `npm run tools`) runs under chroot in a stand-in of its image
 * (/app/manager, /vendor/<target>/ with stand-in cruns and engine libraries, the node's root at /mnt/node-root,
 * as its DaemonSet mounted it), with the env its chart set. Then our installer runs on that node root, its
 * pre-flight done by the node's own containerd (Debian's 1.6) under chroot, and the result is read by the real
 * loaders: containerd 1.6's `config dump`, CRI-O 1.36's `crio config`. The pods the runtime runs come from a
 * recorded stand-in for CRI ListPodSandbox (the real runtime answers on the single-node cluster).
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as TOML from '@iarna/toml';
import { planCommand } from '../../lib/installer/commands/plan';
import { install, remove } from '../../lib/installer/installer';
import { CriSandbox } from '../../lib/installer/runtime/cri-status';
import { ChrootRunner, installHostBinary } from '../support/chroot-runner';
import { containerdBinary, containerdConfigDump } from '../support/containerd-binaries';
import { REPO, toolPath } from '../support/tools';
import { effectsFor, fixture, makeArtifacts, RESTART, settingsFor, tempDir } from './support';

jest.setTimeout(120_000);

interface Variant {
  readonly name: string;
  /** The original chart's env for its target. */
  readonly env: Record<string, string>;
  /** Our target for the same node. */
  readonly target: string;
  readonly runtime: 'crun-wasmedge' | 'crun-wasmtime';
  readonly config: string;
  readonly fixture: string;
  readonly library: string;
  readonly unit: string;
}

const VARIANTS: readonly Variant[] = [
  {
    name: 'containerd (ubuntu_20_04, config.toml version 2)',
    env: { VENDOR: 'ubuntu_20_04', LIB_LOCATION: '/lib', CONFIG_LOCATION: '/etc/containerd', IS_MICROK8S: 'false', OCI_TYPE: 'crun-wasmtime' },
    target: 'ubuntu_20_04',
    runtime: 'crun-wasmtime',
    config: '/etc/containerd/config.toml',
    fixture: 'containerd-1.6-default.toml',
    library: '/lib/libwasmtime.so',
    unit: 'containerd',
  },
  {
    name: 'microk8s (its containerd template)',
    env: { VENDOR: 'ubuntu_20_04', LIB_LOCATION: '/lib', CONFIG_LOCATION: '/var/snap/microk8s/current/args', IS_MICROK8S: 'true', OCI_TYPE: 'crun-wasmedge' },
    target: 'microk8s',
    runtime: 'crun-wasmedge',
    config: '/var/snap/microk8s/current/args/containerd-template.toml',
    fixture: 'microk8s-containerd-template.toml',
    library: '/lib/libwasmedge.so.0',
    unit: 'snap.microk8s.daemon-containerd',
  },
  {
    name: 'CRI-O (rhel8, crio.conf)',
    env: { VENDOR: 'rhel8', LIB_LOCATION: '/usr/lib64', CONFIG_LOCATION: '/etc/crio', IS_MICROK8S: 'false', OCI_TYPE: 'crun-wasmedge' },
    target: 'rhel8',
    runtime: 'crun-wasmedge',
    config: '/etc/crio/crio.conf',
    fixture: 'crio.conf',
    library: '/usr/lib64/libwasmedge.so.0',
    unit: 'crio',
  },
];

const CRUN = '/usr/local/sbin/crun';
const OLD_POD: CriSandbox = { namespace: 'default', name: 'old-wasm', runtimeHandler: 'crun', ready: true };

/** What the original image carried for each target: stand-ins (the image is not reachable), each crun naming its engine. */
function standInImage(vendor: string): string {
  const imageRoot = tempDir('knawd-original-image-');
  installHostBinary(imageRoot, '/app/manager', toolPath('original-manager'));
  const vendorDir = path.join(imageRoot, 'vendor', vendor);
  fs.mkdirSync(vendorDir, { recursive: true });
  fs.writeFileSync(path.join(vendorDir, 'crun-wasmtime'), "stand-in for the original image's crun 1.8 built --with-wasmtime: NEEDED libwasmtime.so\n", { mode: 0o755 });
  fs.writeFileSync(path.join(vendorDir, 'crun-wasmedge'), "stand-in for the original image's crun 1.8 built --with-wasmedge: NEEDED libwasmedge.so.0\n", { mode: 0o755 });
  fs.writeFileSync(path.join(vendorDir, 'libwasmtime.so'), 'stand-in wasmtime 5.0.0 C API\n');
  fs.writeFileSync(path.join(vendorDir, 'libwasmedge.so.0'), 'stand-in WasmEdge 0.11.2\n');
  fs.mkdirSync(path.join(imageRoot, 'mnt', 'node-root'), { recursive: true });
  return imageRoot;
}

function otherLibrary(v: Variant): string {
  return `${v.target === 'rhel8' ? '/lib' : '/usr/lib64'}/${path.basename(v.library)}`;
}

/** A node as before the original: the runtime's config, its binary for our pre-flight, the directories the original writes to. */
function freshNode(v: Variant): { imageRoot: string; root: string } {
  const imageRoot = standInImage(v.env.VENDOR);
  const root = path.join(imageRoot, 'mnt', 'node-root');
  for (const dir of ['etc', 'opt', 'run', 'usr/local/sbin', v.env.LIB_LOCATION.slice(1), path.dirname(v.config).slice(1)]) fs.mkdirSync(path.join(root, dir), { recursive: true });
  fs.writeFileSync(path.join(root, v.config), fixture(v.fixture));
  // The same library where the original did not put it for this target (a package's): never the original's.
  fs.mkdirSync(path.dirname(path.join(root, otherLibrary(v))), { recursive: true });
  fs.writeFileSync(path.join(root, otherLibrary(v)), 'a packaged engine library\n');
  if (v.target === 'microk8s') installHostBinary(root, '/snap/microk8s/current/bin/containerd', containerdBinary(1));
  else if (v.target !== 'rhel8') installHostBinary(root, '/usr/bin/containerd', containerdBinary(1));
  return { imageRoot, root };
}

/** The original's manager, as its DaemonSet ran it (no restart: no systemd here; no Knative patch; no loop). */
function runOriginal(imageRoot: string, v: Variant): void {
  execFileSync('/usr/sbin/chroot', [imageRoot, '/app/manager'], {
    env: { ...v.env, NODE_ROOT: '/mnt/node-root', OCI_LOCATION: '/usr/local/sbin', LOG_LEVEL: 'info', AUTO_RESTART: 'false', LOOP: 'false', PATCH_KNATIVE: 'false', RUST_LOG: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
}

function read(root: string, hostPath: string): string {
  return fs.readFileSync(path.join(root, hostPath), 'utf8');
}

function exists(root: string, hostPath: string): boolean {
  return fs.existsSync(path.join(root, hostPath));
}

async function runInstall(root: string, v: Variant, pods: CriSandbox[]) {
  const listed: string[] = [];
  const runner = new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined));
  const effects = {
    ...effectsFor(root),
    runner,
    listPodSandboxes: async (socket: string) => {
      listed.push(socket);
      return pods;
    },
  };
  const settings = settingsFor(['install', '--target', v.target, '--runtime', v.runtime, '--node-root', root, '--artifacts', makeArtifacts(v.target)]);
  await install(settings, effects);
  const restarts = runner.calls.filter((c) => c.join(' ') === RESTART(v.unit).join(' ')).length;
  return { effects, restarts, listed, messages: effects.log.records.map((r) => `${r.level}: ${r.msg}`) };
}

async function runRemove(root: string, v: Variant) {
  const runner = new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined));
  const effects = { ...effectsFor(root), runner };
  await remove(settingsFor(['remove', '--target', v.target, '--runtime', v.runtime, '--node-root', root]), effects);
  return effects.log.records.map((r) => `${r.level}: ${r.msg}`);
}

/** The runtime's own reading of a config: containerd 1.6's dump, or CRI-O 1.36's merged view of crio.conf and the drop-ins. */
function loaded(root: string, v: Variant): any {
  if (v.target !== 'rhel8') return TOML.parse(containerdConfigDump(1, read(root, v.config)));
  const crio = path.join(REPO, '.tools', 'crio', 'v1.36.3', 'crio');
  if (!fs.existsSync(crio)) throw new Error(`${crio} is missing: run \`npm run tools\``);
  const out = execFileSync(crio, ['--config', path.join(root, v.config), '--config-dir', path.join(root, 'etc/crio/crio.conf.d'), 'config'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 });
  return TOML.parse(out);
}

function runtimesOf(dump: any, v: Variant): Record<string, any> {
  return v.target === 'rhel8' ? dump.crio.runtime.runtimes : dump.plugins['io.containerd.grpc.v1.cri'].containerd.runtimes;
}

describe.each(VARIANTS)("take-over of a node the original knawd-deployer configured: $name", (v) => {
  it("the original's manager leaves what the take-over recognises", () => {
    const { imageRoot, root } = freshNode(v);
    const pristine = read(root, v.config);
    runOriginal(imageRoot, v);
    expect(read(root, `${v.config}.bak`)).toBe(pristine);
    expect(read(root, CRUN)).toMatch(/^stand-in for the original image's crun/);
    expect(exists(root, v.library)).toBe(true);
    const runtimes = runtimesOf(loaded(root, v), v);
    expect(runtimes.crun).toMatchObject(v.target === 'rhel8' ? { runtime_path: CRUN, runtime_root: '/run/crun' } : { options: { BinaryName: CRUN } });
    // It rewrote the file whole: the comments are gone.
    expect(read(root, v.config)).not.toContain('# ');
  });

  it('pods under its handler: ours is added and served, its entry and files stay, the node waits; once they are gone, one restart takes it over; remove restores the file from before either release', async () => {
    const { imageRoot, root } = freshNode(v);
    const pristine = read(root, v.config);
    runOriginal(imageRoot, v);
    const modified = read(root, v.config);

    const first = await runInstall(root, v, [OLD_POD, { ...OLD_POD, name: 'gone', ready: false }, { namespace: 'default', name: 'plain', runtimeHandler: '', ready: true }]);
    expect(first.listed).toHaveLength(1);
    expect(first.restarts).toBe(1);
    expect(first.messages).toContain(`warn: handler crun-wasm is served; the original knawd-deployer's handler crun and its files stay while pods still run under it: default/old-wasm`);
    let runtimes = runtimesOf(loaded(root, v), v);
    expect(Object.keys(runtimes)).toEqual(expect.arrayContaining(['crun', 'crun-wasm']));
    expect(exists(root, CRUN) && exists(root, v.library) && exists(root, `${v.config}.bak`)).toBe(true);
    if (v.target !== 'rhel8') expect(read(root, v.config).startsWith(modified)).toBe(true);
    else expect(read(root, v.config)).toBe(modified);
    const waiting = JSON.parse(read(root, '/opt/knawd/state.json'));
    expect(waiting.takeover).toEqual({ handler: 'crun', configs: [], deleted: [], waitingFor: ['default/old-wasm'] });

    const second = await runInstall(root, v, []);
    expect(second.restarts).toBe(1);
    runtimes = runtimesOf(loaded(root, v), v);
    expect(runtimes['crun-wasm']).toBeDefined();
    if (v.target === 'rhel8') expect(runtimes.crun?.runtime_path).not.toBe(CRUN); // CRI-O 1.36's own default runtime is named crun
    else expect(runtimes.crun).toBeUndefined();
    expect([CRUN, v.library, `${v.config}.bak`].filter((p) => exists(root, p))).toEqual([]);
    expect(read(root, otherLibrary(v))).toBe('a packaged engine library\n');
    // Every other byte of the config stays: the file is the original's output without its entry (plus our block).
    const withoutOurs = v.target === 'rhel8' ? read(root, v.config) : read(root, v.config).replace(/\n*# BEGIN knawd-deployer managed block[\s\S]*$/, '\n');
    const entryLines = modified.split('\n').filter((l) => !withoutOurs.split('\n').includes(l));
    expect(entryLines.join('\n')).toMatch(/runtimes\.crun\]/);
    expect(entryLines.every((l) => /crun|runtime_type|privileged_without_host_devices|pod_annotations|wasm|^\]$|runtime_root|runtime_path|^$/.test(l))).toBe(true);
    // The runtime reads the same as before the original, apart from our handler.
    const final = read(root, v.config);
    const after = loaded(root, v);
    fs.writeFileSync(path.join(root, v.config), pristine);
    const before = loaded(root, v);
    fs.writeFileSync(path.join(root, v.config), final);
    for (const dump of [after, before]) {
      delete runtimesOf(dump, v)['crun-wasm'];
      delete dump.imports; // the temp file each dump was made from
    }
    expect(after).toEqual(before);
    const state = JSON.parse(read(root, '/opt/knawd/state.json'));
    expect(state.takeover.waitingFor).toBeUndefined();
    expect(state.takeover.deleted.map((d: any) => d.path).sort()).toEqual([CRUN, v.library, `${v.config}.bak`].sort());
    expect(state.takeover.notes).toBeUndefined();

    const third = await runInstall(root, v, []);
    expect(third.restarts).toBe(0);

    const messages = await runRemove(root, v);
    expect(read(root, v.config)).toBe(pristine);
    expect(exists(root, '/opt/knawd')).toBe(false);
    expect(messages).toContain(`info: not restored: ${CRUN} was the original knawd-deployer's (deleted at the take-over); what was there before it copied its own over it, without a backup, is unknown`);
  });
});

describe("what the take-over leaves alone, or cannot know", () => {
  const v = VARIANTS[0];

  it('plan shows it: which pods it waits for, else the entry out of the config and the files deleted; it changes nothing', async () => {
    const { imageRoot, root } = freshNode(v);
    runOriginal(imageRoot, v);
    const before = read(root, v.config);
    const planFor = async (pods: CriSandbox[]) => {
      const runner = new ChrootRunner(root, () => undefined);
      const effects = { ...effectsFor(root), runner, listPodSandboxes: async () => pods };
      return (await planCommand(settingsFor(['plan', '--target', v.target, '--runtime', v.runtime, '--node-root', root, '--artifacts', makeArtifacts(v.target)]), effects)).text;
    };
    expect(await planFor([OLD_POD])).toContain("note: take-over: the original knawd-deployer's handler crun and its files stay while pods run under it: default/old-wasm; the node would stay pending");
    const text = await planFor([]);
    expect(text).toContain('-[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]');
    expect(text).toContain('+# BEGIN knawd-deployer managed block: runtime crun-wasm');
    expect(text).toContain(`delete ${CRUN}`);
    expect(text).toContain(`delete ${v.library}`);
    expect(text).toContain(`note: take-over: the original knawd-deployer's handler crun is taken out of ${v.config}, its files deleted (above)`);
    expect(read(root, v.config)).toBe(before);
    expect(exists(root, '/opt/knawd')).toBe(false);
  });

  it('a second run of the original saved its own edit as the .bak: the config keeps the layout the rewrite gave it, and remove says so', async () => {
    const { imageRoot, root } = freshNode(v);
    runOriginal(imageRoot, v);
    runOriginal(imageRoot, v);
    const modified = read(root, v.config);
    expect(read(root, `${v.config}.bak`)).toBe(modified);
    await runInstall(root, v, []);
    expect(exists(root, `${v.config}.bak`)).toBe(false);
    const messages = await runRemove(root, v);
    const restored = read(root, v.config);
    expect(restored).not.toContain('runtimes.crun]');
    expect(restored).toBe(modified.replace(/\[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.crun\][\s\S]*?BinaryName = "\/usr\/local\/sbin\/crun"\n\n/, ''));
    expect(messages.some((m) => /^warn: not restored: .*config\.toml\.bak holds the original's entry/.test(m))).toBe(true);
  });

  it("a crun runtime an admin configured for another crun is not the original's: left alone with a warning, and so are the files", async () => {
    const { root } = freshNode(v);
    const admin = `${fixture(v.fixture)}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\n  runtime_type = "io.containerd.runc.v2"\n  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]\n    BinaryName = "/usr/local/sbin/crun"\n`;
    fs.writeFileSync(path.join(root, v.config), admin);
    fs.writeFileSync(path.join(root, CRUN), 'an admin crun\n');
    const run = await runInstall(root, v, [OLD_POD]);
    expect(run.listed).toEqual([]);
    expect(run.messages.some((m) => m.startsWith(`warn: ${v.config} has a runtime crun that is not the original knawd-deployer's (pod_annotations, privileged_without_host_devices differ`))).toBe(true);
    expect(read(root, v.config).startsWith(admin)).toBe(true);
    expect(read(root, CRUN)).toBe('an admin crun\n');
    expect(JSON.parse(read(root, '/opt/knawd/state.json')).takeover).toBeUndefined();
  });
});
