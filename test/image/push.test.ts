/**
 * The push instructions of docs/image.md, for real: `skopeo copy oci-archive:<archive> docker://<registry>/…` into Debian's
 * docker-registry (distribution) listening on loopback only, then the digest the registry serves is the one
 * image.json names — what `image.digest` must be set to.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';

jest.setTimeout(20 * 60_000);

let registry: ChildProcess | undefined;
let dir: string | undefined;
let address = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
  });
}

function skopeo(args: readonly string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('skopeo', args, { encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 16 << 20, env: { ...process.env, NO_PROXY: '127.0.0.1', no_proxy: '127.0.0.1' } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

beforeAll(async () => {
  builtImage();
  dir = mkdtempSync(join(tmpdir(), 'knawd-registry-'));
  const port = await freePort();
  address = `127.0.0.1:${port}`;
  writeFileSync(join(dir, 'config.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\nhttp:\n  addr: ${address}\n`);
  registry = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const exited = new Promise<never>((_, reject) => registry?.once('exit', (code) => reject(new Error(`docker-registry exited ${code} at start-up (apt-get install docker-registry: npm run tools does)`))));
  const deadline = Date.now() + 20_000;
  while (!(await Promise.race([answers(port), exited]))) {
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${address} within 20 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 60 * 60_000);

afterAll(() => {
  registry?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

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
