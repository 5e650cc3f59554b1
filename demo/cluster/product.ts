/**
 * The product's steps on the single-node cluster, shared by the lifecycle tests and `npm run bench`: helm
 * install/uninstall of dist/charts/knawd-deployer, waits that fail with every component's log (the installer's
 * and remover's pods, the namespace's Events, the node's units), WASI pods, and the node's restore check.
 */
import * as fs from 'fs';
import { HOST_CHANGED_LABEL, INSTALLED_LABEL, DEFAULT_HOST_PREFIX, DEFAULT_RUNTIME_CLASS } from '../../lib/catalog/node-contract';
import { CHART } from '../../test/support/cluster/objects';
import { NODE_NAME, IMAGES, NodeCluster } from './cluster';

export const RELEASE = 'knawd';
export const NAMESPACE = 'knawd';
const POLL_MS = 250;

/** `--set` flags: the node's target and runtime, the imported installer image, never pulled, no Knative. */
export function chartFlags(h: NodeCluster, ociType: string, extra: Readonly<Record<string, string>> = {}): string[] {
  const values: Record<string, string> = {
    target: 'containerd',
    ociType,
    'image.repository': h.images.installer.repository,
    // The base tag: the chart appends `-<ociType>`, naming the imported image of that ociType.
    tag: h.images.installer.tag,
    'image.pullPolicy': 'Never',
    patchKnative: 'false',
    ...extra,
  };
  return Object.entries(values).flatMap(([k, v]) => ['--set', `${k}=${v}`]);
}

/** Logs of the product's pods and the Events of its namespace and the node, for failure messages. */
export async function productLogs(h: NodeCluster): Promise<string> {
  const parts: string[] = [];
  const pods = await h.cluster.kubectl(['-n', NAMESPACE, 'get', 'pods', '-o', 'wide']);
  parts.push(`--- pods in ${NAMESPACE}:\n${pods.stdout.trim() || pods.stderr.trim()}`);
  for (const component of ['installer', 'remover', 'uninstall-wait']) {
    const logs = await h.cluster.kubectl(['-n', NAMESPACE, 'logs', '-l', `app.kubernetes.io/component=${component}`, '--tail=40', '--prefix', '--all-containers']);
    if (logs.stdout.trim() || logs.stderr.trim()) parts.push(`--- ${component} pod logs:\n${logs.stdout.trim() || logs.stderr.trim()}`);
  }
  const events = await h.cluster.kubectl(['get', 'events', '-A', '--sort-by=.lastTimestamp', '-o', 'custom-columns=NS:.metadata.namespace,OBJ:.involvedObject.name,REASON:.reason,MESSAGE:.message']);
  parts.push(`--- events:\n${events.stdout.trim().split('\n').slice(-30).join('\n')}`);
  return parts.join('\n');
}

/**
 * Polls `probe` until it returns a value (not undefined); meanwhile every unit of the node must stay alive. On
 * timeout, throws naming `what` with the last probe state, the product's pods' logs and the node's logs.
 */
