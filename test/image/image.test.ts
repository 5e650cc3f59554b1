/**
 * The installer image as `npm run image` builds it (demo/cluster/images/built-image.ts), checked from the archive's own layer:
 *
 * - host independence: every ELF under /vendor either needs no glibc symbol newer than 2.27 or is hermetic —
 *   PT_INTERP and RUNPATH name the padded prefix's lib/, and every DT_NEEDED is a file there — proven with
 *   readelf; and the installed crun of each build runs `--version` in a chroot of Debian bullseye (glibc 2.31,
 *   the oldest Debian userland the registry serves), installed by the installer itself, at the default prefix
 *   and at another one;
 * - /vendor is what the catalog says: each (target, runtime) pair has its build (every one target auto may
 *   choose among them), every file is listed, each distinct file is stored once, SHA256SUMS checks;
 * - the image's own userland runs: Node.js with the bundled installer and nsenter, chrooted into the extracted
 *   root (the image is FROM scratch: nothing of this machine is used);
 * - reproducible: the images assembled again from the same components give the same digests, and the WASI test
 *   image's digest is the one lib/catalog/wasi-test-image.json records.
 *
 * Needs root (chroot, mmdebstrap). Anything missing fails with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { elfFacts, files, isElf } from '../support/elf';
import { WASM_SERVICE_IMAGE, WASM_TEST_IMAGE } from '../../lib/catalog';
import { DEFAULT_IMAGE_REPOSITORY, DEFAULT_IMAGE_TAG } from '../../lib/constructs/settings';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { allVariants, AUTO_CANDIDATES, DEFAULT_HOST_PREFIX, findTarget, HOST_PREFIX_MAX_LENGTH, runtimesForAuto, VendorManifest } from '../../lib/catalog';
import { locateArtifacts, verifyArtifacts } from '../../lib/installer/artifacts';
import { BuiltImage, builtImage, CACHE, IMAGE_OUT, imageConfig } from '../../demo/cluster/images/built-image';
import { REPO } from '../support/tools';
import { engineOf } from '../support/wasi-probe';

jest.setTimeout(20 * 60_000);

const PADDED = DEFAULT_HOST_PREFIX.padEnd(HOST_PREFIX_MAX_LENGTH, '/');
const LOADER = 'ld-linux-x86-64.so.2';
const OLDEST_GLIBC = [2, 27];

let image: BuiltImage;
let manifest: VendorManifest;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the image tests need root (chroot, mmdebstrap)');
  image = builtImage();
  manifest = JSON.parse(readFileSync(join(image.vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
}, 60 * 60_000);

function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 15 * 60_000, ...options });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

const older = (v: number[] | undefined): boolean => v === undefined || v[0] < OLDEST_GLIBC[0] || (v[0] === OLDEST_GLIBC[0] && v[1] <= OLDEST_GLIBC[1]);

describe('host independence of every ELF the installer copies to hosts', () => {
  test('each one needs glibc <= 2.27 or is hermetic under the padded prefix (readelf)', () => {
    const elves = files(image.vendor).filter(isElf);
    expect(elves.length).toBeGreaterThan(10);
    const problems: string[] = [];
    const libDir = `${PADDED}/lib`;
    for (const file of elves) {
      const rel = relative(image.vendor, file);
      const facts = elfFacts(file);
      if (facts.machine !== 'Advanced Micro Devices X86-64') problems.push(`${rel}: machine ${facts.machine}, not x86-64`);
      if (facts.rpath !== undefined) problems.push(`${rel}: DT_RPATH ${facts.rpath} (only RUNPATH is expected)`);
      if (older(facts.maxGlibc) && facts.interp === undefined && facts.needed.length === 0) continue;
      const hermetic: string[] = [];
      if (facts.interp !== undefined && facts.interp !== `${libDir}/${LOADER}`) hermetic.push(`PT_INTERP ${facts.interp} is not ${libDir}/${LOADER}`);
      if (facts.needed.length > 0 && facts.runpath !== libDir) hermetic.push(`RUNPATH ${facts.runpath ?? '(none)'} is not ${libDir}`);
      for (const n of facts.needed) if (!existsSync(join(image.vendor, 'lib', n))) hermetic.push(`DT_NEEDED ${n} is not in /vendor/lib`);
      if (hermetic.length > 0 && !older(facts.maxGlibc)) problems.push(`${rel} needs GLIBC_${facts.maxGlibc?.join('.')} and is not hermetic: ${hermetic.join('; ')}`);
      else if (hermetic.length > 0) problems.push(`${rel}: ${hermetic.join('; ')}`);
    }
    expect(problems).toEqual([]);
    // The loader is the one file that may have neither: it must be self-contained.
    expect(elfFacts(join(image.vendor, 'lib', LOADER))).toMatchObject({ interp: undefined, needed: [] });
  });

  test('the installed crun of each build runs in a chroot of Debian bullseye (glibc 2.31), at the default and another prefix; its engine resolves every library under the prefix', () => {
    const root = oldUserland();
    const glibc = run('/usr/sbin/chroot', [root, '/usr/bin/ldd', '--version']).stdout.split('\n')[0];
    expect(glibc).toMatch(/2\.31$/);
    const installer = join(image.rootfs, 'usr/local/lib/knawd-installer.js');
    for (const [runtime, prefix] of [
      ['crun-wasmedge', DEFAULT_HOST_PREFIX],
      ['crun-wasmtime', '/srv/knawd-old-userland'],
      ['crun-wasm-nodejs', '/srv/knawd-old-node'],
    ] as const) {
      const node = mkdtempSync(join(tmpdir(), 'knawd-oldroot-'));
      try {
        execFileSync('cp', ['-a', `${root}/.`, node]);
        mkdirSync(join(node, 'etc/containerd'), { recursive: true });
        writeFileSync(join(node, 'etc/containerd/config.toml'), '');
        const args = ['install', '--node-root', node, '--target', 'ubuntu_18_04', '--runtime', runtime, '--artifacts', image.vendor, '--prefix', prefix, '--restart', 'none', '--patch-knative', 'false'];
        const r = run(process.execPath, [installer, ...args], { env: { PATH: process.env.PATH } });
        if (r.code !== 0) throw new Error(`knawd-installer ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
        // crun re-executes itself through /proc/self/exe: the chroot gets a /proc of its own (private mount ns).
        const version = run('unshare', ['--mount', '--pid', '--fork', `--mount-proc=${join(node, 'proc')}`, '/usr/sbin/chroot', node, `${prefix}/libexec/${runtime}/crun`, '--version'], {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        });
        expect(`${runtime} at ${prefix}: ${version.stderr}${version.code}`).toBe(`${runtime} at ${prefix}: 0`);
        expect(version.stdout).toMatch(new RegExp(`^crun version 1\\.21\\n[^]*\\+WASM:${engineOf(runtime)}`));
        // crun dlopen()s its engine only for a module: the build's loader lists what the engine would load, in the old root.
        const engine = manifest.builds[runtime].files.find((f) => f.role === 'engine')?.path.replace(/^lib\//, '');
        const list = run('/usr/sbin/chroot', [node, `${prefix}/lib/${LOADER}`, '--list', `${prefix}/lib/${engine}`], { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } });
        expect(`${runtime} ${engine}: ${list.stderr}${list.code}`).toBe(`${runtime} ${engine}: 0`);
        const resolved = [...list.stdout.matchAll(/=> (\S+)/g)].map((m) => m[1].replace(/\/+/g, '/'));
        expect(resolved).toContain(`${prefix}/lib/libc.so.6`);
        expect(resolved.filter((p) => !p.startsWith(`${prefix}/lib/`))).toEqual([]);
      } finally {
        rmSync(node, { recursive: true, force: true });
      }
    }
  });
});

/** A minimal Debian bullseye root (mmdebstrap), cached: the oldest Debian userland the registry serves. */
function oldUserland(): string {
  const dir = join(CACHE, 'rootfs-bullseye-minbase');
  if (existsSync(join(dir, '.complete'))) return dir;
  const tmp = `${dir}.partial`;
  rmSync(tmp, { recursive: true, force: true });
  const r = run('mmdebstrap', ['--mode=root', '--variant=minbase', '--quiet', 'bullseye', tmp, 'http://deb.debian.org/debian']);
  if (r.code !== 0) throw new Error(`mmdebstrap bullseye failed (apt-get install mmdebstrap; the registry must serve bullseye): ${r.stderr.slice(-2000)}`);
  writeFileSync(join(tmp, '.complete'), '');
  renameSync(tmp, dir);
  return dir;
}

