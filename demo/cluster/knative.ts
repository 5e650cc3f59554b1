/**
 * Real Knative Serving on the single-node cluster: its own `config/core` (the manifests of the knative.dev/serving
 * release `npm run tools` builds, with the files its symlinks name) applied as a user applies serving-core.yaml,
 * only the `ko://` image references replaced by the images made here (images/knative-images.ts).
 *
 * What the harness adds, because its network is not a user's cluster:
 *  - no cluster DNS (the node's pods get no resolver): the activator dials the autoscaler by its Service's name
 *    (`autoscaler.knative-serving.svc.cluster.local`), so the activator's Deployment gets that name as a
 *    `hostAliases` entry for the Service's ClusterIP: what a cluster DNS would answer. And before it scales a
 *    revision to zero the autoscaler probes the revision's Service by name to make sure the activator is in its
 *    path, unless config-autoscaler's target-burst-capacity is -1 (the activator always in the path): the harness
 *    sets that ({@link WITHOUT_CLUSTER_DNS}). Nothing else in Knative looks a name up here (revision pods are
 *    reached by IP);
 *  - no registry: Knative's controller resolves an image's tag to a digest by asking its registry, which nothing
 *    here may reach; config-deployment's registries-skipping-tag-resolving names the service image's registry
 *    ({@link WITHOUT_REGISTRY}), so that a Service naming the image by tag (README's example) runs the image the
 *    cluster imported under that tag (an image named by digest is taken as it is anyway);
 *  - no networking layer (Kourier, Istio and Contour need Envoy, which no registry here serves): Knative's Routes
 *    never become Ready, and requests go to a revision's own Kubernetes Service from inside the node's network
 *    namespace ({@link revisionGet}), with the Host a cluster-local client sends, which the activator reads.
 */
import * as fs from 'fs';
import * as path from 'path';
import { execFile } from 'child_process';
import { promisify } from 'util';
import { WASM_SERVICE_IMAGE_NAME } from '../../lib/catalog/service-image';
import { NodeCluster } from './cluster';
import { imageName, KNATIVE_COMPONENTS, KnativeImages } from './images/knative-images';
import { waitFor } from './product';

const execFileAsync = promisify(execFile);

export const KNATIVE_NAMESPACE = 'knative-serving';
const DEPLOYMENTS = ['controller', 'webhook', 'activator', 'autoscaler'] as const;

/** config/core's YAML files in the order `kubectl apply -R -f config/core` takes them (by path). */
function coreFiles(dir: string): string[] {
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.ya?ml$/.test(e.name)) files.push(p);
    }
  };
  walk(dir);
  return files;
}

/** Knative's manifests with every `ko://knative.dev/serving/cmd/<component>` replaced by our image of it. */
export function coreManifests(kn: KnativeImages): { crds: string; rest: string } {
  const crds: string[] = [];
  const rest: string[] = [];
  for (const file of coreFiles(kn.release.configCore)) {
    let text = fs.readFileSync(file, 'utf8');
    for (const c of KNATIVE_COMPONENTS) text = text.split(`ko://knative.dev/serving/cmd/${c}`).join(imageName(c, kn.release));
    const left = /ko:\/\/\S+/.exec(text);
    if (left) throw new Error(`${file} names ${left[0]}, which has no image here (components: ${KNATIVE_COMPONENTS.join(', ')})`);
    // CRDs and the namespace go first: the rest holds objects of those kinds and in that namespace.
    const kinds = [...text.matchAll(/^kind: (\S+)$/gm)].map((m) => m[1]);
    const first = kinds.length > 0 && kinds.every((k) => k === 'CustomResourceDefinition' || k === 'Namespace');
    (first ? crds : rest).push(`# ${path.relative(kn.release.configCore, file)}\n${text}`);
  }
  return { crds: crds.join('\n---\n'), rest: rest.join('\n---\n') };
}

function crdNames(manifests: string): string[] {
  return [...manifests.matchAll(/^kind: CustomResourceDefinition\nmetadata:\n(?:  .*\n)*?  name: (\S+)$/gm)].map((m) => m[1]);
}

/** config-autoscaler without cluster DNS: the activator in every revision's path, so no probe by name is needed. */
export const WITHOUT_CLUSTER_DNS: Readonly<Record<string, string>> = { 'target-burst-capacity': '-1' };

/**
 * config-deployment without a reachable registry: tags of the service image's registry are not resolved (Knative's
 * own defaults, kind.local, ko.local and dev.local, kept).
 */
export const WITHOUT_REGISTRY: Readonly<Record<string, string>> = {
  'registries-skipping-tag-resolving': ['kind.local', 'ko.local', 'dev.local', WASM_SERVICE_IMAGE_NAME.split('/')[0]].join(','),
};

/** config-autoscaler: scale to zero within seconds of the last request instead of 90 s (60 s stable window + 30 s grace). */
export const FAST_SCALE_TO_ZERO: Readonly<Record<string, string>> = { 'stable-window': '6s', 'scale-to-zero-grace-period': '5s' };

export interface KnativeTuning {
  /** config-autoscaler data, applied through Knative's own ConfigMap (and so through its validating webhook). */
  readonly autoscaler: Readonly<Record<string, string>>;
}

