/**
 * The path every user takes (issue 30), on the real single-node cluster with containerd 2.x and nothing
 * imported: a registry of the node's own (docker-registry inside its network namespace, TLS with a CA made for
 * the run, containerd pointed at it by hosts.toml), `npm run release` into it from inside the namespace,
 * `helm install oci://…` of the released chart, and the kubelet pulling the ociType's installer image index, the
 * WASI test image (`helm test`) and the WASM service image by digest. The harness's pause image comes from the same registry.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_RUNTIME_CLASS, RUNTIME_NAMES } from '../../lib/catalog';
import { builtImage } from '../../demo/cluster/images/built-image';
import { NodeCluster } from '../../demo/cluster/cluster';
import { helmTest, waitFor } from '../../demo/cluster/product';
import { helmInstallFromRegistry, NODE_REGISTRY, pulledBy, RegistryCertificates, releaseIntoNode, startRegistryNodeCluster } from '../../demo/cluster/registry';
import type { ReleaseRecord } from '../../release/main';

jest.setTimeout(15 * 60_000);

let dir: string;
let h: NodeCluster;
let certs: RegistryCertificates;
let stop: (() => Promise<string[]>) | undefined;
let released: ReleaseRecord;

/** build/image/image.json's image indexes, as the build wrote them. */
const recordedIndex = () => builtImage().record.index;

/** The released image of `key` (an ociType's installer image, wasi or service). */
function releasedImage(key: string): ReleaseRecord['images'][number] {
  const found = released.images.find((i) => i.key === key);
  if (!found) throw new Error(`the release record has no image ${key}: ${released.images.map((i) => i.key).join(', ')}`);
  return found;
}

beforeAll(async () => {
  builtImage();
  dir = mkdtempSync(join(tmpdir(), 'knawd-node-registry-'));
  ({ h, certs, stop } = await startRegistryNodeCluster(dir));
}, 10 * 60_000);

afterAll(async () => {
  const left = (await stop?.()) ?? [];
  rmSync(dir, { recursive: true, force: true });
  expect(left).toEqual([]);
});

test('npm run release inside the node network pushes into its registry and prints the helm install oci:// command', () => {
  const { stdout, record } = releaseIntoNode(h, certs);
  expect(stdout.trim()).toBe(`helm install knawd-deployer oci://${NODE_REGISTRY}/knawd/knawd-deployer --version 2.0.0 --ca-file ${certs.ca} --namespace knawd --create-namespace`);
  // Each image's OCI index (every architecture): the kubelet pulls it by that digest and containerd takes the node's manifest.
  const index = recordedIndex();
  expect(record.images.map((i) => [i.key, i.digest])).toEqual([
    ...RUNTIME_NAMES.map((t) => [t, index.installerImages[t].digest]),
    ['wasi', index.wasiTestImage.digest],
    ['service', index.wasmServiceImage.digest],
  ]);
  released = record;
});

test("helm install oci:// installs the node: the kubelet pulls the ociType's installer index by digest, only its amd64 manifest and no other ociType's image; nothing was imported", async () => {
  const ociType = 'crun-wasmtime';
  await helmInstallFromRegistry(h, certs, ociType);
  const installer = releasedImage(ociType);
  const pull = await pulledBy(h, `${installer.repository}@${installer.digest}`);
  // What the kubelet reports is the size of the node's platform image: amd64's manifest of that index.
  const amd64 = recordedIndex().installerImages[ociType].manifests.amd64.compressedBytes;
  expect(pull.bytes / amd64).toBeGreaterThan(0.95);
  expect(pull.bytes / amd64).toBeLessThan(1.05);
  const images = h.node.ctr(['-n', 'k8s.io', 'images', 'ls', '-q']).split('\n').filter(Boolean);
  expect(images.filter((i) => !i.startsWith(`${NODE_REGISTRY}/`) && !i.startsWith('sha256:'))).toEqual([]);
  expect(images).toContain(`${installer.repository}@${installer.digest}`);
  const others = RUNTIME_NAMES.filter((t) => t !== ociType).map((t) => releasedImage(t).digest);
  expect(images.filter((i) => others.some((d) => i.endsWith(d)))).toEqual([]);
});

test('helm test pulls the WASI test image by digest and passes', async () => {
  expect(await helmTest(h)).toMatch(/Phase:\s+Succeeded/);
  const wasi = releasedImage('wasi');
  await pulledBy(h, `${wasi.repository}@${wasi.digest}`);
});

test('a pod of the WASM service image pulls it by digest and runs it', async () => {
  const service = releasedImage('service');
  const image = `${service.repository}@${service.digest}`;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'wasm-http', namespace: 'default' },
    spec: { runtimeClassName: DEFAULT_RUNTIME_CLASS, containers: [{ name: 'http', image, env: [{ name: 'PORT', value: '8080' }] }] },
  };
  await h.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify(pod) });
  await pulledBy(h, image);
  await waitFor(h, 'the WASM service pod Running', async () => ((await h.kubectlOk(['get', 'pod', 'wasm-http', '-o', 'jsonpath={.status.phase}'])).trim() === 'Running' ? true : undefined), 120_000);
});
