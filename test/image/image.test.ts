/**
 * The installer images as `npm run image` builds them (demo/cluster/images/built-image.ts): one per ociType, each
 * checked from its archive's own layers:
 *
 * - host independence: every ELF under each image's /vendor either needs no glibc symbol newer than 2.27 or is
 *   hermetic — PT_INTERP and RUNPATH name the padded prefix's lib/, and every DT_NEEDED is a file there — proven
 *   with readelf; and each image's crun, installed by the installer from that image, runs `--version` in a chroot
 *   of Debian bullseye (glibc 2.31, the oldest Debian userland the registry serves), at the default prefix and at
 *   another one;
 * - each image's /vendor lists and verifies its own build only: each (target, runtime) pair of its ociType has it
 *   (every one target auto may choose among them), SHA256SUMS lists exactly that build's files and checks, and
 *   another ociType is refused;
 * - two layers: layer 1 is the same blob in the three images of an architecture, layer 2 holds only /vendor files;
 * - the image's own userland runs: Node.js with the bundled installer and nsenter, chrooted into the extracted
 *   root (the image is FROM scratch: nothing of this machine is used);
 * - reproducible: the images and indexes assembled again from the same components give the same digests, and
 *   the WASI test and service images' index digests are the ones lib/catalog records.
 *
 * Needs root (chroot, mmdebstrap). Anything missing fails with the reason.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { elfFacts, files, isElf } from '../support/elf';
import { RUNTIME_NAMES, RuntimeName, UNBUILT_ARCHITECTURES, WASM_SERVICE_IMAGE, WASM_TEST_IMAGE } from '../../lib/catalog';
import { DEFAULT_IMAGE_REPOSITORY, DEFAULT_IMAGE_TAG } from '../../lib/catalog';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { allVariants, AUTO_CANDIDATES, DEFAULT_HOST_PREFIX, findTarget, HOST_PREFIX_MAX_LENGTH, RUNTIMES, runtimesForAuto, VendorManifest } from '../../lib/catalog';
import { locateArtifacts, verifyArtifacts } from '../../lib/installer/artifacts';
import { BuiltImage, builtImage, CACHE, ImageRecord, IMAGE_OUT, imageConfig } from '../../demo/cluster/images/built-image';
import { REPO } from '../support/tools';
import { engineOf } from '../support/wasi-probe';
import { layersOf } from '../support/oci-layers';

jest.setTimeout(20 * 60_000);

const PADDED = DEFAULT_HOST_PREFIX.padEnd(HOST_PREFIX_MAX_LENGTH, '/');
const LOADER = 'ld-linux-x86-64.so.2';
const OLDEST_GLIBC = [2, 27];

let image: BuiltImage;
const manifests = {} as Record<RuntimeName, VendorManifest>;

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the image tests need root (chroot, mmdebstrap)');
  image = builtImage();
  for (const ociType of RUNTIME_NAMES) manifests[ociType] = JSON.parse(readFileSync(join(image.installers[ociType].vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
}, 60 * 60_000);

function run(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 15 * 60_000, ...options });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}` };
}

const older = (v: number[] | undefined): boolean => v === undefined || v[0] < OLDEST_GLIBC[0] || (v[0] === OLDEST_GLIBC[0] && v[1] <= OLDEST_GLIBC[1]);

describe('host independence of every ELF the installer copies to hosts', () => {
  test.each(RUNTIME_NAMES)('%s image: each one needs glibc <= 2.27 or is hermetic under the padded prefix (readelf)', (ociType) => {
    const { vendor } = image.installers[ociType];
    const elves = files(vendor).filter(isElf);
    expect(elves.length).toBeGreaterThan(10);
    const problems: string[] = [];
    const libDir = `${PADDED}/lib`;
    for (const file of elves) {
      const rel = relative(vendor, file);
      const facts = elfFacts(file);
      if (facts.machine !== 'Advanced Micro Devices X86-64') problems.push(`${rel}: machine ${facts.machine}, not x86-64`);
      if (facts.rpath !== undefined) problems.push(`${rel}: DT_RPATH ${facts.rpath} (only RUNPATH is expected)`);
      if (older(facts.maxGlibc) && facts.interp === undefined && facts.needed.length === 0) continue;
      const hermetic: string[] = [];
      if (facts.interp !== undefined && facts.interp !== `${libDir}/${LOADER}`) hermetic.push(`PT_INTERP ${facts.interp} is not ${libDir}/${LOADER}`);
      if (facts.needed.length > 0 && facts.runpath !== libDir) hermetic.push(`RUNPATH ${facts.runpath ?? '(none)'} is not ${libDir}`);
      for (const n of facts.needed) if (!existsSync(join(vendor, 'lib', n))) hermetic.push(`DT_NEEDED ${n} is not in /vendor/lib`);
      if (hermetic.length > 0 && !older(facts.maxGlibc)) problems.push(`${rel} needs GLIBC_${facts.maxGlibc?.join('.')} and is not hermetic: ${hermetic.join('; ')}`);
      else if (hermetic.length > 0) problems.push(`${rel}: ${hermetic.join('; ')}`);
    }
    expect(problems).toEqual([]);
    // The loader is the one file that may have neither: it must be self-contained.
    expect(elfFacts(join(vendor, 'lib', LOADER))).toMatchObject({ interp: undefined, needed: [] });
  });

  test("each image's crun, installed from that image, runs in a chroot of Debian bullseye (glibc 2.31), at the default and another prefix; its engine resolves every library under the prefix", () => {
    const root = oldUserland();
    const glibc = run('/usr/sbin/chroot', [root, '/usr/bin/ldd', '--version']).stdout.split('\n')[0];
    expect(glibc).toMatch(/2\.31$/);
    for (const [runtime, prefix] of [
      ['crun-wasmedge', DEFAULT_HOST_PREFIX],
      ['crun-wasmtime', '/srv/knawd-old-userland'],
      ['crun-wasm-nodejs', '/srv/knawd-old-node'],
    ] as const) {
      const { rootfs, vendor } = image.installers[runtime];
      const installer = join(rootfs, 'usr/local/lib/knawd-installer.js');
      const node = mkdtempSync(join(tmpdir(), 'knawd-oldroot-'));
      try {
        execFileSync('cp', ['-a', `${root}/.`, node]);
        mkdirSync(join(node, 'etc/containerd'), { recursive: true });
        writeFileSync(join(node, 'etc/containerd/config.toml'), '');
        const args = ['install', '--node-root', node, '--target', 'ubuntu_18_04', '--runtime', runtime, '--artifacts', vendor, '--prefix', prefix, '--restart', 'none', '--patch-knative', 'false'];
        const r = run(process.execPath, [installer, ...args], { env: { PATH: process.env.PATH } });
        if (r.code !== 0) throw new Error(`knawd-installer ${args.join(' ')} failed: ${r.stdout}${r.stderr}`);
        // crun re-executes itself through /proc/self/exe: the chroot gets a /proc of its own (private mount ns).
        const version = run('unshare', ['--mount', '--pid', '--fork', `--mount-proc=${join(node, 'proc')}`, '/usr/sbin/chroot', node, `${prefix}/libexec/${runtime}/crun`, '--version'], {
          env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' },
        });
        expect(`${runtime} at ${prefix}: ${version.stderr}${version.code}`).toBe(`${runtime} at ${prefix}: 0`);
        expect(version.stdout).toMatch(new RegExp(`^crun version 1\\.21\\n[^]*\\+WASM:${engineOf(runtime)}`));
        // crun dlopen()s its engine only for a module: the build's loader lists what the engine would load, in the old root.
        const engine = manifests[runtime].builds[runtime].files.find((f) => f.role === 'engine')?.path.replace(/^lib\//, '');
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

describe("each image's /vendor lists and verifies its own build only", () => {
  test('one installer image per ociType of the catalog', () => {
    expect(Object.keys(image.record.installerImages).sort()).toEqual([...RUNTIME_NAMES].sort());
    expect(Object.keys(image.installers).sort()).toEqual([...RUNTIME_NAMES].sort());
  });

  test.each(RUNTIME_NAMES)('%s image: every shipped (target, its ociType) pair has this build; nothing else is offered', (ociType) => {
    const manifest = manifests[ociType];
    expect(Object.keys(manifest.builds)).toEqual([ociType]);
    const offered = Object.fromEntries(allVariants().filter((v) => v.runtime.name === ociType).map((v) => [`${v.target.name}/${v.runtime.name}`, v.runtime.name]));
    const listed = Object.fromEntries(Object.entries(manifest.targets).flatMap(([t, rs]) => Object.entries(rs).map(([r, b]) => [`${t}/${r}`, manifest.builds[b]?.runtime])));
    expect(listed).toEqual(offered);
    expect(manifest.placeholder).toBe(PADDED);
  });

  test.each(RUNTIME_NAMES)('%s image: each node kind target auto can find is served and verified as install does; any other ociType is refused', (ociType) => {
    const { vendor } = image.installers[ociType];
    const accepted = runtimesForAuto().filter((r) => r.name === ociType);
    const found = AUTO_CANDIDATES.flatMap((t) =>
      accepted.map((r) => {
        const artifacts = locateArtifacts(vendor, findTarget(t), r, DEFAULT_HOST_PREFIX);
        verifyArtifacts(artifacts.files);
        return `${t}/${r.name}: ${artifacts.build}, ${artifacts.files.filter((f) => f.role === 'crun').length} crun`;
      }),
    );
    expect(found).toEqual(AUTO_CANDIDATES.flatMap((t) => accepted.map((r) => `${t}/${r.name}: ${r.name}, 1 crun`)));
    for (const other of RUNTIMES.filter((r) => r.name !== ociType)) {
      expect(() => locateArtifacts(vendor, findTarget('containerd'), other, DEFAULT_HOST_PREFIX)).toThrow(`carries ${ociType} only; ociType ${other.name} needs image ${image.installers[other.name].name}; nothing was changed`);
      expect(existsSync(join(vendor, other.name))).toBe(false);
    }
  });

  test.each(RUNTIME_NAMES)('%s image: SHA256SUMS lists exactly its build and artifacts.json, and checks; its crun, loader and engine', (ociType) => {
    const { vendor } = image.installers[ociType];
    const [build] = Object.values(manifests[ociType].builds);
    const sums = readFileSync(join(vendor, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split(/\s+\*?/));
    expect(sums.map(([, name]) => name).sort()).toEqual([...build.files.map((f) => f.path), 'artifacts.json'].sort());
    for (const [hex, name] of sums) expect(`${name} ${createHash('sha256').update(readFileSync(join(vendor, name))).digest('hex')}`).toBe(`${name} ${hex}`);
    // Each distinct file once.
    expect(new Set(sums.map(([hex]) => hex)).size).toBe(sums.length);
    expect([build.files.filter((f) => f.role === 'crun').length, build.files.filter((f) => f.role === 'loader').length, build.files.filter((f) => f.role === 'engine').length]).toEqual([1, 1, 1]);
    // What /vendor has besides the build is layer 1's: the libraries the image's own Node.js links to.
    const shared = image.installers[RUNTIME_NAMES.find((t) => t !== ociType) as RuntimeName].vendor;
    const listed = new Set(sums.map(([, name]) => name));
    const unlisted = files(vendor).map((f) => relative(vendor, f)).filter((f) => !listed.has(f) && f !== 'SHA256SUMS');
    expect(unlisted.filter((f) => !f.startsWith('lib/') || !existsSync(join(shared, f)))).toEqual([]);
  });
});

describe('two layers: layer 1 shared by the three images of an architecture, layer 2 the build', () => {
  test.each(['amd64', 'arm64'])('%s: layer 1 is the same blob in the three images; layer 2 holds /vendor files only, those of its build', (arch) => {
    const record = image.record.architectures[arch];
    const dir = arch === 'amd64' ? IMAGE_OUT : join(IMAGE_OUT, arch);
    const layers = Object.fromEntries(RUNTIME_NAMES.map((t) => [t, layersOf(join(dir, record.installerImages[t].archive))]));
    for (const t of RUNTIME_NAMES) expect(`${t}: ${layers[t].length} layers`).toBe(`${t}: 2 layers`);
    expect(new Set(RUNTIME_NAMES.map((t) => layers[t][0].digest)).size).toBe(1);
    expect(new Set(RUNTIME_NAMES.map((t) => layers[t][1].digest)).size).toBe(RUNTIME_NAMES.length);
    for (const t of RUNTIME_NAMES) {
      const own = layers[t][1].entries.filter((e) => !e.endsWith('/'));
      expect(own.filter((e) => !(e.startsWith(`vendor/${t}/`) || e.startsWith('vendor/lib/') || e === 'vendor/artifacts.json' || e === 'vendor/SHA256SUMS'))).toEqual([]);
      expect(own).toContain(`vendor/${t}/crun`);
      expect(layers[t][0].entries.filter((e) => /^vendor\/crun-/.test(e) || e === 'vendor/artifacts.json')).toEqual([]);
    }
  });
});

describe("the image's own userland", () => {
  test.each(RUNTIME_NAMES)('%s image: Node.js runs the bundled installer and nsenter runs, chrooted into the extracted image root', (ociType) => {
    const { rootfs, archive } = image.installers[ociType];
    const help = run('/usr/sbin/chroot', [rootfs, '/usr/bin/node', '/usr/local/lib/knawd-installer.js', '--help'], { env: { PATH: '/usr/bin' } });
    expect(help.stderr).toBe('');
    expect(help.stdout).toMatch(/^Usage: knawd-installer <command>/);
    const nsenter = run('/usr/sbin/chroot', [rootfs, '/usr/bin/nsenter', '--version'], { env: { PATH: '/usr/bin' } });
    expect(nsenter.stdout).toMatch(/^nsenter from util-linux/);
    const config = imageConfig(archive) as { architecture: string; os: string; config: { Entrypoint: string[] } };
    expect(config.config.Entrypoint).toEqual(['node', '/usr/local/lib/knawd-installer.js']);
    expect(config).toMatchObject({ architecture: 'amd64', os: 'linux' });
  });
});

describe('reproducible', () => {
  test('assembling the images and the indexes again from the same components gives the same digests', () => {
    // build-image.sh compares the second (uncached) assembly with the cached one and fails on any difference.
    const r = run('bash', [join(REPO, 'runtime-artifacts/build-image.sh')], { cwd: REPO, env: { ...process.env, KNAWD_IMAGE_VERIFY: '1' } });
    if (r.code !== 0) throw new Error(`KNAWD_IMAGE_VERIFY=1 npm run image failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
    expect(r.stdout).toContain('image: reproducible: the second assembly gave the same digests');
    expect(r.stdout).toContain('image: reproducible: the indexes made again have the same digests');
    for (const arch of UNBUILT_ARCHITECTURES) expect(r.stdout).toContain(`image: reproducible: the ${arch} unbuilt image made again has the same digest`);
    const again = JSON.parse(readFileSync(join(IMAGE_OUT, 'image.json'), 'utf8')) as ImageRecord;
    const digests = (r: ImageRecord) => RUNTIME_NAMES.map((t) => `${t} ${r.installerImages[t].digest} index ${r.index.installerImages[t].digest}`);
    expect(digests(again)).toEqual(digests(image.record));
  });

  test('the images carry the names the chart and the constructs default to, so an imported archive serves them', () => {
    for (const t of RUNTIME_NAMES) expect(image.installers[t].name).toBe(`${DEFAULT_IMAGE_REPOSITORY}:${DEFAULT_IMAGE_TAG}-${t}`);
    const { wasiTestImage } = image.record.index;
    expect(WASM_TEST_IMAGE).toBe(`${wasiTestImage.name.slice(0, wasiTestImage.name.lastIndexOf(':'))}@${wasiTestImage.digest}`);
  });

  test('lib/catalog/wasi-test-image.json records the WASI test image that was built, by its index digest (every architecture resolves it)', () => {
    const recorded = JSON.parse(readFileSync(join(REPO, 'lib/catalog/wasi-test-image.json'), 'utf8'));
    const { wasiTestImage } = image.record.index;
    expect({ name: recorded.name, digest: recorded.digest }).toEqual({ name: wasiTestImage.name, digest: wasiTestImage.digest });
    expect(Object.keys(wasiTestImage.manifests)).toEqual(['amd64', 'arm64']);
    expect(existsSync(join(IMAGE_OUT, 'wasi-hello.oci.tar'))).toBe(true);
  });

  test('lib/catalog/wasm-service-image.json records the WASM HTTP service image that was built, by its index digest: one module, a numeric user', () => {
    const recorded = JSON.parse(readFileSync(join(REPO, 'lib/catalog/wasm-service-image.json'), 'utf8'));
    const { wasmServiceImage } = image.record.index;
    expect({ name: recorded.name, digest: recorded.digest }).toEqual({ name: wasmServiceImage.name, digest: wasmServiceImage.digest });
    expect(WASM_SERVICE_IMAGE).toBe(`${wasmServiceImage.name.slice(0, wasmServiceImage.name.lastIndexOf(':'))}@${wasmServiceImage.digest}`);
    const config = imageConfig(image.service.archive) as { config: { Entrypoint: string[]; User: string; Env: string[] } };
    expect(config.config).toMatchObject({ Entrypoint: ['/http.wasm'], User: '65532:65532' });
    expect(config.config.Env).toContain('PORT=8080');
  });
});
