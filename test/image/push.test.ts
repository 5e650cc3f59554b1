/**
 * The push instructions of docs/image.md, for real: `skopeo copy oci-archive:<archive> docker://<registry>/…` into Debian's
 * docker-registry (distribution) listening on loopback only, then the digest the registry serves is the one
 * image.json names — what `image.digest` must be set to.
 */
import { spawnSync } from 'node:child_process';
import { builtImage } from '../../demo/cluster/images/built-image';
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

test.each(['installer', 'WASI test'] as const)('the %s image pushes with skopeo copy oci-archive:… docker://… and keeps its digest', (which) => {
  const image = builtImage();
  const { archive, digest } = which === 'installer' ? image : image.wasi;
  const ref = `docker://${address}/knawd/${which === 'installer' ? 'knawd-deployer' : 'wasi-hello'}:test`;
  const copy = skopeo(['copy', '--dest-tls-verify=false', `oci-archive:${archive}`, ref]);
  if (copy.code !== 0) throw new Error(`skopeo copy failed: ${copy.stderr}`);
  const inspect = skopeo(['inspect', '--tls-verify=false', ref]);
  if (inspect.code !== 0) throw new Error(`skopeo inspect failed: ${inspect.stderr}`);
  expect(JSON.parse(inspect.stdout)).toMatchObject({ Digest: digest, Architecture: 'amd64', Os: 'linux' });
});