export async function waitFor<T>(h: NodeCluster, what: string, probe: () => Promise<T | undefined>, timeoutMs: number, last: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    await h.node.checkHealthy();
    if (Date.now() > deadline) {
      throw new Error(`${what}: did not happen within ${timeoutMs / 1000} s${last() ? ` (${last()})` : ''}\n${await productLogs(h)}\n${h.logTails()}`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export async function nodeLabels(h: NodeCluster): Promise<Record<string, string>> {
  return JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json'])).metadata.labels ?? {};
}

/** `helm install`, then the wait until the node carries the installed label; resolves to that time. */
export async function helmInstall(h: NodeCluster, ociType: string, extra: Readonly<Record<string, string>> = {}): Promise<{ labelledMs: number; output: string }> {
  const started = Date.now();
  const r = await h.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--create-namespace', ...chartFlags(h, ociType, extra)], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`helm install failed (exit ${r.code}): ${r.stderr.trim()}\n${await productLogs(h)}`);
  let labels: Record<string, string> = {};
  await waitFor(h, `node ${NODE_NAME} labelled ${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`, async () => {
    labels = await nodeLabels(h);
    return labels[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? true : undefined;
  }, 180_000, () => `labels: ${JSON.stringify(labels)}`);
  return { labelledMs: Date.now() - started, output: r.stdout };
}

/** What differs between the node as seeded and as it is now under the overlays (empty when restored). */
export function unrestored(h: NodeCluster, prefix = DEFAULT_HOST_PREFIX): string[] {
  const problems: string[] = [];
  const { node } = h;
  const config = node.nodeFile(node.containerdConfigPath);
  if (!config || !config.equals(fs.readFileSync(node.seedPath(node.containerdConfigPath)))) problems.push(`/${node.containerdConfigPath} differs from the node's original`);
  const ours = [...node.upper().keys()].filter((p) => `/${p}` === prefix || `/${p}`.startsWith(prefix + '/') || /^etc\/containerd\/conf\.d\/50-knawd-/.test(p));
  if (ours.length > 0) problems.push(`still on the node: ${ours.map((p) => `/${p}`).join(', ')}`);
  return problems;
}

/** `helm uninstall`; then the wait until the node is restored (config byte for byte, prefix gone, labels gone). */
export async function helmUninstall(h: NodeCluster, timeout = '5m'): Promise<{ code: number; output: string; uninstallMs: number; restoredMs: number }> {
  const started = Date.now();
  const r = await h.helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait', `--timeout=${timeout}`], { timeoutMs: 400_000 });
  const uninstallMs = Date.now() - started;
  // On failure the output carries the hooks' pods' logs: what the remover and the wait Job said.
  if (r.code !== 0) return { code: r.code, output: `${r.stdout}${r.stderr}\n${await productLogs(h)}`, uninstallMs, restoredMs: -1 };
  let problems: string[] = [];
  await waitFor(h, 'the node restored after helm uninstall', async () => {
    const labels = await nodeLabels(h);
    problems = [...unrestored(h), ...[INSTALLED_LABEL.key, HOST_CHANGED_LABEL.key].filter((k) => k in labels).map((k) => `label ${k} still set`)];
    return problems.length === 0 ? true : undefined;
  }, 120_000, () => problems.join('; '));
  return { code: 0, output: `${r.stdout}${r.stderr}`, uninstallMs, restoredMs: Date.now() - started };
}

export interface WasmPodResult {
  readonly wasmLog: string;
  readonly plainLog: string;
  /** Milliseconds from `kubectl create` to the pod Succeeded. */
  readonly ms: number;
}

/** The WASI pod manifest: the hello module and a plain busybox beside it, same RuntimeClass, no annotation. */
export function wasmPod(name: string, namespace = 'default', annotations?: Readonly<Record<string, string>>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, ...(annotations ? { annotations } : {}) },
    spec: {
      runtimeClassName: DEFAULT_RUNTIME_CLASS,
      restartPolicy: 'Never',
      containers: [
        { name: 'wasm', image: IMAGES.wasm, imagePullPolicy: 'Never' },
        { name: 'plain', image: IMAGES.busybox, imagePullPolicy: 'Never' },
      ],
    },
  };
}

async function podPhase(h: NodeCluster, name: string, namespace: string): Promise<{ phase: string; detail: string }> {
  const pod = JSON.parse(await h.kubectlOk(['-n', namespace, 'get', 'pod', name, '-o', 'json']));
  const states = (pod.status.containerStatuses ?? []).map((s: { name: string; state: unknown }) => `${s.name}: ${JSON.stringify(s.state)}`);
  return { phase: pod.status.phase, detail: `phase ${pod.status.phase}; ${states.join('; ')}; conditions ${JSON.stringify(pod.status.conditions ?? [])}` };
}

export interface WasmJobResult {
  /** The Job's terminal condition. */
  readonly condition: 'Complete' | 'Failed';
  /** The exit code of its pod's container, as the pod status reports it. */
  readonly exitCode: number | undefined;
  readonly log: string;
}

/** A Job of one WASI probe pod (no annotation), never retried: its outcome is the module's exit. */
export function wasmJob(name: string, args: readonly string[], namespace = 'default', env: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name, namespace },
    spec: {
      backoffLimit: 0,
      template: {
        spec: {
          runtimeClassName: DEFAULT_RUNTIME_CLASS,
          restartPolicy: 'Never',
          containers: [{ name: 'wasm', image: IMAGES.probe, imagePullPolicy: 'Never', args, ...(Object.keys(env).length > 0 ? { env: Object.entries(env).map(([n, value]) => ({ name: n, value })) } : {}) }],
        },
      },
    },
  };
}

/** Creates the probe Job with `args` (and `env`) and waits for its Complete or Failed condition; then reads its pod. */
export async function runWasmJob(h: NodeCluster, name: string, args: readonly string[], namespace = 'default', env: Readonly<Record<string, string>> = {}): Promise<WasmJobResult> {
  await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(wasmJob(name, args, namespace, env)) });
  let conditions = '';
  const condition = await waitFor(h, `job ${namespace}/${name} Complete or Failed`, async () => {
    const job = JSON.parse(await h.kubectlOk(['-n', namespace, 'get', 'job', name, '-o', 'json']));
    const list: Array<{ type: string; status: string }> = job.status?.conditions ?? [];
    conditions = JSON.stringify(list);
    return list.find((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')?.type as WasmJobResult['condition'] | undefined;
  }, 120_000, () => `conditions ${conditions}`);
  const pods = JSON.parse(await h.kubectlOk(['-n', namespace, 'get', 'pods', '-l', `job-name=${name}`, '-o', 'json'])).items;
  if (pods.length !== 1) throw new Error(`job ${namespace}/${name} has ${pods.length} pods, expected 1 (backoffLimit 0)`);
  const pod = pods[0] as { metadata: { name: string }; status: { containerStatuses?: Array<{ state: { terminated?: { exitCode: number } } }> } };
  const log = await h.kubectlOk(['-n', namespace, 'logs', pod.metadata.name]);
  return { condition, exitCode: pod.status.containerStatuses?.[0]?.state.terminated?.exitCode, log };
}

/** Waits until the WASI pod has Succeeded and returns both containers' logs. */
export async function runWasmPod(h: NodeCluster, name: string, namespace = 'default'): Promise<WasmPodResult> {
  const started = Date.now();
  await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(wasmPod(name, namespace)) });
  return finishWasmPod(h, name, namespace, started);
}

