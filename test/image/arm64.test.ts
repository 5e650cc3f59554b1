/**
 * The linux/arm64 installer images, one per ociType (`npm run image`: IMAGE_ARCHES in runtime-artifacts/image.env),
 * proven on their own binaries on this x86_64 machine with Debian trixie's qemu-user, invoked directly (nothing is
 * registered with binfmt_misc):
 *
 * - every ELF under each image's /vendor is AArch64 and hermetic under the padded prefix (readelf: PT_INTERP the prefix's
 *   ld-linux-aarch64.so.1, RUNPATH the prefix's lib/, every DT_NEEDED a file in /vendor/lib);
 * - installed by the installer from its own image into a Debian bullseye arm64 root (glibc 2.31), each build's crun runs `--version`
 *   there, and its loader lists the engine's libraries, all under the prefix;
 * - each build, laid out from its own image, runs a WASI module through its handler (`crun run` on a bundle): hello.wasm's line, and the probe's
 *   exit status and file reads;
 * - the installer bundle runs under the image's own arm64 Node.js (`plan` on a node root).
 *
 * crun re-executes itself from a sealed memfd unless its file lies on a read-only mount, and qemu-user cannot
 * execute that copy (the kernel would need binfmt_misc): each crun runs from a read-only bind mount of its
 * directory, in a mount namespace of its own. qemu-user cannot clone(2) into new namespaces (it implements a clone
 * without CLONE_VM as fork(), and refuses namespace flags with EINVAL): the bundles ask for none, and crun runs in
 * mount, PID, UTS, IPC and network namespaces that unshare(1) made for it; everything else crun does (mounts, the
 * root, cgroups, the handler and its engine) runs as on a node, but for one call qemu-user answers unlike the
 * kernel (crun's affinity reset: test/support/qemu-affinity-shim.c gives it the kernel's answer). Needs root (chroot, unshare, crun run); anything
 * missing fails with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { DEFAULT_HOST_PREFIX, HOST_PREFIX_MAX_LENGTH, RUNTIME_NAMES, RuntimeName, VendorManifest } from '../../lib/catalog';
import { ArchImage, ArchRecord, builtArchImage, builtImage, CACHE, IMAGE_OUT } from '../../demo/cluster/images/built-image';
import { buildWasiProbe } from '../../demo/cluster/images/test-images';
import { ensureCrunCgroupLayout, removeCgroupTree } from '../../demo/cluster/cgroups';
import { elfFacts, files, isElf } from '../support/elf';
import { REPO } from '../support/tools';
import { layOutImages } from '../support/vendor-layout';
import { probeBundle } from '../support/probe-bundle';
import { Engine, engineOf, PROBE_CASES, ProbeCase, probeProblems } from '../support/wasi-probe';

jest.setTimeout(20 * 60_000);

const PADDED = DEFAULT_HOST_PREFIX.padEnd(HOST_PREFIX_MAX_LENGTH, '/');
const LOADER = 'ld-linux-aarch64.so.1';
const PATH = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' };

/** Debian trixie's qemu-user (static), as npm run image links it: bookworm's 7.2 refuses prctl(PR_SET_CHILD_SUBREAPER). */
const QEMU = join(IMAGE_OUT, 'arm64', 'qemu');
let image: ArchImage;
const manifests = {} as Record<RuntimeName, VendorManifest>;
let base = '';
const cgroupParent = `/knawd-arm64-${randomBytes(6).toString('hex')}`;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the arm64 image tests need root (chroot, unshare, crun run)');
  image = builtArchImage('arm64');
  if (!existsSync(QEMU)) throw new Error(`${QEMU} is missing: npm run image links trixie's qemu-aarch64 there`);
  for (const t of RUNTIME_NAMES) manifests[t] = JSON.parse(readFileSync(join(image.installers[t].vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
  base = mkdtempSync(join(tmpdir(), 'knawd-arm64-'));
}, 60 * 60_000);

afterAll(() => {
  const problems = cgroupParent ? removeCgroupTree(cgroupParent) : [];
  if (base) rmSync(base, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`teardown left cgroups behind:\n${problems.join('\n')}`);
});

function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}) {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 10 * 60_000, ...options });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

