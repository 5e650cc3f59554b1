/**
 * `npm run release` for real, into Debian's docker-registry on 127.0.0.1 (TLS with a CA this test makes), with a
 * cosign key this test makes: the images by their built digests, the chart with its values pinned to them and
 * Artifact Hub's metadata, each image's SBOM as cosign attaches it (valid CycloneDX), signatures that verify
 * with the key and fail with another key or on a modified image; a second run writes nothing; bad input is one
 * line, a non-zero exit and nothing pushed.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { builtImage } from '../../demo/cluster/images/built-image';
import { REPO } from '../../demo/cluster/process';
import type { ReleaseRecord } from '../../release/main';
import { RUNTIME_NAMES } from '../../lib/catalog';
import { toolPath } from '../support/tools';
import { freePort, LoopbackRegistry, startRegistry } from './loopback-registry';
import { schemaErrors } from './sbom-schema';

jest.setTimeout(30 * 60_000);

// Any request a client makes to an address other than loopback goes to a closed loopback port instead of the
// network (Go and skopeo never proxy loopback): the test fails rather than sends traffic elsewhere.
const ENV = { ...process.env, HTTPS_PROXY: 'http://127.0.0.1:9', HTTP_PROXY: 'http://127.0.0.1:9', NO_PROXY: '', no_proxy: '', COSIGN_PASSWORD: 'release-test' };

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[], env: NodeJS.ProcessEnv = ENV, cwd = REPO): Run {
  const r = spawnSync(command, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 20 * 60_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

function releaseRun(args: readonly string[], env: NodeJS.ProcessEnv = ENV): Run {
  return run(join(REPO, 'node_modules', '.bin', 'ts-node'), ['--transpile-only', join(REPO, 'release', 'main.ts'), ...args], env);
}

function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stdout.slice(-2000)}\n${r.stderr.slice(-3000)}`);
  return r;
}

/** The run failed with exactly one `release: error:` line, and it matches. */
function failedWith(r: Run, pattern: RegExp): void {
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('release: error:'));
  expect({ code: r.code, errors }).toEqual({ code: expect.any(Number), errors: [expect.stringMatching(pattern)] });
  expect(r.code).not.toBe(0);
}

let registry: LoopbackRegistry;
let keys: string;
let first: Run;
let released: ReleaseRecord;
const cleanups: Array<() => void> = [];

/** build/image/image.json's image indexes, as the build wrote them. */
const recordedIndex = () => builtImage().record.index;

const cosign = (args: readonly string[]): Run => run(toolPath('cosign'), args, { ...ENV, SSL_CERT_FILE: registry.caFile! });
const helm = (args: readonly string[]): Run => run(toolPath('helm'), [...args, '--ca-file', registry.caFile!]);
const keyArgs = (): string[] => ['--sign-key', join(keys, 'cosign.key')];

beforeAll(async () => {
  builtImage();
  keys = mkdtempSync(join(tmpdir(), 'knawd-release-keys-'));
  cleanups.push(() => rmSync(keys, { recursive: true, force: true }));
  ok(run(toolPath('cosign'), ['generate-key-pair'], ENV, keys), 'cosign generate-key-pair');
  // Another key pair: the wrong key.
  const other = join(keys, 'other');
  mkdirSync(other);
  ok(run(toolPath('cosign'), ['generate-key-pair'], ENV, other), 'cosign generate-key-pair (other)');
  registry = await startRegistry({ tls: true });
  cleanups.push(() => registry.stop());
  first = releaseRun(['--registry', `${registry.address}/knawd`, '--ca-file', registry.caFile!, ...keyArgs(), '--sign-key-url', 'https://example.invalid/cosign.pub', '--record', join(keys, 'release.json')]);
  ok(first, 'npm run release');
  released = JSON.parse(readFileSync(join(keys, 'release.json'), 'utf8')) as ReleaseRecord;
}, 60 * 60_000);

afterAll(() => {
  for (const c of cleanups.reverse()) c();
});

