/**
 * One OCI image index per image over the architectures' images (called by build-image.sh after every
 * architecture's assembly): for each installer image (one per build), the WASI test image and the WASM HTTP
 * service, an OCI archive whose index.json names (ref.name) one image index listing each architecture's manifest
 * with its platform; the blobs are the architectures' own, unchanged. Every installer index also lists the image
 * of each architecture without a build (UNBUILT_FILE, written by build-image.sh's step_unbuilt_images when it
 * ran: `{ "<arch>": ImageArchive }`, archives relative to the file's directory): the same manifest in each.
 * Writes OUT/<archive> for each image and OUT/image.json: the amd64 record (what the local tests import), each
 * architecture's record, the unbuilt images' records as given (`unbuilt`), and the indexes.
 *
 *   oci-index.ts OUT UNBUILT_FILE|- ARCH=IMAGES_DIR...   (IMAGES_DIR: an architecture's assembly, with its image.json and archives)
 *
 * Reproducible: the index's JSON is written in a fixed order (architectures as given, then the unbuilt ones in
 * the file's order), the archive's files in name order with fixed times and owners; the same manifests give the
 * same index digest.
 */
import { execFileSync } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';

const [out, unbuiltFile, ...pairs] = process.argv.slice(2);
if (!out || !unbuiltFile || pairs.length === 0) throw new Error('usage: oci-index.ts OUT UNBUILT_FILE|- ARCH=IMAGES_DIR...');

interface Described {
  readonly name: string;
  readonly archive: string;
  readonly digest: string;
  readonly compressedBytes: number;
}
interface ImageRecord {
  readonly installerImages: Readonly<Record<string, Described>>;
  readonly wasiTestImage: Described;
  readonly wasmServiceImage: Described;
  readonly packages: readonly string[];
}
/** One architecture's image of an index: its record and the archive that holds its blobs. */
interface Member {
  readonly arch: string;
  readonly image: Described;
  readonly archive: string;
}

const arches = pairs.map((p) => {
  const [arch, dir] = p.split('=');
  if (!arch || !dir) throw new Error(`${p}: expected ARCH=IMAGES_DIR`);
  return { arch, dir, record: JSON.parse(fs.readFileSync(path.join(dir, 'image.json'), 'utf8')) as ImageRecord };
});
const unbuilt = unbuiltFile === '-' ? {} : (JSON.parse(fs.readFileSync(unbuiltFile, 'utf8')) as Record<string, Described>);
const unbuiltMembers: Member[] = Object.entries(unbuilt).map(([arch, image]) => ({ arch, image, archive: path.join(path.dirname(unbuiltFile), image.archive) }));
const INDEX = 'application/vnd.oci.image.index.v1+json';
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

const sha256 = (data: Buffer | string): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

/** The index named `name`, written as OUT/`archive`, over `members` (each architecture's image). */
function indexOf(name: string, archive: string, members: readonly Member[]) {
  const layout = fs.mkdtempSync(path.join(out, '.layout-'));
  const manifests = members.map(({ arch, image, archive: from }) => {
    // Blobs are content-addressed: the architectures' layouts unpack into one (a shared layer is stored once).
    execFileSync('tar', ['-xf', from, '-C', layout, 'blobs']);
    const size = fs.statSync(path.join(layout, 'blobs/sha256', image.digest.replace(/^sha256:/, ''))).size;
    return { mediaType: MANIFEST, digest: image.digest, size, platform: { architecture: arch, os: 'linux' } };
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
  return { name, archive, digest, manifests: Object.fromEntries(members.map(({ arch, image }) => [arch, { digest: image.digest, compressedBytes: image.compressedBytes }])) };
}

/** The index of one image over the built architectures (`pick` gives each architecture's record of it), plus `extra`. */
function builtIndex(what: string, pick: (r: ImageRecord) => Described | undefined, extra: readonly Member[] = []) {
  const members = arches.map(({ arch, dir, record }) => {
    const image = pick(record);
    if (!image) throw new Error(`${arch}: no ${what} in ${dir}/image.json`);
    return { arch, image, archive: path.join(dir, image.archive) };
  });
  const { name, archive } = members[0].image;
  for (const { arch, image } of members) if (image.name !== name || image.archive !== archive) throw new Error(`${arch}: ${what} is ${image.name} in ${image.archive}, not ${name} in ${archive}`);
  return indexOf(name, archive, [...members, ...extra]);
}

fs.mkdirSync(out, { recursive: true });
const amd64 = arches.find((a) => a.arch === 'amd64');
if (!amd64) throw new Error('no amd64 assembly: the local tests import its archives');
for (const arch of Object.keys(unbuilt)) if (arches.some((a) => a.arch === arch)) throw new Error(`${unbuiltFile}: ${arch} is a built architecture`);
const builds = Object.keys(amd64.record.installerImages);
// amd64's own record: what its assembly wrote (a combined image.json given as amd64's also has the parts made here).
const { architectures: _architectures, unbuilt: _unbuilt, index: _index, ...amd64Record } = amd64.record as ImageRecord & Record<'architectures' | 'unbuilt' | 'index', unknown>;
const record = {
  ...amd64Record,
  architectures: Object.fromEntries(arches.map(({ arch, record }) => [arch, record])),
  ...(unbuiltFile === '-' ? {} : { unbuilt }),
  index: {
    installerImages: Object.fromEntries(builds.map((b) => [b, builtIndex(`installer image ${b}`, (r) => r.installerImages[b], unbuiltMembers)])),
    wasiTestImage: builtIndex('WASI test image', (r) => r.wasiTestImage),
    wasmServiceImage: builtIndex('WASM service image', (r) => r.wasmServiceImage),
  },
};
fs.writeFileSync(path.join(out, 'image.json'), JSON.stringify(record, null, 2) + '\n');
