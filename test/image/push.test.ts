/**
 * The push instructions of docs/image.md, for real: `skopeo copy oci-archive:<archive> docker://<registry>/…` into Debian's
 * docker-registry (distribution) listening on loopback only, then the digest the registry serves is the one
 * image.json names — what `image.digests` must be set to; the same with `skopeo copy --all` for an OCI image index
 * over amd64 and arm64 (build/image/index/), whose digest the registry serves for both architectures. Each
 * ociType's installer image is pushed under its own tag of one repository, as a release does.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { RUNTIME_NAMES } from '../../lib/catalog';
import { builtImage, IMAGE_OUT } from '../../demo/cluster/images/built-image';
import { LoopbackRegistry, startRegistry } from '../release/loopback-registry';

jest.setTimeout(20 * 60_000);

let registry: LoopbackRegistry | undefined;
let address = '';

function skopeo(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 16 << 20, env: { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

beforeAll(async () => {
  builtImage();
  registry = await startRegistry({ tls: false });
  address = registry.address;
}, 60 * 60_000);

afterAll(() => registry?.stop());

test.each([...RUNTIME_NAMES, 'WASI test'] as const)('the %s image pushes with skopeo copy oci-archive:… docker://… and keeps its digest', (which) => {
  const image = builtImage();
  const { archive, digest } = which === 'WASI test' ? image.wasi : image.installers[which];
  const ref = `docker://${address}/knawd/${which === 'WASI test' ? 'wasi-hello:test' : `knawd-deployer:test-${which}`}`;
  const copy = skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${archive}`, ref]);
  if (copy.code !== 0) throw new Error(`skopeo copy failed: ${copy.stderr}`);
  const inspect = skopeo(['inspect', '--tls-verify=false', ref]);
  if (inspect.code !== 0) throw new Error(`skopeo inspect failed: ${inspect.stderr}`);
  expect(JSON.parse(inspect.stdout)).toMatchObject({ Digest: digest, Architecture: 'amd64', Os: 'linux' });
});

test.each([...RUNTIME_NAMES, 'wasiTestImage'] as const)('the %s index (amd64 + arm64) pushes with skopeo copy --all and the registry serves the index digest image.json names', (kind) => {
  const { index: indexes } = builtImage().record;
  const index = kind === 'wasiTestImage' ? indexes.wasiTestImage : indexes.installerImages[kind];
  const ref = `docker://${address}/knawd/${kind === 'wasiTestImage' ? 'wasi-hello:index' : `knawd-deployer:index-${kind}`}`;
  const copy = skopeo(['copy', '--all', '--dest-tls-verify=false', `oci-archive:${join(IMAGE_OUT, 'index', index.archive)}`, ref]);
  if (copy.code !== 0) throw new Error(`skopeo copy --all failed: ${copy.stderr}`);
  const raw = skopeo(['inspect', '--raw', '--tls-verify=false', ref]);
  if (raw.code !== 0) throw new Error(`skopeo inspect --raw failed: ${raw.stderr}`);
  expect(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`).toBe(index.digest);
  const list = JSON.parse(raw.stdout) as { manifests: Array<{ digest: string; platform: { architecture: string } }> };
  expect(Object.fromEntries(list.manifests.map((m) => [m.platform.architecture, m.digest]))).toEqual(Object.fromEntries(Object.entries(index.manifests).map(([arch, m]) => [arch, m.digest])));
  for (const arch of ['amd64', 'arm64']) {
    const inspect = skopeo(['inspect', '--tls-verify=false', '--override-arch', arch, ref]);
    if (inspect.code !== 0) throw new Error(`skopeo inspect --override-arch ${arch} failed: ${inspect.stderr}`);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ Architecture: arch, Os: 'linux' });
  }
});
