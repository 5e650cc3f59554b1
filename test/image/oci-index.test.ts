/**
 * The index composition of `npm run image` (runtime-artifacts/oci-index.ts) with and without the images of the
 * architectures without a build (build/image/unbuilt.json, which build-image.sh's step_unbuilt_images writes
 * before the indexes): run on the build's own per-architecture records and archives without such a file, every
 * index lists amd64's and arm64's manifest only; given one (here an s390x image made with runtime-artifacts/layered-image.ts),
 * every installer index — and only those — lists that image's manifest after amd64's and arm64's, and image.json
 * copies the file into `unbuilt`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUNTIME_NAMES } from '../../lib/catalog';
import { builtImage, IMAGE_OUT, ImageRecord } from '../../demo/cluster/images/built-image';
import { manifestOf } from '../support/oci-layers';
import { REPO } from '../support/tools';

jest.setTimeout(10 * 60_000);

let base = '';
let record: ImageRecord;

beforeAll(() => {
  record = builtImage().record;
  base = mkdtempSync(join(tmpdir(), 'knawd-oci-index-'));
}, 60 * 60_000);

afterAll(() => {
  if (base) rmSync(base, { recursive: true, force: true });
});

const tsNode = join(REPO, 'node_modules/.bin/ts-node');

/** oci-index.ts over this build's amd64 and arm64 assemblies, into `out`; its image.json. */
function compose(out: string, unbuilt: string): ImageRecord {
  execFileSync(tsNode, ['--transpile-only', 'runtime-artifacts/oci-index.ts', out, unbuilt, `amd64=${IMAGE_OUT}`, `arm64=${join(IMAGE_OUT, 'arm64')}`], { cwd: REPO, stdio: 'pipe' });
  return JSON.parse(readFileSync(join(out, 'image.json'), 'utf8')) as ImageRecord;
}

function indexManifests(archive: string): Array<[string, string]> {
  const member = (name: string): Buffer => execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
  const [top] = (JSON.parse(member('index.json').toString('utf8')) as { manifests: Array<{ digest: string }> }).manifests;
  const list = JSON.parse(member(`blobs/sha256/${top.digest.slice('sha256:'.length)}`).toString('utf8')) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
  return list.manifests.map((m) => [m.platform.architecture, m.digest]);
}

test('without unbuilt.json: each installer index lists amd64 and arm64 only, no `unbuilt`; the test images\' indexes are the build\'s', () => {
  const out = join(base, 'without');
  const again = compose(out, '-');
  for (const t of RUNTIME_NAMES) {
    expect(indexManifests(join(out, again.index.installerImages[t].archive))).toEqual([
      ['amd64', record.architectures.amd64.installerImages[t].digest],
      ['arm64', record.architectures.arm64.installerImages[t].digest],
    ]);
  }
  expect(again.unbuilt).toBeUndefined();
  expect(again.index.wasiTestImage).toEqual(record.index.wasiTestImage);
  expect(again.index.wasmServiceImage).toEqual(record.index.wasmServiceImage);
});

test("with unbuilt.json: every installer index lists the unbuilt image after amd64 and arm64, the test images' indexes do not; image.json copies it", () => {
  const dir = join(base, 'with');
  const layer = join(dir, 'rootfs');
  mkdirSync(join(layer, 'vendor'), { recursive: true });
  writeFileSync(join(layer, 'vendor/artifacts.json'), '{"schema":1,"builds":{},"targets":{}}\n');
  execFileSync('sh', ['-c', 'tar --create --directory "$0" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner vendor | gzip -n >"$1"', layer, join(dir, 'layer.tar.gz')]);
  mkdirSync(join(dir, 's390x'));
  const archive = 's390x/knawd-deployer-unbuilt.oci.tar';
  execFileSync(tsNode, ['--transpile-only', 'runtime-artifacts/layered-image.ts', 's390x', 'quay.io/knawd/deployer:unbuilt', join(dir, archive), join(dir, 'layer.tar.gz')], { cwd: REPO, stdio: 'pipe' });
  const m = manifestOf(join(dir, archive));
  const unbuilt = { s390x: { name: 'quay.io/knawd/deployer:unbuilt', archive, digest: m.digest, config: m.config.digest, layers: 1, compressedBytes: m.size + m.config.size + m.layers[0].size, uncompressedBytes: 0 } };
  writeFileSync(join(dir, 'unbuilt.json'), JSON.stringify(unbuilt));
  const out = join(dir, 'out');
  const composed = compose(out, join(dir, 'unbuilt.json'));
  expect(composed.unbuilt).toEqual(unbuilt);
  for (const t of RUNTIME_NAMES) {
    const index = composed.index.installerImages[t];
    expect(indexManifests(join(out, index.archive))).toEqual([
      ['amd64', record.architectures.amd64.installerImages[t].digest],
      ['arm64', record.architectures.arm64.installerImages[t].digest],
      ['s390x', m.digest],
    ]);
    expect(index.manifests.s390x).toEqual({ digest: m.digest, compressedBytes: unbuilt.s390x.compressedBytes });
  }
  expect(composed.index.wasiTestImage).toEqual(record.index.wasiTestImage);
  expect(composed.index.wasmServiceImage).toEqual(record.index.wasmServiceImage);
});
