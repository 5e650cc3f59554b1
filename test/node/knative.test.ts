/**
 * Real Knative Serving on the single-node cluster (containerd 2.x), issue 24 items 3 and 4: controller, webhook,
 * activator, autoscaler and queue-proxy built from knative.dev/serving (KNATIVE_SERVING_VERSION), loaded from
 * Knative's own config/core (demo/cluster/knative.ts), and the WASM HTTP service image (`npm run image`) as the
 * revisions' user container under the chart's RuntimeClass, on WasmEdge (the engine whose socket API can serve).
 *
 *  - Knative's own webhook refuses README's Knative Service (`runtimeClassName: crun`) while
 *    kubernetes.podspec-runtimeclassname is as Knative ships it, and admits it, as the README has it, once
 *    `helm install --set patchKnative=true` has enabled the flag (no test writes the flag);
 *  - that Service, its image named by tag (not resolved: the harness's WITHOUT_REGISTRY), and one naming no
 *    runtimeClassName, its image by digest (config-deployment's runtime-class-name, the chart's
 *    knative.runtimeClassName): each Revision becomes Ready with queue-proxy running natively beside the module,
 *    and a GET through the revision's Kubernetes Service is answered by the module;
 *  - scale to zero and back: once the revision has no pod, a GET through the activator is answered by a new one;
 *  - helm uninstall gives config-features and config-deployment back as Knative had them.
 *
 * config-autoscaler is tuned through Knative's own ConfigMap: for test speed (FAST_SCALE_TO_ZERO) and for a cluster
 * without DNS (WITHOUT_CLUSTER_DNS, demo/cluster/knative.ts); config-deployment for a cluster without a reachable
 * registry (WITHOUT_REGISTRY).
 */
import { DEFAULT_RUNTIME_CLASS, KNATIVE_FEATURE } from '../../lib/catalog/node-contract';
import { DEFAULT_KNATIVE_SELECTOR, KNATIVE_DEPLOYMENT } from '../../lib/catalog/knative';
import { WASM_SERVICE_ANSWER, WASM_SERVICE_IMAGE, WASM_SERVICE_IMAGE_NAME } from '../../lib/catalog/service-image';
import { NodeCluster } from '../../demo/cluster/cluster';
import { knativeImages } from '../../demo/cluster/images/knative-images';
import { deleteKnativeServices, installKnativeServing, knativeService, KNATIVE_NAMESPACE, FAST_SCALE_TO_ZERO, revisionGet, RevisionPod, revisionPods, waitRevisionReady, waitScaledToZero, WITHOUT_CLUSTER_DNS, WITHOUT_REGISTRY } from '../../demo/cluster/knative';
import { helmInstall, helmUninstall, waitFor } from '../../demo/cluster/product';
import { readmeExample, readmeExampleObjects } from '../../demo/readme-examples';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(15 * 60_000);

const { key: FLAG, value: FLAG_ON } = KNATIVE_FEATURE;

/** README's Knative Service, applied as the README has it, and its first Revision. */
const README_SERVICE = readmeExample('knative-service');
const README_REVISION = `${(readmeExampleObjects('knative-service')[0].metadata as { name: string }).name}-00001`;

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
  // The activator forwards once it has probed queue-proxy itself; the kubelet reports the pod's readiness a moment later.
  const pods = await waitFor(h, `${host} reported ready`, async () => {
    const all = await revisionPods(h, revision);
    const pod = all.find((p) => p.name === host);
    return pod && Object.keys(pod.containers).length === 2 && Object.values(pod.containers).every((c) => c.ready) ? all : undefined;
  }, 30_000);
  expectServingPod(pods, host);
  return { host, requests };
}

