/**
 * Real Knative Serving on the single-node cluster (containerd 2.x), issue 24 items 3 and 4: controller, webhook,
 * activator, autoscaler and queue-proxy built from knative.dev/serving (KNATIVE_SERVING_VERSION), loaded from
 * Knative's own config/core (demo/cluster/knative.ts), and the WASM HTTP service image (`npm run image`) as the
 * revisions' user container under the chart's RuntimeClass, on WasmEdge (the engine whose socket API can serve).
 *
 *  - Knative's own webhook refuses `runtimeClassName` while kubernetes.podspec-runtimeclassname is as Knative ships
 *    it, and admits it once `helm install --set patchKnative=true` has enabled it (no test writes the flag);
 *  - a Service naming `runtimeClassName: crun`, and one naming none (config-deployment's runtime-class-name, the
 *    chart's knative.runtimeClassName): each Revision becomes Ready with queue-proxy running natively beside the
 *    module, and a GET through the revision's Kubernetes Service is answered by the module;
 *  - scale to zero and back: once the revision has no pod, a GET through the activator is answered by a new one;
 *  - helm uninstall gives config-features and config-deployment back as Knative had them.
 *
 * config-autoscaler is tuned through Knative's own ConfigMap: for test speed (AUTOSCALER_TUNING) and for a cluster
 * without DNS (WITHOUT_CLUSTER_DNS, demo/cluster/knative.ts).
 */
import { DEFAULT_RUNTIME_CLASS, KNATIVE_FEATURE } from '../../lib/catalog/node-contract';
import { DEFAULT_KNATIVE_SELECTOR, KNATIVE_DEPLOYMENT } from '../../lib/catalog/knative';
import { WASM_SERVICE_ANSWER, WASM_SERVICE_IMAGE } from '../../lib/catalog/service-image';
import { NodeCluster } from '../../demo/cluster/cluster';
import { knativeImages } from '../../demo/cluster/images/knative-images';
import { installKnativeServing, knativeService, KNATIVE_NAMESPACE, revisionConditions, revisionGet, RevisionPod, revisionPods, waitRevisionReady, WITHOUT_CLUSTER_DNS } from '../../demo/cluster/knative';
import { helmInstall, helmUninstall, waitFor } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(15 * 60_000);

const { key: FLAG, value: FLAG_ON } = KNATIVE_FEATURE;

/** config-autoscaler: scale to zero within seconds of the last request instead of 90 s (60 s stable window + 30 s grace). */
const AUTOSCALER_TUNING = { 'stable-window': '6s', 'scale-to-zero-grace-period': '5s' };

function parseAnswer(body: string): { engine: string; host: string; requests: number } {
  const m = WASM_SERVICE_ANSWER.exec(body.trim());
  if (!m) throw new Error(`not the module's answer: ${JSON.stringify(body)}`);
  return { engine: m[1], host: m[2], requests: Number(m[3]) };
}

async function configMapData(h: NodeCluster, name: string): Promise<Record<string, string>> {
  return JSON.parse(await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'get', 'configmap', name, '-o', 'json'])).data ?? {};
}

/** The revision's pod `name` runs under the chart's RuntimeClass, both containers running and ready, never restarted. */
function expectServingPod(pods: readonly RevisionPod[], name: string): void {
  const pod = pods.find((p) => p.name === name);
  expect(pod).toBeDefined();
  expect(pod?.runtimeClassName).toBe(DEFAULT_RUNTIME_CLASS);
  expect(pod?.containers).toEqual({
    'user-container': { state: 'running', ready: true, restartCount: 0 },
    'queue-proxy': { state: 'running', ready: true, restartCount: 0 },
  });
}

/** GET / through the revision's Service: the module's answer, from a pod of the revision that serves as it should. */
async function moduleAnswer(h: NodeCluster, revision: string): Promise<{ host: string; requests: number }> {
  const answer = await revisionGet(h, revision);
  expect(answer.status).toBe(200);
  const { engine, host, requests } = parseAnswer(answer.body);
  expect(engine).toBe('WasmEdge');
  expectServingPod(await revisionPods(h, revision), host);
  return { host, requests };
}