describe('/vendor is what the catalog ships, each distinct file once', () => {
  test('every shipped (target, runtime) pair has its build; nothing else is offered', () => {
    const offered = Object.fromEntries(allVariants().map((v) => [`${v.target.name}/${v.runtime.name}`, v.runtime.name]));
    const listed = Object.fromEntries(Object.entries(manifest.targets).flatMap(([t, rs]) => Object.entries(rs).map(([r, b]) => [`${t}/${r}`, manifest.builds[b]?.runtime])));
    expect(listed).toEqual(offered);
    expect(manifest.placeholder).toBe(PADDED);
  });

  test('every build target auto may choose is in the image: each node kind it can find, with each ociType it accepts, found and verified as install does', () => {
    const found = AUTO_CANDIDATES.flatMap((t) =>
      runtimesForAuto().map((r) => {
        const artifacts = locateArtifacts(image.vendor, findTarget(t), r, DEFAULT_HOST_PREFIX);
        verifyArtifacts(artifacts.files);
        return `${t}/${r.name}: ${artifacts.build}, ${artifacts.files.filter((f) => f.role === 'crun').length} crun`;
      }),
    );
    expect(found).toEqual(AUTO_CANDIDATES.flatMap((t) => runtimesForAuto().map((r) => `${t}/${r.name}: ${r.name}, 1 crun`)));
  });

  test('SHA256SUMS lists every file, each file is listed by a build, no two files have the same bytes', () => {
    const all = files(image.vendor).map((f) => relative(image.vendor, f)).sort();
    const sums = readFileSync(join(image.vendor, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split(/\s+\*?/));
    expect(sums.map(([, name]) => name).sort()).toEqual(all.filter((f) => f !== 'SHA256SUMS'));
    for (const [hex, name] of sums) expect(`${name} ${createHash('sha256').update(readFileSync(join(image.vendor, name))).digest('hex')}`).toBe(`${name} ${hex}`);
    const inBuilds = new Set(Object.values(manifest.builds).flatMap((b) => b.files.map((f) => f.path)));
    expect(all.filter((f) => !inBuilds.has(f) && f !== 'SHA256SUMS' && f !== 'artifacts.json')).toEqual([]);
    const digests = sums.map(([hex]) => hex);
    expect(new Set(digests).size).toBe(digests.length);
    // Each build has its crun, the loader and its engine.
    for (const [name, b] of Object.entries(manifest.builds)) {
      expect([name, b.files.filter((f) => f.role === 'crun').length, b.files.filter((f) => f.role === 'loader').length, b.files.filter((f) => f.role === 'engine').length]).toEqual([name, 1, 1, 1]);
    }
  });
});

describe("the image's own userland", () => {
  test('Node.js runs the bundled installer and nsenter runs, chrooted into the extracted image root', () => {
    const help = run('/usr/sbin/chroot', [image.rootfs, '/usr/bin/node', '/usr/local/lib/knawd-installer.js', '--help'], { env: { PATH: '/usr/bin' } });
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^Usage: knawd-installer <command>/);
    const nsenter = run('/usr/sbin/chroot', [image.rootfs, '/usr/bin/nsenter', '--version'], { env: { PATH: '/usr/bin' } });
    expect(nsenter.stdout).toMatch(/^nsenter from util-linux/);
    const config = imageConfig(image.archive) as { architecture: string; os: string; config: { Entrypoint: string[] } };
    expect(config.config.Entrypoint).toEqual(['node', '/usr/local/lib/knawd-installer.js']);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux' });
  });
});

