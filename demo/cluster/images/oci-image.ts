/**
 * Tiny single-layer OCI images, built on disk without a registry or a container engine, as an OCI image
 * layout archive that `ctr images import` reads:
 *
 *   oci-layout                         {"imageLayoutVersion":"1.0.0"}
 *   index.json                         one manifest, platform linux/amd64, ref name annotation = full image name
 *   blobs/sha256/<layer>               the root file system: a tar made by the system `tar`, gzipped
 *   blobs/sha256/<config>              architecture/os (CRI checks the platform), Entrypoint/Cmd, diff_ids
 *   blobs/sha256/<manifest>
 *
 * Digests are computed with node:crypto.
 */
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { must } from '../process';

export interface ImageFile {
  /** Absolute path inside the image. */
  readonly path: string;
  /** Copy this host file (symlinks are followed)… */
  readonly from?: string;
  /** …or write these bytes. */
  readonly content?: Buffer | string;
  /** @default 0o755 */
  readonly mode?: number;
}

export interface ImageSpec {
  /** Full reference, e.g. `knawd.test/e2e/hello-wasm:1`; what CRI and the containerd config refer to. */
  readonly name: string;
  readonly files: readonly ImageFile[];
  readonly entrypoint: readonly string[];
  readonly cmd?: readonly string[];
  /** The image's `User` (numeric, so that the kubelet can check `runAsNonRoot` without an /etc/passwd). */
  readonly user?: string;
}

/** A single-layer image built here by {@link buildOciImage}, as an OCI archive. */
export interface SingleLayerImage {
  readonly name: string;
  /** The OCI layout as a tar archive, for `ctr images import`. */
  readonly archive: string;
  /** sha256:… of the manifest. */
  readonly manifestDigest: string;
  /** sha256:… of the config (the image id CRI reports). */
  readonly configDigest: string;
}

const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** Builds `spec` under `workDir` (which must exist) and returns the archive path. */
export function buildOciImage(spec: ImageSpec, workDir: string): SingleLayerImage {
  const dir = mkdtempSync(join(workDir, 'image-'));
  const rootfs = join(dir, 'rootfs');
  const layout = join(dir, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(rootfs);
  mkdirSync(blobs, { recursive: true });

  for (const f of spec.files) {
    if (!f.path.startsWith('/')) throw new Error(`image ${spec.name}: file path ${f.path} must be absolute`);
    const dest = join(rootfs, f.path);
    mkdirSync(dirname(dest), { recursive: true });
    if (f.from !== undefined) copyFileSync(f.from, dest);
    else if (f.content !== undefined) writeFileSync(dest, f.content);
    else throw new Error(`image ${spec.name}: ${f.path} needs from or content`);
    chmodSync(dest, f.mode ?? 0o755);
  }

  // The layer: system tar, root-owned entries, stable order; gzip from zlib.
  const layerTar = join(dir, 'layer.tar');
  must('tar', ['--create', '--file', layerTar, '--directory', rootfs, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', '--mtime=@0', '.']);
  const tarBytes = readFileSync(layerTar);
  const layer = gzipSync(tarBytes);
  const blob = (data: Buffer): { digest: string; size: number } => {
    const hex = sha256(data);
    writeFileSync(join(blobs, hex), data);
    return { digest: `sha256:${hex}`, size: data.length };
  };
  const layerDesc = blob(layer);

  const config = Buffer.from(
    JSON.stringify({
      created: '1970-01-01T00:00:00Z',
      architecture: 'amd64',
      os: 'linux',
      config: {
        Entrypoint: spec.entrypoint,
        ...(spec.cmd ? { Cmd: spec.cmd } : {}),
        ...(spec.user ? { User: spec.user } : {}),
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        WorkingDir: '/',
      },
      rootfs: { type: 'layers', diff_ids: [`sha256:${sha256(tarBytes)}`] },
      history: [{ created: '1970-01-01T00:00:00Z', created_by: 'knawd-deployer demo/cluster/images/oci-image.ts' }],
    }),
  );
  const configDesc = blob(config);

  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...configDesc },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layerDesc }],
    }),
  );
  const manifestDesc = blob(manifest);

  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifestDesc,
          platform: { architecture: 'amd64', os: 'linux' },
          annotations: { 'org.opencontainers.image.ref.name': spec.name },
        },
      ],
    }),
  );

  const archive = join(dir, 'image.tar');
  must('tar', ['--create', '--file', archive, '--directory', layout, '--numeric-owner', '--owner=0', '--group=0', '--sort=name', 'oci-layout', 'index.json', 'blobs']);
  rmSync(rootfs, { recursive: true, force: true });
  rmSync(layerTar, { force: true });
  return { name: spec.name, archive, manifestDigest: manifestDesc.digest, configDigest: configDesc.digest };
}