test('prints the helm install oci:// command, and the registry serves each image under the digest the build made', () => {
  const prefix = `${registry.address}/knawd`;
  expect(first.stdout.trim()).toBe(`helm install knawd-deployer oci://${prefix}/knawd-deployer --version 2.0.0 --ca-file ${registry.caFile} --namespace knawd --create-namespace`);
  const index = recordedIndex();
  // Every image as its OCI index (every architecture under one digest): the installer image of each ociType, the
  // WASI test image and the WASM service image.
  const expected: Record<string, string> = {
    ...Object.fromEntries(RUNTIME_NAMES.map((t) => [t, index.installerImages[t].digest])),
    wasi: index.wasiTestImage.digest,
    service: index.wasmServiceImage.digest,
  };
  expect(Object.fromEntries(released.images.map((i) => [i.key, i.digest]))).toEqual(expected);
  for (const i of released.images) {
    const inspect = ok(run('skopeo', ['inspect', '--raw', `docker://${i.repository}:${i.tag}`], { ...ENV, SSL_CERT_FILE: registry.caFile! }), 'skopeo inspect');
    expect(`sha256:${createHash('sha256').update(inspect.stdout).digest('hex')}`).toBe(i.digest);
    expect((JSON.parse(inspect.stdout) as { mediaType: string }).mediaType).toBe('application/vnd.oci.image.index.v1+json');
  }
  expect(released.images.map((i) => `${i.repository}:${i.tag}`)).toEqual([
    ...RUNTIME_NAMES.map((t) => `${prefix}/deployer:v2.0.0-${t}`),
    `${prefix}/wasi-hello:1`,
    `${prefix}/wasm-http:1`,
  ]);
});

