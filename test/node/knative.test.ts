/**
 * Issue 13 3g on the single-node cluster (containerd 1.6): a knative-serving namespace with a config-features
 * ConfigMap shaped as Knative ships it (labels, the example-checksum annotation, the `_example` block, other
 * flags); `helm install --set patchKnative=true` sets kubernetes.podspec-runtimeclassname, `helm uninstall` puts
 * the ConfigMap's data back exactly as it was. Between the two (issue 18 item 4), a Deployment shaped as Knative
 * Serving makes a revision's — a long-running WASM user-container under RuntimeClass crun with compat-smart, and a
 * plain queue-proxy-like sidecar beside it — runs both containers.
 */
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { DEFAULT_RUNTIME_CLASS, KNATIVE_FEATURE } from '../../lib/catalog/node-contract';
import { buildOciImage } from '../../demo/cluster/images/oci-image';
import { must, REPO } from '../../demo/cluster/process';
import { IMAGES } from '../../demo/cluster/cluster';
import { NodeCluster } from '../../demo/cluster/cluster';
import { helmInstall, helmUninstall, waitFor } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(10 * 60_000);

const { namespace: KN_NS, configMap: KN_CM, key: KN_KEY, value: KN_ON } = KNATIVE_FEATURE;

/** config-features as Knative Serving's release manifest has it (abridged `_example`). */
const CONFIG_FEATURES = {
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: KN_CM,
    namespace: KN_NS,
    labels: { 'app.kubernetes.io/name': 'knative-serving', 'app.kubernetes.io/component': 'controller', 'app.kubernetes.io/version': '1.16.0' },
    annotations: { 'knative.dev/example-checksum': '63a13754' },
  },
  data: {
    _example: [
      '################################',
      '#                              #',
      '#    EXAMPLE CONFIGURATION     #',
      '#                              #',
      '################################',
      '',
      '# Controls whether runtime class support is enabled.',
      '# 1. Enabled: enabling runtime class support',
      '# 2. Disabled: disabling runtime class support',
      `${KN_KEY}: "disabled"`,
      '',
    ].join('\n'),
    'kubernetes.podspec-affinity': 'enabled',
  },
};

async function configFeatures(h: NodeCluster): Promise<{ data: Record<string, string>; labels: Record<string, string>; annotations: Record<string, string> }> {
  const cm = JSON.parse(await h.kubectlOk(['-n', KN_NS, 'get', 'configmap', KN_CM, '-o', 'json']));
  return { data: cm.data ?? {}, labels: cm.metadata.labels ?? {}, annotations: cm.metadata.annotations ?? {} };
}

describe('Knative on a real node: patchKnative=true sets the flag, uninstall restores config-features', () => {
  const steps = clusterForFile(1);

  test('helm install with patchKnative=true enables kubernetes.podspec-runtimeclassname, nothing else changes', async () => {
    const h = steps.need();
    await h.kubectlOk(['create', 'namespace', KN_NS]);
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(CONFIG_FEATURES) });
    await helmInstall(h, 'crun-wasmtime', { patchKnative: 'true' });
    const after = await waitFor(h, `${KN_NS}/${KN_CM} ${KN_KEY}=${KN_ON}`, async () => {
      const cm = await configFeatures(h);
      return cm.data[KN_KEY] === KN_ON ? cm : undefined;
    }, 60_000);
    expect(after.data).toEqual({ ...CONFIG_FEATURES.data, [KN_KEY]: KN_ON });
    expect(after.labels).toEqual(CONFIG_FEATURES.metadata.labels);
    expect(after.annotations).toEqual(CONFIG_FEATURES.metadata.annotations);
    steps.mark('install');
  });

  test('a Knative-shaped revision: a long-running WASM user-container with a plain queue-proxy-like sidecar, both run', async () => {
    const h = steps.need('install');
    const build = mkdtempSync(join(tmpdir(), 'knawd-knative-wasm-'));
    try {
      must('/usr/bin/wat2wasm', [join(REPO, 'test/fixtures/wasm/service.wat'), '-o', join(build, 'service.wasm')]);
      const image = buildOciImage({ name: 'knawd.test/node/wasm-service:1', files: [{ path: '/service.wasm', from: join(build, 'service.wasm') }], entrypoint: ['/service.wasm'] }, build);
      h.node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', image.archive]);
    } finally {
      rmSync(build, { recursive: true, force: true });
    }
    // What Knative Serving's revision reconciler creates, abridged: its labels, the user-container and queue-proxy
    // containers, and the runtimeClassName the podspec-runtimeclassname flag lets through.
    const labels = { 'serving.knative.dev/service': 'hello', 'serving.knative.dev/revision': 'hello-00001', 'app': 'hello-00001' };
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hello-00001-deployment', namespace: 'default', labels },
      spec: {
        replicas: 1,
        selector: { matchLabels: { 'serving.knative.dev/revision': 'hello-00001' } },
        template: {
          metadata: { labels, annotations: { 'module.wasm.image/variant': 'compat-smart', 'serving.knative.dev/creator': 'dev@example.com' } },
          spec: {
            runtimeClassName: DEFAULT_RUNTIME_CLASS,
            terminationGracePeriodSeconds: 1,
            containers: [
              { name: 'user-container', image: 'knawd.test/node/wasm-service:1', imagePullPolicy: 'Never', ports: [{ name: 'user-port', containerPort: 8080 }] },
              { name: 'queue-proxy', image: IMAGES.busybox, imagePullPolicy: 'Never', command: ['/bin/busybox', 'httpd', '-f', '-p', '8012'], ports: [{ name: 'queue-port', containerPort: 8012 }] },
            ],
          },
        },
      },
    };
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(deployment) });
    await h.kubectlOk(['rollout', 'status', 'deployment/hello-00001-deployment', '--timeout=120s'], { timeoutMs: 130_000 });
    // Both keep running: nothing restarted a few seconds later, and the WASM program said it is up.
    await new Promise((r) => setTimeout(r, 5000));
    const [pod] = JSON.parse(await h.kubectlOk(['get', 'pods', '-l', 'serving.knative.dev/revision=hello-00001', '-o', 'json'])).items;
    const states = Object.fromEntries(
      (pod.status.containerStatuses as Array<{ name: string; ready: boolean; restartCount: number; state: Record<string, unknown> }>).map((c) => [c.name, [Object.keys(c.state)[0], c.ready, c.restartCount]]),
    );
    expect(states).toEqual({ 'user-container': ['running', true, 0], 'queue-proxy': ['running', true, 0] });
    expect((await h.kubectlOk(['logs', pod.metadata.name, '-c', 'user-container'])).trim()).toBe('wasm service ready');
    await h.kubectlOk(['delete', 'deployment', 'hello-00001-deployment', '--wait=true', '--timeout=60s']);
    await waitFor(h, 'the revision pod gone', async () => (JSON.parse(await h.kubectlOk(['get', 'pods', '-l', 'serving.knative.dev/revision=hello-00001', '-o', 'json'])).items.length === 0 ? true : undefined), 60_000);
  });

  test('helm uninstall restores config-features exactly', async () => {
    const h = steps.need('install');
    const r = await helmUninstall(h);
    expect(r.code).toBe(0);
    const restored = await waitFor(h, `${KN_NS}/${KN_CM} restored`, async () => {
      const cm = await configFeatures(h);
      return KN_KEY in cm.data ? undefined : cm;
    }, 60_000);
    expect(restored.data).toEqual(CONFIG_FEATURES.data);
    expect(restored.labels).toEqual(CONFIG_FEATURES.metadata.labels);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
