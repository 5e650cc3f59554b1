/**
 * One installer image as an OCI archive from its gzip'ed layers (called by assemble.sh once per build): layer 1
 * the tree every build's image shares, layer 2 that build's own files. The layers are made once and given as
 * files, so layer 1 is the same blob in every image of an architecture (a registry stores it once, a node that
 * switches engine pulls only the new layer 2). The config is what runtime-artifacts used to write with buildah:
 * the image runs the installer bundle with the image's own Node.js.
 *
 *   layered-image.ts ARCH NAME ARCHIVE LAYER.tar.gz...
 *
 * Reproducible: fixed dates, JSON in a fixed order, the archive's files in name order with fixed times and owners.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { gunzipSync } from 'zlib';

const [arch, name, archive, ...layers] = process.argv.slice(2);
if (!archive || layers.length === 0) throw new Error('usage: layered-image.ts ARCH NAME ARCHIVE LAYER.tar.gz...');

const sha256 = (data: Buffer): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;
const EPOCH = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 0) * 1000).toISOString().replace(/\.000Z$/, 'Z');
const layout = fs.mkdtempSync(path.join(path.dirname(archive), '.layout-'));
const blobs = path.join(layout, 'blobs', 'sha256');
fs.mkdirSync(blobs, { recursive: true });
function blob(data: Buffer): { digest: string; size: number } {
  const digest = sha256(data);
  fs.writeFileSync(path.join(blobs, digest.slice('sha256:'.length)), data);
  return { digest, size: data.length };
}

const layerDescs = layers.map((file) => {
  const data = fs.readFileSync(file);
  return { desc: { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...blob(data) }, diffId: sha256(gunzipSync(data)) };
});
const config = Buffer.from(
  JSON.stringify({
    created: EPOCH,
    architecture: arch,
    os: 'linux',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Entrypoint: ['node', '/usr/local/lib/knawd-installer.js'],
      Cmd: ['install'],
      WorkingDir: '/',
    },
    rootfs: { type: 'layers', diff_ids: layerDescs.map((l) => l.diffId) },
    history: layers.map((file) => ({ created: EPOCH, created_by: `runtime-artifacts/assemble.sh: ${path.basename(file)}` })),
  }),
);
const configDesc = { mediaType: 'application/vnd.oci.image.config.v1+json', ...blob(config) };
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: configDesc, layers: layerDescs.map((l) => l.desc) }));
const manifestDesc = blob(manifest);
fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
fs.writeFileSync(
  path.join(layout, 'index.json'),
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifestDesc, platform: { architecture: arch, os: 'linux' }, annotations: { 'org.opencontainers.image.ref.name': name } }],
  }),
);
fs.rmSync(archive, { force: true });
execFileSync('tar', ['--create', '--file', archive, '--directory', layout, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=go-w', 'oci-layout', 'index.json', 'blobs']);
fs.rmSync(layout, { recursive: true, force: true });