test("the chart in the registry pins every ociType's installer index digest and renders each ociType's image by it", () => {
  const ref = `oci://${registry.address}/knawd/knawd-deployer`;
  const values = parse(ok(helm(['show', 'values', ref, '--version', '2.0.0']), 'helm show values').stdout) as { image: { repository: string; digests: Record<string, string> }; test: { image: string } };
  const installers = released.images.filter((i) => (RUNTIME_NAMES as readonly string[]).includes(i.key));
  const wasi = released.images.find((i) => i.key === 'wasi')!;
  expect(values.image.repository).toBe(`${registry.address}/knawd/deployer`);
  expect(values.image.digests).toEqual(Object.fromEntries(installers.map((i) => [i.key, i.digest])));
  expect(values.test.image).toBe(`${wasi.repository}@${wasi.digest}`);
  for (const installer of installers) {
    const rendered = ok(helm(['template', 'r', ref, '--version', '2.0.0', '--set', `ociType=${installer.key}`]), 'helm template').stdout;
    const images = [...new Set([...rendered.matchAll(/^\s+(?:- )?image: "?([^"\s]+)"?$/gm)].map((m) => m[1]))];
    expect(images.sort()).toEqual([`${installer.repository}@${installer.digest}`, values.test.image].sort());
  }
});

test('the chart carries Artifact Hub metadata: every image with its digest, license, links, changes, signKey', () => {
  const chart = parse(ok(helm(['show', 'chart', `oci://${registry.address}/knawd/knawd-deployer`, '--version', '2.0.0']), 'helm show chart').stdout) as { annotations: Record<string, string> };
  const a = chart.annotations;
  const wasi = released.images.find((i) => i.key === 'wasi')!;
  expect(parse(a['artifacthub.io/images'])).toEqual([
    ...RUNTIME_NAMES.map((t) => {
      const installer = released.images.find((i) => i.key === t)!;
      return { name: `deployer-${t}`, image: `${installer.repository}@${installer.digest}` };
    }),
    { name: 'wasi-hello', image: `${wasi.repository}@${wasi.digest}` },
  ]);
  expect(a['artifacthub.io/license']).toBe('Apache-2.0');
  expect(parse(a['artifacthub.io/links'])).toEqual([{ name: 'source', url: expect.stringMatching(/^https:\/\//) }]);
  const changes = parse(a['artifacthub.io/changes']) as Array<{ kind: string; description: string }>;
  expect(changes.length).toBeGreaterThan(0);
  for (const c of changes) expect(['added', 'changed', 'deprecated', 'removed', 'fixed', 'security']).toContain(c.kind);
  const pub = readFileSync(join(keys, 'cosign.pub'), 'utf8');
  const der = Buffer.from(pub.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  expect(parse(a['artifacthub.io/signKey'])).toEqual({ fingerprint: createHash('sha256').update(der).digest('hex').toUpperCase(), url: 'https://example.invalid/cosign.pub' });
});

test('each image has its SBOM attached (cosign download sbom): valid CycloneDX 1.6 naming that image digest', () => {
  for (const i of released.images) {
    const sbom = JSON.parse(ok(cosign(['download', 'sbom', `${i.repository}@${i.digest}`]), 'cosign download sbom').stdout) as { metadata: { component: { version: string } } };
    expect(schemaErrors(sbom)).toBe('');
    expect(sbom.metadata.component.version).toBe(i.digest);
  }
});

test('images, SBOMs and the chart verify with the public key (cosign verify --key)', () => {
  const pub = join(keys, 'cosign.pub');
  for (const i of released.images) {
    ok(cosign(['verify', '--key', pub, '--insecure-ignore-tlog=true', `${i.repository}@${i.digest}`]), `cosign verify ${i.repository}`);
    ok(cosign(['verify', '--key', pub, '--insecure-ignore-tlog=true', '--attachment', 'sbom', `${i.repository}@${i.digest}`]), `cosign verify --attachment sbom ${i.repository}`);
  }
  ok(cosign(['verify', '--key', pub, '--insecure-ignore-tlog=true', `${released.chart.reference}@${released.chart.digest}`]), 'cosign verify of the chart');
});

test('verification fails with another key', () => {
  const installer = released.images[0];
  const r = cosign(['verify', '--key', join(keys, 'other', 'cosign.pub'), '--insecure-ignore-tlog=true', `${installer.repository}@${installer.digest}`]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/no matching signatures|invalid signature/i);
});

test('a second release of the same build writes nothing to the registry', () => {
  const before = registry.contents();
  expect(before.length).toBeGreaterThan(10);
  const again = ok(releaseRun(['--registry', `${registry.address}/knawd`, '--ca-file', registry.caFile!, ...keyArgs(), '--sign-key-url', 'https://example.invalid/cosign.pub', '--record', join(keys, 'again.json')]), 'npm run release (again)');
  expect(again.stderr).toContain('the registry already held this release: nothing pushed');
  expect(again.stdout).toBe(first.stdout);
  expect(readFileSync(join(keys, 'again.json'), 'utf8')).toBe(readFileSync(join(keys, 'release.json'), 'utf8').replace(/"pushed": \[[^\]]*\]/, '"pushed": []'));
  expect(registry.contents()).toEqual(before);
});

test('a modified image under the released tag fails verification', () => {
  const installer = released.images[0];
  // The tag now names other content (the WASI image's bytes): what a tampered registry would serve.
  ok(run('skopeo', ['copy', '--quiet', `oci-archive:${builtImage().wasi.archive}`, `docker://${installer.repository}:${installer.tag}`], { ...ENV, SSL_CERT_FILE: registry.caFile! }), 'skopeo copy');
  const r = cosign(['verify', '--key', join(keys, 'cosign.pub'), '--insecure-ignore-tlog=true', `${installer.repository}:${installer.tag}`]);
  expect(r.code).not.toBe(0);
  expect(r.stderr).toMatch(/no signatures found|no matching signatures/i);
});

describe('bad input: one line, a non-zero exit, nothing pushed', () => {
  test.each([
    ['a scheme', 'https://127.0.0.1:5000/knawd', /has a scheme/],
    ['upper case', '127.0.0.1:5000/Knawd', /path component 'Knawd'/],
    ['a tag', '127.0.0.1:5000/knawd:v1', /path component 'knawd:v1'/],
    ['no host', '/knawd', /does not start with a host/],
  ])('a registry reference with %s', (_, reference, pattern) => {
    failedWith(releaseRun(['--registry', reference]), pattern);
  });

  test('an unreachable registry', async () => {
    const port = await freePort();
    failedWith(releaseRun(['--registry', `127.0.0.1:${port}/knawd`, '--plain-http']), new RegExp(`cannot reach the registry at http://127.0.0.1:${port}/v2/: .*ECONNREFUSED`));
  });

  test('a registry that refuses the push', async () => {
    const readOnly = await startRegistry({ tls: false, readOnly: true });
    cleanups.push(() => readOnly.stop());
    failedWith(releaseRun(['--registry', `${readOnly.address}/knawd`, '--plain-http']), /pushing .*deployer:v2.0.0-crun-wasmedge failed: .*(read-only|unsupported|denied|405|503)/i);
    expect(readOnly.contents().filter((f) => f.includes('_manifests'))).toEqual([]);
  });

  test('a key that is not a cosign key, and a cosign key with the wrong password', async () => {
    const plain = await startRegistry({ tls: false });
    cleanups.push(() => plain.stop());
    const notKey = join(keys, 'not-a-key');
    writeFileSync(notKey, 'hello\n');
    failedWith(releaseRun(['--registry', `${plain.address}/knawd`, '--plain-http', '--sign-key', notKey]), /--sign-key .*not-a-key is not a cosign private key/);
    failedWith(releaseRun(['--registry', `${plain.address}/knawd`, '--plain-http', ...keyArgs()], { ...ENV, COSIGN_PASSWORD: 'wrong' }), /is not a cosign private key that COSIGN_PASSWORD unlocks/);
    expect(plain.contents()).toEqual([]);
  });
});
