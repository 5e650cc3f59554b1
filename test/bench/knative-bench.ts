/**
 * Issue 33's Knative line: a request to a revision scaled to zero, until its response, on real Knative Serving
 * (demo/cluster/knative.ts) on the single-node cluster (containerd 2.x), for the WASM HTTP service under each
 * shipped engine that can serve and for the same server compiled natively (bench-images.ts) under runc.
 *
 * Each revision is let scale to zero (FAST_SCALE_TO_ZERO), then one GET goes to its Kubernetes Service from inside
 * the node's network namespace: the activator holds it while the autoscaler scales the revision up, the kubelet
 * starts the pod (queue-proxy beside the server) and the readiness probes pass; the clock is the client's, from
 * the request to the response's last byte. Median of ROUNDS, the two revisions in turn.
 */
import { DEFAULT_RUNTIME_CLASS } from '../../lib/catalog/node-contract';
import { RUNTIMES } from '../../lib/catalog';
import { startNodeCluster } from '../../demo/cluster/cluster';
import { BENCH_IMAGES, benchImages } from '../../demo/cluster/images/bench-images';
import { knativeImages } from '../../demo/cluster/images/knative-images';
import { FAST_SCALE_TO_ZERO, installKnativeServing, KNATIVE_NAMESPACE, knativeService, revisionGet, waitRevisionReady, waitScaledToZero, WITHOUT_REGISTRY } from '../../demo/cluster/knative';
import { helmInstall } from '../../demo/cluster/product';
import { BenchResult } from './measure';

const ROUNDS = 3;
const SERVING_ENGINE = 'crun-wasmedge';

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export async function benchKnative(): Promise<BenchResult[]> {
  const bench = benchImages();
  const kn = knativeImages();
  const h = await startNodeCluster(2);
  try {
    h.node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', bench.native.archive]);
    await installKnativeServing(h, kn, { autoscaler: FAST_SCALE_TO_ZERO });
    await helmInstall(h, SERVING_ENGINE, { patchKnative: 'true' });
    // No registry answers here: Knative must not try to resolve the bench image's tag either.
    const skipped = `${WITHOUT_REGISTRY['registries-skipping-tag-resolving']},${BENCH_IMAGES.native.split('/')[0]}`;
    await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'patch', 'configmap', 'config-deployment', '--type', 'merge', '-p', JSON.stringify({ data: { 'registries-skipping-tag-resolving': skipped } })]);
    const services = {
      wasm: knativeService('bench-zero-wasm', { image: h.images.installer.serviceName, runtimeClassName: DEFAULT_RUNTIME_CLASS }),
      native: knativeService('bench-zero-native', { image: BENCH_IMAGES.native, command: ['/http'] }),
    };
    for (const s of Object.values(services)) await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(s) });
    const revisions = { wasm: 'bench-zero-wasm-00001', native: 'bench-zero-native-00001' };
    for (const r of Object.values(revisions)) await waitRevisionReady(h, r);
    const samples: Record<keyof typeof revisions, number[]> = { wasm: [], native: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const key of ['native', 'wasm'] as const) {
        await waitScaledToZero(h, revisions[key]);
        const answer = await revisionGet(h, revisions[key]);
        if (answer.status !== 200) throw new Error(`${revisions[key]} answered ${answer.status} from zero: ${answer.body}`);
        samples[key].push(answer.ms);
      }
    }
    return lines(samples.wasm, samples.native);
  } finally {
    const left = await h.stop();
    if (left.length > 0) throw new Error(`the benchmark's cluster left: ${left.join('; ')}`);
  }
}

function lines(wasm: readonly number[], native: readonly number[]): BenchResult[] {
  const w = Math.round(median(wasm));
  const n = Math.round(median(native));
  const each = (xs: readonly number[]): string => xs.map((x) => Math.round(x)).join(', ');
  const results: BenchResult[] = [];
  for (const runtime of RUNTIMES) {
    if (runtime.name === SERVING_ENGINE) {
      results.push({ name: `knative: request at zero → response (${runtime.name}, ms)`, value: w, unit: `ms (median of ${wasm.length}: ${each(wasm)})` });
    } else {
      results.push({ name: `knative: request at zero → response (${runtime.name}, ms)`, value: 'n/a', unit: `not measured: ${runtime.serves.able ? 'no revision of it in this bench' : runtime.serves.because}` });
    }
  }
  results.push({ name: 'knative: request at zero → response (native revision, ms)', value: n, unit: `ms (runc; median of ${native.length}: ${each(native)})` });
  const x = Number((w / n).toFixed(2));
  results.push({ name: `knative: request at zero → response / native revision (${SERVING_ENGINE})`, value: x, unit: '×', target: 1.0, pass: x <= 1.0 });
  return results;
}