/**
 * Imports the images, applies config/core (CRDs and the namespace first, then the rest once the CRDs are
 * Established), adds the activator's hostAliases, waits for the four Deployments and for the webhook to admit a
 * Knative Service (server-side dry run), then applies {@link WITHOUT_CLUSTER_DNS} and `tuning` to config-autoscaler
 * and {@link WITHOUT_REGISTRY} to config-deployment. Resolves to the milliseconds it took.
 */
export async function installKnativeServing(h: NodeCluster, kn: KnativeImages, tuning: KnativeTuning): Promise<number> {
  const started = Date.now();
  for (const c of KNATIVE_COMPONENTS) h.node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', kn.images[c].archive]);
  const { crds, rest } = coreManifests(kn);
  await h.kubectlOk(['apply', '-f', '-'], { input: crds, timeoutMs: 120_000 });
  for (const name of crdNames(crds)) {
    await waitFor(h, `CRD ${name} Established`, async () => {
      const r = await h.cluster.kubectl(['get', `crd/${name}`, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
      return r.code === 0 && r.stdout.trim() === 'True' ? true : undefined;
    }, 60_000);
  }
  await h.kubectlOk(['apply', '-f', '-'], { input: rest, timeoutMs: 120_000 });

  const autoscalerIp = (await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'get', 'service', 'autoscaler', '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  const hostAliases = [{ ip: autoscalerIp, hostnames: [`autoscaler.${KNATIVE_NAMESPACE}.svc.cluster.local`] }];
  await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'patch', 'deployment', 'activator', '--type', 'merge', '-p', JSON.stringify({ spec: { template: { spec: { hostAliases } } } })]);

  for (const d of DEPLOYMENTS) {
    await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'rollout', 'status', `deployment/${d}`, '--timeout=300s'], { timeoutMs: 310_000 });
  }
  // The webhook serves once it has made its certificate and written it into its webhook configurations.
  const probe = knativeService('knawd-webhook-probe', { image: imageName('queue', kn.release) });
  let last = '';
  await waitFor(h, "Knative's webhook admitting a Service", async () => {
    const r = await h.cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(probe) });
    last = r.stderr.trim();
    return r.code === 0 ? true : undefined;
  }, 180_000, () => last);
  await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'patch', 'configmap', 'config-autoscaler', '--type', 'merge', '-p', JSON.stringify({ data: { ...WITHOUT_CLUSTER_DNS, ...tuning.autoscaler } })]);
  await h.kubectlOk(['-n', KNATIVE_NAMESPACE, 'patch', 'configmap', 'config-deployment', '--type', 'merge', '-p', JSON.stringify({ data: WITHOUT_REGISTRY })]);
  return Date.now() - started;
}

export interface ServiceSpec {
  readonly image: string;
  /** The container's command; the image's entrypoint without it. */
  readonly command?: readonly string[];
  readonly runtimeClassName?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly namespace?: string;
}

/** A Knative Service (serving.knative.dev/v1) of one container. */
export function knativeService(name: string, spec: ServiceSpec): Record<string, unknown> {
  return {
    apiVersion: 'serving.knative.dev/v1',
    kind: 'Service',
    metadata: { name, namespace: spec.namespace ?? 'default' },
    spec: {
      template: {
        metadata: { labels: { ...spec.labels } },
        spec: {
          ...(spec.runtimeClassName ? { runtimeClassName: spec.runtimeClassName } : {}),
          containers: [{ image: spec.image, ...(spec.command ? { command: [...spec.command] } : {}) }],
        },
      },
    },
  };
}

export interface Condition {
  readonly type: string;
  readonly status: string;
  readonly reason?: string;
  readonly message?: string;
}

export async function revisionConditions(h: NodeCluster, revision: string, namespace = 'default'): Promise<Condition[]> {
  const r = await h.cluster.kubectl(['-n', namespace, 'get', 'revision', revision, '-o', 'jsonpath={.status.conditions}']);
  return r.code === 0 && r.stdout.trim() ? (JSON.parse(r.stdout) as Condition[]) : [];
}

/** Waits until the Revision's Ready condition is True; fails at once when Knative says it is False. */
export async function waitRevisionReady(h: NodeCluster, revision: string, namespace = 'default', timeoutMs = 240_000): Promise<void> {
  let conditions: Condition[] = [];
  await waitFor(h, `Revision ${namespace}/${revision} Ready`, async () => {
    conditions = await revisionConditions(h, revision, namespace);
    const ready = conditions.find((c) => c.type === 'Ready');
    if (ready?.status === 'False') {
      const pods = await h.cluster.kubectl(['-n', namespace, 'describe', 'pods', '-l', `serving.knative.dev/revision=${revision}`]);
      throw new Error(`Revision ${namespace}/${revision} failed: ${JSON.stringify(conditions)}\n${pods.stdout.slice(-4000)}`);
    }
    return ready?.status === 'True' ? true : undefined;
  }, timeoutMs, () => JSON.stringify(conditions));
}