describe('real Knative Serving on a real node (containerd 2.x): WASM revisions under crun-wasmedge', () => {
  const steps = clusterForFile(2);
  const shipped: Record<string, Record<string, string>> = {};
  const answeredBy = new Set<string>();

  test("Knative Serving comes up from its own config/core, with our images of its five components", async () => {
    const h = steps.need();
    const kn = knativeImages();
    const ms = await installKnativeServing(h, kn, { autoscaler: AUTOSCALER_TUNING });
    console.log(`Knative Serving ${kn.release.serving} up in ${(ms / 1000).toFixed(1)} s`);
    shipped.features = await configMapData(h, KNATIVE_FEATURE.configMap);
    shipped.deployment = await configMapData(h, KNATIVE_DEPLOYMENT.configMap);
    expect(shipped.features[FLAG]).toBeUndefined();
    expect(await configMapData(h, 'config-autoscaler')).toMatchObject({ ...WITHOUT_CLUSTER_DNS, ...AUTOSCALER_TUNING });
    steps.mark('knative');
  });

  test("Knative's webhook refuses runtimeClassName while kubernetes.podspec-runtimeclassname is as shipped", async () => {
    const h = steps.need('knative');
    const service = knativeService('refused', { image: WASM_SERVICE_IMAGE, runtimeClassName: DEFAULT_RUNTIME_CLASS });
    const r = await h.cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(service) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/admission webhook "validation\.webhook\.serving\.knative\.dev" denied the request: .*must not set the field\(s\): spec\.template\.spec\.runtimeClassName/);
  });

  test('helm install with patchKnative=true enables the flag, and the webhook then admits runtimeClassName', async () => {
    const h = steps.need('knative');
    await helmInstall(h, 'crun-wasmedge', { patchKnative: 'true', 'knative.runtimeClassName.enabled': 'true' });
    await waitFor(h, `${KNATIVE_NAMESPACE}/${KNATIVE_FEATURE.configMap} ${FLAG}=${FLAG_ON}`, async () => ((await configMapData(h, KNATIVE_FEATURE.configMap))[FLAG] === FLAG_ON ? true : undefined), 120_000);
    const features = await configMapData(h, KNATIVE_FEATURE.configMap);
    expect(features).toEqual({ ...shipped.features, [FLAG]: FLAG_ON });
    // The webhook reads config-features through an informer: it may take a moment to see the change.
    const service = knativeService('wasm-explicit', { image: WASM_SERVICE_IMAGE, runtimeClassName: DEFAULT_RUNTIME_CLASS });
    let last = '';
    await waitFor(h, "Knative's webhook admitting runtimeClassName", async () => {
      const r = await h.cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(service) });
      last = r.stderr.trim();
      return r.code === 0 ? true : undefined;
    }, 60_000, () => last);
    steps.mark('installed');
  });

  test('runtimeClassName: crun, no annotation: the Revision is Ready, queue-proxy native beside the module, the module answers', async () => {
    const h = steps.need('installed');
    await waitRevisionReady(h, 'wasm-explicit-00001');
    answeredBy.add((await moduleAnswer(h, 'wasm-explicit-00001')).host);
    expect((await revisionGet(h, 'wasm-explicit-00001', '/healthz')).body.trim()).toBe('ok');
  });

  test("no runtimeClassName in the Service: config-deployment's runtime-class-name (the chart's knative.runtimeClassName) gives it crun", async () => {
    const h = steps.need('installed');
    expect(JSON.stringify(await configMapData(h, KNATIVE_DEPLOYMENT.configMap))).toContain(DEFAULT_RUNTIME_CLASS);
    const service = knativeService('wasm-default', { image: WASM_SERVICE_IMAGE, labels: DEFAULT_KNATIVE_SELECTOR });
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(service) });
    await waitRevisionReady(h, 'wasm-default-00001');
    await moduleAnswer(h, 'wasm-default-00001');
  });

  test('scale to zero and back: once the revision has no pod, a request through the activator is answered by a fresh WASM pod', async () => {
    const h = steps.need('installed');
    const revision = 'wasm-explicit-00001';
    let state = '';
    await waitFor(h, `${revision} scaled to zero`, async () => {
      const conditions = await revisionConditions(h, revision);
      const replicas = (await h.kubectlOk(['get', 'deployment', `${revision}-deployment`, '-o', 'jsonpath={.spec.replicas}'])).trim();
      const live = (await revisionPods(h, revision)).filter((p) => !p.terminating);
      state = `Active ${JSON.stringify(conditions.find((c) => c.type === 'Active'))}, replicas ${replicas}, live pods ${live.map((p) => p.name).join(' ')}`;
      return replicas === '0' && live.length === 0 && conditions.some((c) => c.type === 'Active' && c.status === 'False') ? true : undefined;
    }, 180_000, () => state);
    const before = new Set([...answeredBy, ...(await revisionPods(h, revision)).map((p) => p.name)]);
    const started = Date.now();
    const { host, requests } = await moduleAnswer(h, revision);
    console.log(`scale from zero: answered by ${host} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(before.has(host)).toBe(false);
    expect(requests).toBe(1);
  });

  test('helm uninstall gives config-features and config-deployment back as Knative had them', async () => {
    const h = steps.need('installed');
    await h.kubectlOk(['delete', 'ksvc', '--all', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
    // The remover waits for every pod under the handler to be gone; a revision's pods take their grace period (the
    // revision's timeoutSeconds, 300 s) when they outlast SIGTERM. What a module does with SIGTERM is the plain
    // Deployment test's subject; here only the ConfigMaps are, so the pods go at once — once their ReplicaSets
    // are gone (the garbage collector removes them after the Service), which would otherwise make new ones.
    const selector = 'serving.knative.dev/service';
    await waitFor(h, 'the revisions\' ReplicaSets gone', async () => ((await h.kubectlOk(['get', 'replicasets', '-l', selector, '-o', 'name'])).trim() === '' ? true : undefined), 120_000);
    await h.kubectlOk(['delete', 'pods', '-l', selector, '--grace-period=0', '--force', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
    const r = await helmUninstall(h);
    if (r.code !== 0) throw new Error(`helm uninstall failed (exit ${r.code}):\n${r.output}`);
    await waitFor(h, `${KNATIVE_FEATURE.configMap} restored`, async () => (FLAG in (await configMapData(h, KNATIVE_FEATURE.configMap)) ? undefined : true), 60_000);
    expect(await configMapData(h, KNATIVE_FEATURE.configMap)).toEqual(shipped.features);
    expect(await configMapData(h, KNATIVE_DEPLOYMENT.configMap)).toEqual(shipped.deployment);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
