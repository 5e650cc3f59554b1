/**
 * The installer images as `npm run image` builds them (one per ociType, two layers each: what the three share,
 * then the engine's own build), for any suite that installs from them (the containerd and CRI-O e2e tests, a
 * real-kubelet harness): {@link builtImage} runs the build (every component and the images themselves are cached
 * by their inputs, so a warm call takes seconds), then extracts each image's layers from its OCI archive — what a
 * node would pull — into a cache directory keyed by the image digest, and hands back each extracted `/vendor`
 * (what the installer copies to hosts) and the image's root. It throws with the reason when the build fails or an
 * archive is not what image.json says.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_NAMES, RuntimeName } from '../../../lib/catalog/runtimes';
import { REPO } from '../process';

export interface ImageArchive {
  /** Name in the archive's index (`org.opencontainers.image.ref.name`): what `ctr images import` calls it. */
  readonly name: string;
  /** The OCI archive (`oci-archive:` for skopeo, `ctr images import` reads it). */
  readonly archive: string;
  /** Manifest digest, `sha256:…`. */
  readonly digest: string;
  /** Config digest, `sha256:…` (the image id CRI reports). */
  readonly config: string;
  readonly compressedBytes: number;
  readonly uncompressedBytes: number;
}

/** An installer image with its layers extracted. */
export interface ExtractedImage extends ImageArchive {
  /** The image's root file system, its layers unpacked in order. */
  readonly rootfs: string;
  /** `<rootfs>/vendor`: artifacts.json, SHA256SUMS and the image's one build; pass it as `--artifacts`. */
  readonly vendor: string;
}

export interface BuiltImage {
  /** The installer image of each ociType (`quay.io/knawd/deployer:v2.0.0-<ociType>`), extracted. */
  readonly installers: Readonly<Record<RuntimeName, ExtractedImage>>;
  /** The WASI test image (entrypoint /hello.wasm, prints "hello from wasm via crun"). */
  readonly wasi: ImageArchive;
  /** The WASM HTTP service image (entrypoint /http.wasm, answers GET / and /healthz on $PORT). */
  readonly service: ImageArchive;
  /** build/image/image.json as the build wrote it. */
  readonly record: ImageRecord;
}

/** What build/image/image.json holds for one architecture. */
export interface ArchRecord {
  /** One installer image per ociType. */
  readonly installerImages: Readonly<Record<RuntimeName, ImageArchive & { readonly layers: number }>>;
  readonly wasiTestImage: ImageArchive;
  readonly wasmServiceImage: ImageArchive;
  readonly packages: readonly string[];
}

export interface ImageRecord extends ArchRecord {
  /** Every architecture's own record (amd64's is the one above), by OCI architecture name. */
  readonly architectures: Readonly<Record<string, ArchRecord>>;
  /** The image of each architecture without a build (its installer refuses), archives relative to build/image; absent when none was built. */
  readonly unbuilt?: Readonly<Record<string, ImageArchive>>;
  /** The OCI image index of each image (build/image/index/<archive>): its digest and each architecture's manifest. */
  readonly index: {
    readonly installerImages: Readonly<Record<RuntimeName, ImageIndex>>;
    readonly wasiTestImage: ImageIndex;
    readonly wasmServiceImage: ImageIndex;
  };
}

export interface ImageIndex {
  readonly name: string;
  /** The archive's file name under build/image/index/. */
  readonly archive: string;
  /** The image index's digest: what a registry serves for every architecture. */
  readonly digest: string;
  readonly manifests: Readonly<Record<string, { readonly digest: string; readonly compressedBytes: number }>>;
}

export const IMAGE_OUT = join(REPO, 'build', 'image');
export const CACHE = process.env.KNAWD_TOOLS_CACHE ?? join(homedir(), '.cache', 'knawd-deployer');

let built: BuiltImage | undefined;

/** One value per ociType. */
export function perOciType<T>(make: (ociType: RuntimeName) => T): Record<RuntimeName, T> {
  const out = {} as Record<RuntimeName, T>;
  for (const ociType of RUNTIME_NAMES) out[ociType] = make(ociType);
  return out;
}

/** The installer images of one architecture's record, archives under `dir`, each extracted. */
function extractedInstallers(record: ArchRecord, dir: string): Record<RuntimeName, ExtractedImage> {
  return perOciType((ociType) => {
    const image = record.installerImages[ociType];
    if (!image) throw new Error(`${dir}: image.json has no installer image for ${ociType} (npm run image builds one per ociType)`);
    const archive = join(dir, image.archive);
    const rootfs = extractImage(archive, image.digest);
    return { ...image, archive, rootfs, vendor: join(rootfs, 'vendor') };
  });
}

