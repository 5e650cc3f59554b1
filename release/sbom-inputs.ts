/**
 * What each image's SBOM lists, read from what the build recorded and used: build/image/image.json (every
 * .deb with its source package and sha256, the build machine's toolchain), runtime-artifacts/image.env (which
 * packages ship, which only built), wasmtime-capi/Cargo.lock (every crate, locked), the npm packages esbuild
 * really bundles into the installer (its metafile for lib/installer/main.ts, the build's own entry point) and
 * crun-patches/.
 */
import { parse as parseToml } from '@iarna/toml';
import { buildSync } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { RUNTIME_NAMES, RuntimeName } from '../lib/catalog/runtimes';
import { Built, Crate, DebPackage, ImageSbomInputs, NpmPackage, Tool } from './sbom';

/** An image as build/image/image.json records it (archive relative to build/image). */
export interface RecordedImage {
  readonly name: string;
  readonly digest: string;
  readonly archive: string;
}

export interface ImageRecordFile {
  /** One installer image per ociType, carrying only that crun build (amd64's here). */
  readonly installerImages: Readonly<Partial<Record<RuntimeName, RecordedImage>>>;
  readonly wasiTestImage: RecordedImage;
  readonly wasmServiceImage: RecordedImage;
  readonly debs?: readonly DebPackage[];
  readonly toolchain?: Readonly<Record<string, string>>;
  /** Each image's OCI image index over every architecture (build/image/index/<archive>): what is released. */
  readonly index?: {
    readonly installerImages?: Readonly<Partial<Record<RuntimeName, RecordedImage>>>;
    readonly wasiTestImage?: RecordedImage;
    readonly wasmServiceImage?: RecordedImage;
  };
}

/** Which image: an ociType's installer image, the WASI test image or the WASM service image. */
export type ImageKey = RuntimeName | 'wasi' | 'service';

export function isInstallerKey(key: ImageKey): key is RuntimeName {
  return (RUNTIME_NAMES as readonly string[]).includes(key);
}

/** KEY=value lines of a bash env file (image.env). */
export function envFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z_][A-Z0-9_]*)=(?:"([^"]*)"|(\S*))\s*$/.exec(line);
    if (m) out[m[1]] = m[2] ?? m[3];
  }
  return out;
}

/** The registry crates of a Cargo.lock (the workspace's own crate has no source). */
export function lockedCrates(cargoLock: string): Crate[] {
  const lock = parseToml(cargoLock) as { package?: Array<{ name: string; version: string; source?: string; checksum?: string }> };
  return (lock.package ?? [])
    .filter((p) => p.source !== undefined)
    .map((p) => {
      if (!p.checksum) throw new Error(`Cargo.lock: ${p.name} ${p.version} has no checksum`);
      return { name: p.name, version: p.version, checksum: p.checksum };
    });
}

/** The npm packages whose files esbuild puts into the bundle of `entry`, with their package.json versions. */
export function bundledNpmPackages(repo: string, entry: string): NpmPackage[] {
  const result = buildSync({ entryPoints: [join(repo, entry)], bundle: true, platform: 'node', target: 'node20', write: false, metafile: true, logLevel: 'silent', absWorkingDir: repo });
  const dirs = new Set<string>();
  for (const input of Object.keys(result.metafile?.inputs ?? {})) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
    if (m) dirs.add(m[1]);
  }
  return [...dirs]
    .map((dir) => {
      const pkg = JSON.parse(readFileSync(join(repo, dir, 'package.json'), 'utf8')) as { name: string; version: string; license?: string };
      return { name: pkg.name, version: pkg.version, ...(typeof pkg.license === 'string' ? { license: pkg.license } : {}) };
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.version.localeCompare(b.version));
}

function words(env: Record<string, string>, key: string): string[] {
  const value = env[key];
  if (value === undefined) throw new Error(`runtime-artifacts/image.env has no ${key}`);
  return value.split(/\s+/).filter(Boolean);
}