/** `qemu-aarch64 <binary> args` with the binary's directory bind-mounted read-only (so crun does not re-execute itself); `root` chroots first. */
function underQemu(binary: string, args: readonly string[], root?: string, options: { cwd?: string; preload?: string } = {}) {
  const dir = dirname(root ? join(root, binary) : binary);
  const qemu = root ? '/qemu-aarch64' : QEMU;
  const guestEnv = options.preload ? ['-E', `LD_PRELOAD=${options.preload}`] : [];
  const exec = root ? ['/usr/sbin/chroot', root, qemu, ...guestEnv, binary, ...args] : [qemu, ...guestEnv, binary, ...args];
  const script = 'd="$1"; shift; mount --bind "$d" "$d" && mount -o remount,bind,ro "$d" && exec "$@"';
  const unshare = root ? ['--mount', '--pid', '--fork', `--mount-proc=${join(root, 'proc')}`] : ['--mount', '--propagation', 'private', '--pid', '--fork', '--uts', '--ipc', '--net'];
  return run('unshare', [...unshare, 'sh', '-c', script, 'sh', dir, ...exec], { env: PATH, cwd: options.cwd });
}

describe('host independence of every arm64 ELF the installer copies to hosts', () => {
  test.each(RUNTIME_NAMES)('%s image: each one is AArch64 and hermetic under the padded prefix: PT_INTERP, RUNPATH, every DT_NEEDED shipped (readelf)', (build) => {
    const { vendor } = image.installers[build];
    const elves = files(vendor).filter(isElf);
    expect(elves.length).toBeGreaterThan(10);
    const libDir = `${PADDED}/lib`;
    const problems: string[] = [];
    for (const file of elves) {
      const rel = relative(vendor, file);
      const facts = elfFacts(file);
      if (facts.machine !== 'AArch64') problems.push(`${rel}: machine ${facts.machine}`);
      if (facts.rpath !== undefined) problems.push(`${rel}: DT_RPATH ${facts.rpath} (only RUNPATH is expected)`);
      if (rel === `lib/${LOADER}`) continue;
      if (facts.interp !== undefined && facts.interp !== `${libDir}/${LOADER}`) problems.push(`${rel}: PT_INTERP ${facts.interp} is not ${libDir}/${LOADER}`);
      if (facts.needed.length > 0 && facts.runpath !== libDir) problems.push(`${rel}: RUNPATH ${facts.runpath ?? '(none)'} is not ${libDir}`);
      for (const n of facts.needed) if (!existsSync(join(vendor, 'lib', n))) problems.push(`${rel}: DT_NEEDED ${n} is not in /vendor/lib`);
    }
    expect(problems).toEqual([]);
    expect(elfFacts(join(vendor, build, 'crun')).interp).toBe(`${libDir}/${LOADER}`);
    expect(elfFacts(join(vendor, 'lib', LOADER))).toMatchObject({ machine: 'AArch64', interp: undefined, needed: [] });
  });

  test("each image's crun, installed from that image, runs --version under qemu-aarch64 in a Debian bullseye arm64 root (glibc 2.31); its loader lists the engine, all under the prefix", () => {
    const root = oldArm64Userland();
    for (const [build, prefix] of [
      ['crun-wasmtime', DEFAULT_HOST_PREFIX],
      ['crun-wasmedge', '/srv/knawd-arm64'],
      ['crun-wasm-nodejs', '/srv/knawd-arm64-node'],
    ] as const) {
      const { rootfs, vendor } = image.installers[build];
      const installer = join(rootfs, 'usr/local/lib/knawd-installer.js');
      const node = join(base, `node-${build}`);
      execFileSync('cp', ['-a', `${root}/.`, node]);
      copyFileSync(QEMU, join(node, 'qemu-aarch64'));
      mkdirSync(join(node, 'etc/containerd'), { recursive: true });
      writeFileSync(join(node, 'etc/containerd/config.toml'), '');
      const args = ['install', '--node-root', node, '--target', 'ubuntu_18_04', '--runtime', build, '--artifacts', vendor, '--prefix', prefix, '--restart', 'none', '--patch-knative', 'false'];
      const r = run(process.execPath, [installer, ...args], { env: { PATH: process.env.PATH } });
      if (r.code !== 0) throw new Error(`knawd-installer ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
      const version = underQemu(`${prefix}/libexec/${build}/crun`, ['--version'], node);
      expect(`${build} at ${prefix}: ${version.stderr}${version.code}`).toBe(`${build} at ${prefix}: 0`);
      expect(version.stdout).toMatch(new RegExp(`^crun version 1\\.21\\n[^]*\\+WASM:${engineOf(build)}`));
      const engine = manifests[build].builds[build].files.find((f) => f.role === 'engine')?.path.replace(/^lib\//, '');
      const list = run('/usr/sbin/chroot', [node, '/qemu-aarch64', `${prefix}/lib/${LOADER}`, '--list', `${prefix}/lib/${engine}`], { env: PATH });
      expect(`${build} ${engine}: ${list.stderr}${list.code}`).toBe(`${build} ${engine}: 0`);
      const resolved = [...list.stdout.matchAll(/=> (\S+)/g)].map((m) => m[1].replace(/\/+/g, '/'));
      expect(resolved).toContain(`${prefix}/lib/libc.so.6`);
      expect(resolved.filter((p) => !p.startsWith(`${prefix}/lib/`))).toEqual([]);
      rmSync(node, { recursive: true, force: true });
    }
  });
});

describe('each arm64 build runs WASI modules through its handler under qemu-aarch64 (crun run on a bundle)', () => {
  let probe = '';
  let hello = '';
  let shim = '';
  let cruns: Partial<Record<RuntimeName, string>> = {};
  beforeAll(() => {
    ensureCrunCgroupLayout();
    probe = buildWasiProbe(base);
    hello = join(base, 'hello.wasm');
    execFileSync('wat2wasm', [join(REPO, 'runtime-artifacts/local/hello.wat'), '-o', hello]);
    // qemu-user answers crun's affinity reset with EFAULT where the kernel says EINVAL (see the shim's head).
    shim = join(base, 'qemu-affinity-shim.so');
    execFileSync('aarch64-linux-gnu-gcc', ['-shared', '-fPIC', '-O2', '-o', shim, join(REPO, 'test/support/qemu-affinity-shim.c')]);
    cruns = layOutImages(image.installers, RUNTIME_NAMES, base);
  }, 10 * 60_000);

  function crunRun(build: RuntimeName, module: string, c: ProbeCase) {
    const crun = cruns[build];
    if (!crun) throw new Error('setup failed (see the beforeAll error above)');
    const id = `arm64-${build}-${c.name}-${randomBytes(3).toString('hex')}`;
    const bundle = join(base, id);
    const { rootfs, env } = probeBundle({
      bundle,
      module,
      probeCase: c,
      cgroupsPath: `${cgroupParent}/${id}`,
      spec: (dir) => {
        const spec = underQemu(crun, ['spec'], undefined, { cwd: dir });
        if (spec.code !== 0) throw new Error(`crun spec under qemu failed: ${spec.stderr}`);
      },
      // unshare(1) made the namespaces (qemu-user cannot clone into new ones), and with them the hostname.
      adjust: (config) => {
        config.linux.namespaces = [];
        delete config.hostname;
      },
    });
    const r = underQemu(crun, ['--root', join(base, 'state'), 'run', '--bundle', bundle, id], undefined, { preload: shim });
    return { ...r, specEnv: env, writtenFile: join(rootfs, 'tmp/wasi-probe-out.txt') };
  }

  test.each(RUNTIME_NAMES)('%s image: hello.wasm prints its line; the probe reads and writes files, gets the spec\'s env, exits 3, traps', (build) => {
    const engine: Engine = engineOf(build);
    const hi = crunRun(build, hello, { name: 'hello', args: [] });
    expect(`${hi.stdout}${hi.stderr}exit ${hi.code}`).toBe('hello from wasm via crun\nexit 0');
    for (const c of PROBE_CASES.filter((p) => ['files', 'env', 'exit-3', 'trap'].includes(p.name))) {
      expect([c.name, probeProblems(engine, c, crunRun(build, probe, c))]).toEqual([c.name, []]);
    }
  });
});

describe("the image's own arm64 userland", () => {
  test("the installer bundle runs under the image's arm64 Node.js: plan on a node root", () => {
    const node = join(base, 'plan-node');
    execFileSync('cp', ['-a', `${oldArm64Userland()}/.`, node]);
    mkdirSync(join(node, 'etc/containerd'), { recursive: true });
    writeFileSync(join(node, 'etc/containerd/config.toml'), '');
    const { rootfs, vendor } = image.installers['crun-wasmtime'];
    expect(elfFacts(join(rootfs, 'usr/bin/node')).machine).toBe('AArch64');
    const plan = run(QEMU, ['-L', rootfs, join(rootfs, 'usr/bin/node'), join(rootfs, 'usr/local/lib/knawd-installer.js'), 'plan', '--node-root', node, '--target', 'ubuntu_18_04', '--runtime', 'crun-wasmtime', '--artifacts', vendor], { env: PATH });
    expect(`${plan.stderr.split('\n').filter((l) => !l.startsWith('{')).join('\n')}exit ${plan.code}`).toBe('exit 0');
    expect(plan.stdout).toMatch(/crun-wasmtime/);
  });
});

describe('one OCI image index per image over amd64 and arm64 (each installer index also over the unbuilt architectures)', () => {
  const kinds = [...RUNTIME_NAMES.map((t) => ['installer', t] as const), ['wasiTestImage'] as const, ['wasmServiceImage'] as const];
  test.each(kinds.map((k) => [k.join(' '), k] as const))("%s: index.json names one image index listing each architecture's manifest, whose config says that architecture", (_name, kind) => {
    const record = builtImage().record;
    const [what, ociType] = kind;
    const pick = (r: ArchRecord) => (what === 'installer' ? r.installerImages[ociType] : r[what]);
    const index = what === 'installer' ? record.index.installerImages[ociType] : record.index[what];
    const archive = join(IMAGE_OUT, 'index', index.archive);
    const member = (name: string): Buffer => execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
    const blob = (digest: string): Buffer => {
      const data = member(`blobs/sha256/${digest.replace(/^sha256:/, '')}`);
      expect(`sha256:${createHash('sha256').update(data).digest('hex')}`).toBe(digest);
      return data;
    };
    const top = JSON.parse(member('index.json').toString('utf8'));
    expect(top.manifests).toEqual([{ mediaType: 'application/vnd.oci.image.index.v1+json', digest: index.digest, size: expect.any(Number), annotations: { 'org.opencontainers.image.ref.name': index.name } }]);
    const list = JSON.parse(blob(index.digest).toString('utf8')) as { manifests: Array<{ digest: string; platform: { architecture: string; os: string } }> };
    const unbuilt = what === 'installer' ? Object.entries(record.unbuilt ?? {}).map(([arch, i]) => ['linux', arch, i.digest]) : [];
    expect(list.manifests.map((m) => [m.platform.os, m.platform.architecture, m.digest])).toEqual([...['amd64', 'arm64'].map((arch) => ['linux', arch, pick(record.architectures[arch]).digest]), ...unbuilt]);
    for (const m of list.manifests) {
      const manifest = JSON.parse(blob(m.digest).toString('utf8')) as { config: { digest: string }; layers: Array<{ digest: string }> };
      expect(JSON.parse(blob(manifest.config.digest).toString('utf8'))).toMatchObject({ architecture: m.platform.architecture, os: 'linux' });
      for (const l of manifest.layers) expect(member(`blobs/sha256/${l.digest.replace(/^sha256:/, '')}`).length).toBeGreaterThan(0);
    }
    expect(index.name).toBe(pick(record).name);
    expect(Object.keys(index.manifests)).toEqual(list.manifests.map((m) => m.platform.architecture));
  });
});

/** A Debian bullseye arm64 root with glibc only (mmdebstrap's extract variant: nothing runs in it), cached. */
function oldArm64Userland(): string {
  const dir = join(CACHE, 'rootfs-bullseye-arm64-libc');
  if (existsSync(join(dir, '.complete'))) return dir;
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  const r = run('mmdebstrap', ['--mode=root', '--variant=extract', '--architectures=arm64', '--include=libc6,libc-bin', '--quiet', 'bullseye', tmp, 'http://deb.debian.org/debian']);
  if (r.code !== 0) throw new Error(`mmdebstrap bullseye arm64 failed (apt-get install mmdebstrap; the registry must serve bullseye): ${r.stderr.slice(-2000)}`);
  for (const d of ['proc', 'run']) mkdirSync(join(tmp, d), { recursive: true });
  writeFileSync(join(tmp, '.complete'), '');
  renameSync(tmp, dir);
  return dir;
}