/** Waits until an already created WASI pod has Succeeded and returns both containers' logs. */
export async function finishWasmPod(h: NodeCluster, name: string, namespace: string, started = Date.now()): Promise<WasmPodResult> {
  let detail = '';
  await waitFor(h, `pod ${namespace}/${name} Succeeded`, async () => {
    const p = await podPhase(h, name, namespace);
    detail = p.detail;
    if (p.phase === 'Failed') throw new Error(`pod ${namespace}/${name} failed: ${p.detail}\n${await h.cluster.kubectl(['-n', namespace, 'describe', 'pod', name]).then((r) => r.stdout)}`);
    return p.phase === 'Succeeded' ? true : undefined;
  }, 120_000, () => detail);
  const ms = Date.now() - started;
  const wasmLog = (await h.kubectlOk(['-n', namespace, 'logs', name, '-c', 'wasm'])).trim();
  const plainLog = (await h.kubectlOk(['-n', namespace, 'logs', name, '-c', 'plain'])).trim();
  return { wasmLog, plainLog, ms };
}

export interface ComponentPod {
  readonly name: string;
  readonly uid: string;
  readonly nodeName?: string;
  /** The pod's phase, or Terminating once it is being deleted. */
  readonly phase: string;
  readonly ready: boolean;
}

/** The pods of one of the product's components (installer, remover, uninstall-wait). */
export async function componentPods(h: NodeCluster, component: string): Promise<ComponentPod[]> {
  const list = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pods', '-l', `app.kubernetes.io/component=${component}`, '-o', 'json'])).items;
  return list.map((p: { metadata: { name: string; uid: string; deletionTimestamp?: string }; spec: { nodeName?: string }; status: { phase: string; conditions?: Array<{ type: string; status: string }> } }) => ({
    name: p.metadata.name,
    uid: p.metadata.uid,
    nodeName: p.spec.nodeName,
    phase: p.metadata.deletionTimestamp ? 'Terminating' : p.status.phase,
    ready: (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  }));
}

/** The installer's `install complete` / `remove complete` log line of a pod, parsed, once it is there. */
export async function runReport(h: NodeCluster, pod: string, command: 'install' | 'remove'): Promise<Record<string, unknown> | undefined> {
  const r = await h.cluster.kubectl(['-n', NAMESPACE, 'logs', pod]);
  const line = r.stdout.split('\n').find((l) => l.includes(`"msg":"${command} complete"`));
  return line ? JSON.parse(line) : undefined;
}

/** The restarts of `unit` the systemctl shim was asked for, successful ones only. */
export function restartsOf(h: NodeCluster, unit: string): number {
  return h.node.supervisor.calls().filter((c) => c.args[0] === 'restart' && [unit, `${unit}.service`].includes(c.args[1]) && c.code === 0).length;
}

/**
 * `helm upgrade --reuse-values --set ociType=…`, then the wait until the replacing installer pod reports its
 * install complete (a failed one says why at once). Resolves to that report.
 */
export async function switchEngine(h: NodeCluster, ociType: string): Promise<Record<string, unknown>> {
  const [before] = await componentPods(h, 'installer');
  const r = await h.helm(['upgrade', RELEASE, CHART, '--namespace', NAMESPACE, '--reuse-values', '--set', `ociType=${ociType}`], { timeoutMs: 300_000 });
  if (r.code !== 0) throw new Error(`helm upgrade failed (exit ${r.code}): ${r.stderr.trim()}\n${await productLogs(h)}`);
  return waitFor(h, `the upgraded installer pod (ociType ${ociType}) reporting its install`, async () => {
    const pods = (await componentPods(h, 'installer')).filter((p) => p.uid !== before?.uid && p.phase === 'Running');
    if (pods.length !== 1) return undefined;
    const failed = (await h.cluster.kubectl(['-n', NAMESPACE, 'logs', pods[0].name])).stdout.split('\n').find((l) => l.includes('"level":"error"'));
    if (failed) throw new Error(`the upgraded installer failed: ${failed}`);
    return runReport(h, pods[0].name, 'install');
  }, 180_000);
}

/** `helm test` (the chart's WASI test pod) with its pod's log; throws with the pod's description unless it Succeeded. */
export async function helmTest(h: NodeCluster): Promise<string> {
  const r = await h.helm(['test', RELEASE, '--namespace', NAMESPACE, '--timeout=120s', '--logs'], { timeoutMs: 180_000 });
  if (r.code !== 0 || !/Phase:\s+Succeeded/.test(r.stdout)) {
    throw new Error(`helm test failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}\n${(await h.cluster.kubectl(['-n', NAMESPACE, 'describe', 'pod', 'knawd-wasm-test'])).stdout}\n${await productLogs(h)}`);
  }
  return r.stdout;
}
