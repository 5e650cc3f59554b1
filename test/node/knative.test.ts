/**
 * Issue 13 3g on the single-node cluster (containerd 1.6): a knative-serving namespace with a config-features
 * ConfigMap shaped as Knative ships it (labels, the example-checksum annotation, the `_example` block, other
 * flags); `helm install --set patchKnative=true` sets kubernetes.podspec-runtimeclassname, `helm uninstall` puts
 * the ConfigMap's data back exactly as it was.
 */
import { KNATIVE_FEATURE } from '../../lib/catalog/node-contract';
import { NodeCluster } from '../support/node/cluster';
import { helmInstall, helmUninstall, waitFor } from '../support/node/product';
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