describe('reproducible', () => {
  test('assembling the images again from the same components gives the same digests', () => {
    // build-image.sh compares the second (uncached) assembly with the cached one and fails on any difference.
    const r = run('bash', [join(REPO, 'runtime-artifacts/build-image.sh')], { cwd: REPO, env: { ...process.env, KNAWD_IMAGE_VERIFY: '1' } });
    if (r.code !== 0) throw new Error(`KNAWD_IMAGE_VERIFY=1 npm run image failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
    expect(r.stdout).toContain('image: reproducible: the second assembly gave the same digests');
    expect(r.stdout).toContain('image: reproducible: the indexes made again have the same digests');
    expect(JSON.parse(readFileSync(join(IMAGE_OUT, 'image.json'), 'utf8')).image.digest).toBe(image.digest);
  });

  test('the images carry the names the chart and the constructs default to, so an imported archive serves them', () => {
    expect(image.name).toBe(`${DEFAULT_IMAGE_REPOSITORY}:${DEFAULT_IMAGE_TAG}`);
    expect(WASM_TEST_IMAGE).toBe(`${image.wasi.name.slice(0, image.wasi.name.lastIndexOf(':'))}@${image.wasi.digest}`);
  });

  test('lib/catalog/wasi-test-image.json records the WASI test image that was built', () => {
    const recorded = JSON.parse(readFileSync(join(REPO, 'lib/catalog/wasi-test-image.json'), 'utf8'));
    expect({ name: recorded.name, digest: recorded.digest }).toEqual({ name: image.wasi.name, digest: image.wasi.digest });
    expect(existsSync(join(IMAGE_OUT, 'wasi-hello.oci.tar'))).toBe(true);
  });

  test('lib/catalog/wasm-service-image.json records the WASM HTTP service image that was built: one module, a numeric user', () => {
    const recorded = JSON.parse(readFileSync(join(REPO, 'lib/catalog/wasm-service-image.json'), 'utf8'));
    expect({ name: recorded.name, digest: recorded.digest }).toEqual({ name: image.service.name, digest: image.service.digest });
    expect(WASM_SERVICE_IMAGE).toBe(`${image.service.name.slice(0, image.service.name.lastIndexOf(':'))}@${image.service.digest}`);
    const config = imageConfig(image.service.archive) as { config: { Entrypoint: string[]; User: string; Env: string[] } };
    expect(config.config).toMatchObject({ Entrypoint: ['/http.wasm'], User: '65532:65532' });
    expect(config.config.Env).toContain('PORT=8080');
  });
});
