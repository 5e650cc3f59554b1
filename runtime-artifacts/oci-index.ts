/**
 * One OCI image index per image over the architectures' images (called by build-image.sh after every
 * architecture's assembly): for each of the installer, the WASI test image and the WASM HTTP service, an OCI
 * archive whose index.json names (ref.name) one image index listing each architecture's manifest with its
 * platform; the blobs are the architectures' own, unchanged. Writes OUT/<archive> for each image and OUT/image.json:
 * the amd64 record as before (what the local tests import), each architecture's record, and the indexes.
 *
 *   oci-index.ts OUT ARCH=IMAGES_DIR...   (IMAGES_DIR: an architecture's assembly, with its image.json and archives)
 *
 * Reproducible: the index's JSON is written in a fixed order (architectures as given), the archive's files in
 * name order with fixed times and owners; the same manifests give the same index digest.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const [out, ...pairs] = process.argv.slice(2);
if (!out || pairs.length === 0) throw new Error('usage: oci-index.ts OUT ARCH=IMAGES_DIR...');
const arches = pairs.map((p) => {
  const [arch, dir] = p.split('=');
  if (!arch || !dir) throw new Error(`${p}: expected ARCH=IMAGES_DIR`);
  return { arch, dir, record: JSON.parse(fs.readFileSync(path.join(dir, 'image.json'), 'utf8')) as ImageRecord };
});

interface Described {
  readonly name: string;
  readonly archive: string;
  readonly digest: string;
  readonly compressedBytes: number;
}
interface ImageRecord {
  readonly image: Described;
  readonly wasiTestImage: Described;
  readonly wasmServiceImage: Described;
  readonly packages: readonly string[];
}
const KINDS = ['image', 'wasiTestImage', 'wasmServiceImage'] as const;
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

function indexOf(kind: (typeof KINDS)[number]) {
  const archive = arches[0].record[kind].archive;
  const name = arches[0].record[kind].name;
  const layout = fs.mkdtempSync(path.join(out, '.layout-'));
  const manifests = arches.map(({ arch, dir, record }) => {
    const d = record[kind];
    if (d.name !== name || d.archive !== archive) throw new Error(`${arch}: ${kind} is ${d.name} in ${d.archive}, not ${name} in ${archive}`);
    // Blobs are content-addressed: the architectures' layouts unpack into one (a shared layer is stored once).
    execFileSync('tar', ['-xf', path.join(dir, archive), '-C', layout, 'blobs']);
    const size = fs.statSync(path.join(layout, 'blobs/sha256', d.digest.replace(/^sha256:/, ''))).size;
    return { mediaType: MANIFEST, digest: d.digest, size, platform: { architecture: arch, os: 'linux' } };
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests }));
  const digest = sha256(index);
  fs.writeFileSync(path.join(layout, 'blobs/sha256', digest.replace(/^sha256:/, '')), index);
  fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  fs.writeFileSync(
    path.join(layout, 'index.json'),
    JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [{ mediaType: INDEX, digest, size: index.length, annotations: { 'org.opencontainers.image.ref.name': name } }] }),
  );
  const file = path.join(out, archive);
  fs.rmSync(file, { force: true });
  execFileSync('tar', ['--create', '--file', file, '--directory', layout, '--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=go-w', 'oci-layout', 'index.json', 'blobs']);
  fs.rmSync(layout, { recursive: true, force: true });
  return { name, archive, digest, manifests: Object.fromEntries(arches.map(({ arch, record }, i) => [arch, { digest: manifests[i].digest, compressedBytes: record[kind].compressedBytes }])) };
}

fs.mkdirSync(out, { recursive: true });
const amd64 = arches.find((a) => a.arch === 'amd64');
if (!amd64) throw new Error('no amd64 assembly: the local tests import its archives');
const record = {
  ...amd64.record,
  architectures: Object.fromEntries(arches.map(({ arch, record }) => [arch, record])),
  index: Object.fromEntries(KINDS.map((k) => [k, indexOf(k)])),
};
fs.writeFileSync(path.join(out, 'image.json'), JSON.stringify(record, null, 2) + '\n');
