/**
 * The multi-arch installer image will be an OCI index (one archive, index.json naming the index): the release
 * pushes it whole, under the index's digest, with every manifest it lists (skopeo copy --all), and a second push
 * writes nothing. Made here from the WASI test image wrapped in an index of its own.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';
import { archiveDigest, Connection, pushImage, rawManifest, sha256, Tools } from '../../release/registry';
import { toolPath } from '../support/tools';
import { LoopbackRegistry, startRegistry } from './loopback-registry';

jest.setTimeout(10 * 60_000);

let registry: LoopbackRegistry;
let dir: string;

beforeAll(async () => {
  builtImage();
  dir = mkdtempSync(join(tmpdir(), 'knawd-oci-index-'));
  registry = await startRegistry({ tls: false });
});

afterAll(() => {
  registry?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** The one-image archive `archive` as an archive whose index.json names an image index listing that image. */
function wrapInIndex(archive: string, out: string): { index: string; manifest: string } {
  const layout = join(dir, 'layout');
  mkdirSync(layout);
  execFileSync('tar', ['-xf', archive, '-C', layout]);
  const top = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8')) as { schemaVersion: number; manifests: Array<Record<string, unknown>> };
  const { annotations, ...manifest } = top.manifests[0];
  const inner = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: [{ ...manifest, platform: { architecture: 'amd64', os: 'linux' } }] }));
  const digest = `sha256:${createHash('sha256').update(inner).digest('hex')}`;
  writeFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)), inner);
  writeFileSync(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.index.v1+json', digest, size: inner.length, annotations }] }));
  execFileSync('tar', ['-cf', out, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
  return { index: digest, manifest: String(manifest.digest) };
}

test('an OCI index is pushed whole under its own digest, and pushing it again writes nothing', () => {
  const archive = join(dir, 'index.oci.tar');
  const { index, manifest } = wrapInIndex(builtImage().wasi.archive, archive);
  expect(archiveDigest(archive)).toBe(index);
  const conn: Connection = { registry: `${registry.address}/knawd`, plainHttp: true };
  const tools: Tools = { skopeo: 'skopeo', helm: toolPath('helm'), cosign: toolPath('cosign') };
  const ref = `${conn.registry}/wasi-hello:1`;
  expect(pushImage(conn, tools, archive, ref, index)).toBe(true);
  const served = rawManifest(conn, tools, ref)!;
  expect(sha256(served)).toBe(index);
  expect((JSON.parse(served) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest)).toEqual([manifest]);
  expect(sha256(rawManifest(conn, tools, `${conn.registry}/wasi-hello@${manifest}`)!)).toBe(manifest);
  const before = registry.contents();
  expect(pushImage(conn, tools, archive, ref, index)).toBe(false);
  expect(registry.contents()).toEqual(before);
});