/** Builds (or reuses) the images and returns them with the installer images extracted; cached per process. */
export function builtImage(): BuiltImage {
  if (built) return built;
  const run = spawnSync('bash', [join(REPO, 'runtime-artifacts', 'build-image.sh')], { cwd: REPO, encoding: 'utf8', timeout: 60 * 60_000, maxBuffer: 64 << 20 });
  if (run.status !== 0) {
    throw new Error(`npm run image (runtime-artifacts/build-image.sh) failed with exit ${run.status ?? run.signal ?? run.error?.message}:\n${(run.stdout ?? '').slice(-3000)}\n${(run.stderr ?? '').slice(-3000)}`);
  }
  const record = JSON.parse(readFileSync(join(IMAGE_OUT, 'image.json'), 'utf8')) as ImageRecord;
  const wasi = { ...record.wasiTestImage, archive: join(IMAGE_OUT, record.wasiTestImage.archive) };
  const service = { ...record.wasmServiceImage, archive: join(IMAGE_OUT, record.wasmServiceImage.archive) };
  built = { installers: extractedInstallers(record, IMAGE_OUT), wasi, service, record };
  return built;
}

/** An architecture's images (`npm run image` writes another architecture's beside the amd64 ones, under `<arch>/`). */
export interface ArchImage {
  readonly arch: string;
  readonly installers: Readonly<Record<RuntimeName, ExtractedImage>>;
  readonly record: ArchRecord;
}

/** The `arch` images of the same build as {@link builtImage} (which it runs first), extracted. */
export function builtArchImage(arch: string): ArchImage {
  const image = builtImage();
  if (arch === 'amd64') return { arch, installers: image.installers, record: image.record };
  const dir = join(IMAGE_OUT, arch);
  const file = join(dir, 'image.json');
  if (!existsSync(file)) throw new Error(`npm run image wrote no ${file}: is ${arch} in IMAGE_ARCHES of runtime-artifacts/image.env?`);
  const record = JSON.parse(readFileSync(file, 'utf8')) as ArchRecord;
  return { arch, installers: extractedInstallers(record, dir), record };
}

/** The image config (architecture, os, Entrypoint, …) of the one image in an OCI archive. */
export function imageConfig(archive: string): Record<string, unknown> {
  const member = (name: string): Buffer => execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
  const index = JSON.parse(member('index.json').toString('utf8')) as { manifests: Array<{ digest: string }> };
  const manifest = JSON.parse(member(`blobs/sha256/${index.manifests[0].digest.replace(/^sha256:/, '')}`).toString('utf8')) as { config: { digest: string } };
  return JSON.parse(member(`blobs/sha256/${manifest.config.digest.replace(/^sha256:/, '')}`).toString('utf8')) as Record<string, unknown>;
}

/** The layers of the image whose manifest is `digest`, unpacked in order into a cache directory (once per digest). */
export function extractImage(archive: string, digest: string): string {
  const dir = join(CACHE, `image-rootfs-${digest.replace(/^sha256:/, '').slice(0, 16)}`);
  if (existsSync(join(dir, '.complete'))) return dir;
  const member = (name: string): Buffer => execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
  const index = JSON.parse(member('index.json').toString('utf8')) as { manifests: Array<{ digest: string }> };
  if (index.manifests.length !== 1 || index.manifests[0].digest !== digest) {
    throw new Error(`${archive} does not hold the one manifest ${digest} that build/image/image.json names`);
  }
  const blob = (d: string): Buffer => {
    const data = member(`blobs/sha256/${d.replace(/^sha256:/, '')}`);
    if (`sha256:${createHash('sha256').update(data).digest('hex')}` !== d) throw new Error(`${archive}: blob ${d} does not match its digest`);
    return data;
  };
  const manifest = JSON.parse(blob(digest).toString('utf8')) as { layers: Array<{ digest: string; mediaType: string }> };
  // Jest's workers may extract the same image at once: each into a directory of its own, and the first rename
  // wins. A directory under the final name is only ever made by that rename, after its .complete marker.
  const tmp = mkdtempSync(`${dir}.partial-`);
  const layer = join(tmp, '.layer');
  for (const { digest: d } of manifest.layers) {
    writeFileSync(layer, blob(d));
    execFileSync('tar', ['-xzf', layer, '-C', tmp, '--numeric-owner', '--same-permissions']);
  }
  rmSync(layer);
  writeFileSync(join(tmp, '.complete'), '');
  if (existsSync(dir) && !existsSync(join(dir, '.complete'))) rmSync(dir, { recursive: true, force: true });
  try {
    renameSync(tmp, dir);
  } catch (error) {
    if (!existsSync(join(dir, '.complete'))) throw error;
    rmSync(tmp, { recursive: true, force: true });
  }
  return dir;
}
