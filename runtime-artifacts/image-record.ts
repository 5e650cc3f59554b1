/**
 * Records what assemble.sh built (called by it): OUT/image.json (the images' names, manifest digests and
 * sizes — `installerImages`: one installer image per build of INSTALLER_BUILDS — the component versions, each .deb with its source package, the build machine's toolchain: what the
 * release's SBOMs are made from). The catalog's test and service images are the indexes' digests, which
 * build-image.sh writes once the indexes exist.
 *
 *   image-record.ts OUT PACKAGES BUILD...
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

const [out, packagesFile, ...builds] = process.argv.slice(2);
if (builds.length === 0) throw new Error('usage: image-record.ts OUT PACKAGES BUILD...');

interface Descriptor {
  readonly digest: string;
  readonly size: number;
  readonly annotations?: Record<string, string>;
}

function member(archive: string, name: string): Buffer {
  return execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
}

/** Name, digest and sizes of the one image in an OCI archive. */
function describe(file: string) {
  const archive = path.join(out, file);
  const index = JSON.parse(member(archive, 'index.json').toString('utf8')) as { manifests: Descriptor[] };
  if (index.manifests.length !== 1) throw new Error(`${archive}: expected one manifest, found ${index.manifests.length}`);
  const [desc] = index.manifests;
  const blob = (d: string) => member(archive, `blobs/sha256/${d.replace(/^sha256:/, '')}`);
  const manifest = JSON.parse(blob(desc.digest).toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
  const compressed = manifest.config.size + manifest.layers.reduce((n, l) => n + l.size, 0) + desc.size;
  const uncompressed = manifest.layers.reduce((n, l) => n + Number(execFileSync('sh', ['-c', `tar -xOf "$0" "$1" | gzip -dc | wc -c`, archive, `blobs/sha256/${l.digest.replace(/^sha256:/, '')}`]).toString().trim()), 0);
  return {
    name: desc.annotations?.['org.opencontainers.image.ref.name'] ?? '',
    archive: file,
    digest: desc.digest,
    config: manifest.config.digest,
    layers: manifest.layers.length,
    compressedBytes: compressed,
    uncompressedBytes: uncompressed,
  };
}

const installerImages = Object.fromEntries(builds.map((b) => [b, describe(`knawd-deployer-${b}.oci.tar`)]));
const wasi = describe('wasi-hello.oci.tar');
const service = describe('wasm-http.oci.tar');
const lines = fs.readFileSync(packagesFile, 'utf8').trim().split('\n').map((l) => l.split(' '));
const packages = lines.map(([name, version]) => `${name}=${version}`);

/** Each .deb as its control file says (the source package is what an SBOM names), from the debs entry beside PACKAGES. */
function debRecord([name, version, sha256]: string[]) {
  const debs = path.join(path.dirname(packagesFile), 'debs');
  const file = fs.readdirSync(debs).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!file) throw new Error(`${debs} has no .deb of ${name}`);
  const control = execFileSync('dpkg-deb', ['-f', path.join(debs, file), 'Architecture', 'Source'], { encoding: 'utf8' });
  const field = (key: string) => control.match(new RegExp(`^${key}: (.*)$`, 'm'))?.[1].trim();
  const source = field('Source')?.match(/^(\S+)(?: \((.+)\))?$/);
  return { name, version, architecture: field('Architecture') ?? '', source: source?.[1] ?? name, sourceVersion: source?.[2] ?? version, sha256 };
}
const debs = lines.map(debRecord);

/** The build machine's tools whose output ships (the WASM modules, the agent) or that made the images, as installed. */
function dpkgVersion(pkg: string): string {
  return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8' });
}
const toolchain = {
  ...Object.fromEntries(['wabt', 'clang-14', 'lld-14', 'wasi-libc', 'libclang-rt-14-dev-wasm32', 'musl-tools', 'gcc', 'buildah', 'patchelf'].map((p) => [p, dpkgVersion(p)])),
  rustc: execFileSync('rustc', ['--version'], { encoding: 'utf8' }).trim().split(' ')[1],
};
fs.writeFileSync(path.join(out, 'image.json'), JSON.stringify({ installerImages, wasiTestImage: wasi, wasmServiceImage: service, packages, debs, toolchain }, null, 2) + '\n');