/** The SBOM inputs of one image (an ociType's installer image, the WASI test or the service image), given the digest it is released under. */
export function sbomInputs(repo: string, record: ImageRecordFile, which: ImageKey, digest: string): ImageSbomInputs {
  if (!record.debs || !record.toolchain) {
    throw new Error('build/image/image.json records no .debs or toolchain (built before the SBOM inputs were recorded): run npm run image');
  }
  const env = envFile(readFileSync(join(repo, 'runtime-artifacts', 'image.env'), 'utf8'));
  const projectVersion = (JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')) as { version: string }).version;
  const toolchain = record.toolchain;
  const tool = (name: string, linkedIn: boolean): Tool => {
    const version = toolchain[name];
    if (!version) throw new Error(`build/image/image.json's toolchain has no ${name}`);
    return { name, version, linkedIn };
  };
  const debsNamed = (names: string[]): DebPackage[] =>
    names.map((n) => {
      const deb = record.debs!.find((d) => d.name === n);
      if (!deb) throw new Error(`build/image/image.json records no .deb ${n} (runtime-artifacts/image.env names it)`);
      return deb;
    });
  const common = { digest, projectVersion, shipDistro: 'debian-13', buildDistro: 'debian-12', crates: [], npm: [], shippedDebs: [], buildDebs: [] };
  const own = (name: string, description: string): Built => ({ name, version: projectVersion, description });
  if (isInstallerKey(which)) {
    const image = record.index?.installerImages?.[which] ?? record.installerImages[which];
    if (!image) throw new Error(`build/image/image.json records no installer image for ${which}: run npm run image`);
    const patchDir = join(repo, 'runtime-artifacts', 'crun-patches');
    const patches = readdirSync(patchDir)
      .filter((f) => f.endsWith('.patch'))
      .sort()
      .map((f) => ({ file: `runtime-artifacts/crun-patches/${f}`, text: readFileSync(join(patchDir, f), 'utf8') }));
    // Only the wasmtime build links the wasmtime C API, whose crates Cargo.lock pins.
    const wasmtime = which === 'crun-wasmtime';
    return {
      ...common,
      name: 'deployer',
      reference: image.name,
      shippedDebs: debsNamed([...words(env, 'VENDOR_DEBS'), ...words(env, 'ROOTFS_DEBS')]),
      buildDebs: debsNamed(words(env, 'BUILD_DEBS')),
      crates: wasmtime ? lockedCrates(readFileSync(join(repo, 'runtime-artifacts', 'wasmtime-capi', 'Cargo.lock'), 'utf8')) : [],
      npm: bundledNpmPackages(repo, 'lib/installer/main.ts'),
      built: [
        {
          name: 'crun',
          version: env.CRUN_VERSION,
          description: `crun built as ${which} from the upstream tarball of Debian trixie's source package`,
          purl: `pkg:github/containers/crun@${env.CRUN_VERSION}`,
          patches,
        },
        ...(wasmtime ? [{ name: 'libwasmtime', version: env.WASMTIME_VERSION, description: 'wasmtime C API (runtime-artifacts/wasmtime-capi over crates.io wasmtime-c-api-impl)' }] : []),
        own('knawd-installer', 'the node installer (lib/installer bundled by esbuild)'),
        own('knawd-agent', 'the pod\'s long-running process (runtime-artifacts/agent, static with musl)'),
      ],
      tools: [tool('musl-tools', true), tool('gcc', false), tool('patchelf', false), tool('buildah', false)],
    };
  }
  if (which === 'wasi') {
    return {
      ...common,
      name: 'wasi-hello',
      reference: record.wasiTestImage.name,
      built: [own('hello.wasm', 'runtime-artifacts/local/hello.wat assembled by wat2wasm')],
      tools: [tool('wabt', false), tool('buildah', false)],
    };
  }
  return {
    ...common,
    name: 'wasm-http',
    reference: record.wasmServiceImage.name,
    built: [own('http.wasm', 'runtime-artifacts/wasm-http/http.c compiled by clang-14 for wasm32-wasi')],
    tools: [tool('wasi-libc', true), tool('libclang-rt-14-dev-wasm32', true), tool('clang-14', false), tool('lld-14', false), tool('buildah', false)],
  };
}