describe('real Knative Serving on a real node (containerd 2.x): WASM revisions under crun-wasmedge', () => {
  const steps = clusterForFile(2);
  const shipped: Record<string, Record<string, string>> = {};
  const answeredBy = new Set<string>();

  test("Knative Serving comes up from its own config/core, with our images of its five components", async () => {
    const h = steps.need();
    const kn = knativeImages();
    const ms = await installKnativeServing(h, kn, { autoscaler: FAST_SCALE_TO_ZERO });
    console.log(`Knative Serving ${kn.release.serving} up in ${(ms / 1000).toFixed(1)} s`);
    shipped.features = await configMapData(h, KNATIVE_FEATURE.configMap);
    shipped.deployment = await configMapData(h, KNATIVE_DEPLOYMENT.configMap);
    expect(shipped.features[FLAG]).toBeUndefined();
    expect(await configMapData(h, 'config-autoscaler')).toMatchObject({ ...WITHOUT_CLUSTER_DNS, ...FAST_SCALE_TO_ZERO });
    expect(shipped.deployment).toMatchObject(WITHOUT_REGISTRY);
    steps.mark('knative');
  });

  test("Knative's webhook refuses README's Service (runtimeClassName) while kubernetes.podspec-runtimeclassname is as shipped", async () => {
    const h = steps.need('knative');
    expect(README_SERVICE).toContain(`runtimeClassName: ${DEFAULT_RUNTIME_CLASS}\n`);
    const r = await h.cluster.kubectl(['create', '-f', '-'], { input: README_SERVICE });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/admission webhook "validation\.webhook\.serving\.knative\.dev" denied the request: .*must not set the field\(s\): spec\.template\.spec\.runtimeClassName/);
  });

  test("helm install with patchKnative=true enables the flag, and the webhook then admits README's Service", async () => {
    const h = steps.need('knative');
    await helmInstall(h, 'crun-wasmedge', { patchKnative: 'true', 'knative.runtimeClassName.enabled': 'true' });
    await waitFor(h, `${KNATIVE_NAMESPACE}/${KNATIVE_FEATURE.configMap} ${FLAG}=${FLAG_ON}`, async () => ((await configMapData(h, KNATIVE_FEATURE.configMap))[FLAG] === FLAG_ON ? true : undefined), 120_000);
    const features = await configMapData(h, KNATIVE_FEATURE.configMap);
    expect(features).toEqual({ ...shipped.features, [FLAG]: FLAG_ON });
    // The webhook reads config-features through an informer: it may take a moment to see the change.
    let last = '';
    await waitFor(h, "Knative's webhook admitting runtimeClassName", async () => {
      const r = await h.cluster.kubectl(['create', '-f', '-'], { input: README_SERVICE });
      last = r.stderr.trim();
      return r.code === 0 ? true : undefined;
    }, 60_000, () => last);
    steps.mark('installed');
  });

  test("README's Service (runtimeClassName: crun, the image by tag, no annotation): the Revision is Ready, queue-proxy native beside the module, the module answers", async () => {
    const h = steps.need('installed');
    await waitRevisionReady(h, README_REVISION);
    answeredBy.add((await moduleAnswer(h, README_REVISION)).host);
    expect((await revisionGet(h, README_REVISION, '/healthz')).body.trim()).toBe('ok');
    // The tag was not resolved (no registry here): the revision runs the image the node imported under that tag.
    expect((await h.kubectlOk(['get', 'revision', README_REVISION, '-o', 'jsonpath={.status.containerStatuses[0].imageDigest}'])).trim()).toBe('');
    expect((await h.kubectlOk(['get', 'deployment', `${README_REVISION}-deployment`, '-o', 'jsonpath={.spec.template.spec.containers[?(@.name=="user-container")].image}'])).trim()).toBe(WASM_SERVICE_IMAGE_NAME);
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
    const revision = README_REVISION;
    await waitScaledToZero(h, revision);
    const before = new Set([...answeredBy, ...(await revisionPods(h, revision)).map((p) => p.name)]);
    const started = Date.now();
    const { host, requests } = await moduleAnswer(h, revision);
    console.log(`scale from zero: answered by ${host} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(before.has(host)).toBe(false);
    expect(requests).toBe(1);
  });

  test('helm uninstall gives config-features and config-deployment back as Knative had them', async () => {
    const h = steps.need('installed');
    // What a module does with SIGTERM is the plain Deployment test's subject; here only the ConfigMaps are.
    await deleteKnativeServices(h);
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