export interface RevisionPod {
  readonly name: string;
  readonly runtimeClassName?: string;
  readonly terminating: boolean;
  readonly containers: Record<string, { state: string; ready: boolean; restartCount: number }>;
}

export async function revisionPods(h: NodeCluster, revision: string, namespace = 'default'): Promise<RevisionPod[]> {
  const items = JSON.parse(await h.kubectlOk(['-n', namespace, 'get', 'pods', '-l', `serving.knative.dev/revision=${revision}`, '-o', 'json'])).items as Array<{
    metadata: { name: string; deletionTimestamp?: string };
    spec: { runtimeClassName?: string };
    status: { containerStatuses?: Array<{ name: string; ready: boolean; restartCount: number; state: Record<string, unknown> }> };
  }>;
  return items.map((p) => ({
    name: p.metadata.name,
    runtimeClassName: p.spec.runtimeClassName,
    terminating: p.metadata.deletionTimestamp !== undefined,
    containers: Object.fromEntries((p.status.containerStatuses ?? []).map((c) => [c.name, { state: Object.keys(c.state)[0], ready: c.ready, restartCount: c.restartCount }])),
  }));
}

/** Waits until the revision has scaled to zero: no replica, no live pod, and Knative calls it inactive. */
export async function waitScaledToZero(h: NodeCluster, revision: string, namespace = 'default', timeoutMs = 180_000): Promise<void> {
  let state = '';
  await waitFor(h, `${revision} scaled to zero`, async () => {
    const conditions = await revisionConditions(h, revision, namespace);
    const replicas = (await h.kubectlOk(['-n', namespace, 'get', 'deployment', `${revision}-deployment`, '-o', 'jsonpath={.spec.replicas}'])).trim();
    const live = (await revisionPods(h, revision, namespace)).filter((p) => !p.terminating);
    state = `Active ${JSON.stringify(conditions.find((c) => c.type === 'Active'))}, replicas ${replicas}, live pods ${live.map((p) => p.name).join(' ')}`;
    return replicas === '0' && live.length === 0 && conditions.some((c) => c.type === 'Active' && c.status === 'False') ? true : undefined;
  }, timeoutMs, () => state);
}

export interface HttpAnswer {
  readonly status: number;
  readonly body: string;
  /** From the request's start to the response's last byte, measured where the request was sent. */
  readonly ms: number;
}

// Run by the node binary inside the node's network namespace: one GET, status and body as JSON on stdout.
const GET_SCRIPT = `
const [url, host, timeout] = process.argv.slice(1);
const started = process.hrtime.bigint();
const req = require('http').get(url, { headers: { host }, timeout: Number(timeout) }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (d) => (body += d));
  res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body, ms: Number(process.hrtime.bigint() - started) / 1e6 })));
});
req.on('timeout', () => req.destroy(new Error('no answer within ' + timeout + ' ms')));
req.on('error', (e) => { console.error(e.message); process.exit(1); });
`;

/**
 * `GET <pathname>` through the revision's Kubernetes Service (its ClusterIP, port 80), from inside the node's
 * network namespace, with the Host `<revision>.<namespace>.svc.cluster.local` a client in the cluster sends. The
 * Service's endpoints are the revision's pods (queue-proxy) or, while it has none, the activator.
 */
export async function revisionGet(h: NodeCluster, revision: string, pathname = '/', namespace = 'default', timeoutMs = 120_000): Promise<HttpAnswer> {
  const ip = (await h.kubectlOk(['-n', namespace, 'get', 'service', revision, '-o', 'jsonpath={.spec.clusterIP}'])).trim();
  const [command, ...args] = h.netns.enter([process.execPath, '-e', GET_SCRIPT, `http://${ip}${pathname}`, `${revision}.${namespace}.svc.cluster.local`, String(timeoutMs)]);
  try {
    const { stdout } = await execFileAsync(command, args, { encoding: 'utf8', timeout: timeoutMs + 10_000 });
    return JSON.parse(stdout) as HttpAnswer;
  } catch (error) {
    const e = error as { stderr?: string; message: string };
    throw new Error(`GET http://${ip}${pathname} (Service ${namespace}/${revision}) from the node's network failed: ${e.stderr?.trim() || e.message}`);
  }
}

/**
 * Deletes the Knative Services of `namespace`, then their revisions' pods at once: a revision's pod would
 * otherwise take up to its grace period (the revision's timeoutSeconds, 300 s) while queue-proxy drains, and the
 * chart's remover waits for every pod under the handler. The pods go only once their ReplicaSets are gone (the
 * garbage collector removes them after the Service), which would otherwise make new ones.
 */
export async function deleteKnativeServices(h: NodeCluster, namespace = 'default'): Promise<void> {
  await h.kubectlOk(['-n', namespace, 'delete', 'ksvc', '--all', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
  const selector = 'serving.knative.dev/service';
  await waitFor(h, "the revisions' ReplicaSets gone", async () => ((await h.kubectlOk(['-n', namespace, 'get', 'replicasets', '-l', selector, '-o', 'name'])).trim() === '' ? true : undefined), 120_000);
  await h.kubectlOk(['-n', namespace, 'delete', 'pods', '-l', selector, '--grace-period=0', '--force', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 });
}
