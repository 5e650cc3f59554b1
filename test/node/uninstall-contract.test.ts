/**
 * Issue 13 3a (readiness) and 3e (uninstall), and issue 15's readiness, on containerd 1.7: the host-changed label
 * (`knawd.dev/crun-wasm-host=changed`, HOST_CHANGED_LABEL in lib/catalog/node-contract.ts) is set before the
 * installer's first host write and removed only once the host is restored, and the uninstall wait Job waits
 * until no node carries it; the installer pod is Ready only once its node is configured and verified, so
 * `kubectl rollout status` waits for the node.
 *
 * Nothing here is polled after `helm uninstall` returns: the node must already be restored at that moment.
 */
import { HOST_CHANGED_LABEL, INSTALLED_LABEL, NODE_STATE_LABEL } from '../../lib/catalog/node-contract';
import { NODE_STATUS_ANNOTATION } from '../../lib/catalog/rollout';
import { CHART } from '../support/cluster/objects';
import { NODE_NAME, IMAGES, NodeCluster } from '../../demo/cluster/cluster';
import { chartFlags, componentPods, NAMESPACE, nodeLabels, productLogs, RELEASE, restartsOf, unrestored, waitFor } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(10 * 60_000);

const SLOW_RESTART_MS = 8000;
/**
 * How long the remover waits for pods on the handler before it refuses (the chart's uninstallPodsTimeoutSeconds):
 * the refusal case needs only the refusal, not the default's two minutes of waiting.
 */
const PODS_TIMEOUT_SECONDS = 5;

/** A pod that keeps running with the handler (a plain container through the RuntimeClass). */
const handlerPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'busy-on-handler', namespace: 'default' },
  spec: {
    runtimeClassName: 'crun',
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'sleep', image: IMAGES.busybox, imagePullPolicy: 'Never', command: ['/bin/busybox', 'sleep', '3600'] }],
  },
};

async function releases(h: NodeCluster): Promise<Array<{ name: string; status: string }>> {
  const r = await h.helm(['list', '--namespace', NAMESPACE, '--all', '-o', 'json']);
  return JSON.parse(r.stdout || '[]');
}

/**
 * Runs `helm uninstall` while recording whether the remover and wait Job pods ran, and checks the node at the
 * moment helm returns.
 */
async function uninstallWatched(h: NodeCluster, timeout: string): Promise<{ code: number; output: string; seen: Set<string>; removerLogs: string; unrestoredAtReturn: string[]; labelsAtReturn: Record<string, string> }> {
  const seen = new Set<string>();
  // Read while the remover's pods exist: Helm deletes the remover's DaemonSet (a hook) during the uninstall.
  let removerLogs = '';
  let watching = true;
  const watch = (async () => {
    for (let tick = 0; watching; tick++) {
      for (const component of ['remover', 'uninstall-wait']) {
        const pods = await componentPods(h, component).catch(() => []);
        for (const p of pods) if (p.phase === 'Running' || p.phase === 'Succeeded') seen.add(component);
        if (component === 'remover' && pods.length > 0 && tick % 5 === 0) {
          const logs = await h.cluster.kubectl(['-n', NAMESPACE, 'logs', '-l', 'app.kubernetes.io/component=remover', '--tail=-1']);
          if (logs.code === 0) removerLogs += logs.stdout;
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const r = await h.helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--wait', `--timeout=${timeout}`], { timeoutMs: 600_000 });
  const unrestoredAtReturn = unrestored(h);
  const labelsAtReturn = await nodeLabels(h);
  watching = false;
  await watch;
  return { code: r.code, output: `${r.stdout}${r.stderr}`, seen, removerLogs, unrestoredAtReturn, labelsAtReturn };
}

describe('uninstall waits for the restored node (contract of the host-changed label and the readiness probe)', () => {
  const steps = clusterForFile(1);
  const need = (...names: string[]): NodeCluster => steps.need(...names);

  /** What the install step saw while the node was being configured (the slow restart running). */
  let beforeLabel: { ready: boolean; labels: Record<string, string> } | undefined;
  let rolloutCode: number | undefined;
  /** When `kubectl rollout status` returned, when the pod last became Ready, when the node became installed (ms). */
  let times: { rolloutDone: number; ready: number; installed: number } | undefined;

  test('install with a slow containerd restart: the node is labelled after it', async () => {
    const h = need();
    await h.node.supervisor.delayRestarts('containerd', SLOW_RESTART_MS);
    const r = await h.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--create-namespace', ...chartFlags(h, 'crun-wasmtime', { uninstallPodsTimeoutSeconds: String(PODS_TIMEOUT_SECONDS) })]);
    if (r.code !== 0) throw new Error(`helm install failed: ${r.stderr}\n${await productLogs(h)}`);
    const rollout = h.cluster.kubectl(['-n', NAMESPACE, 'rollout', 'status', 'daemonset/knawd-installer', '--timeout=120s'], { timeoutMs: 130_000 });
    // While the node is being configured (host changed, state pending: the slow restart is running) the
    // pod is there. Its phase may still read Pending: containerd is down meanwhile, so the kubelet cannot report
    // the container started.
    const configuring = await waitFor(h, 'the installer pod while its node is being configured', async () => {
      const [pod] = await componentPods(h, 'installer');
      const labels = await nodeLabels(h);
      const busy = labels[HOST_CHANGED_LABEL.key] === HOST_CHANGED_LABEL.value && labels[NODE_STATE_LABEL] === 'pending';
      return pod && busy ? { ready: pod.ready, labels } : undefined;
    }, 60_000);
    beforeLabel = configuring;
    rolloutCode = (await rollout).code;
    const rolloutDone = Date.now();
    await waitFor(h, 'the node labelled', async () => ((await nodeLabels(h))[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? true : undefined), 120_000);
    const node = JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json']));
    const [pod] = await componentPods(h, 'installer');
    const podJson = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pod', pod.name, '-o', 'json']));
    const readyCondition = (podJson.status.conditions as Array<{ type: string; status: string; lastTransitionTime: string }>).find((c) => c.type === 'Ready');
    times = { rolloutDone, ready: Date.parse(readyCondition?.status === 'True' ? readyCondition.lastTransitionTime : ''), installed: Date.parse(JSON.parse(node.metadata.annotations[NODE_STATUS_ANNOTATION]).since) };
    expect(restartsOf(h, 'containerd')).toBe(1);
    await h.node.supervisor.delayRestarts('containerd', 0);
    steps.mark('install');
  });

  test('a. the installer pod was not Ready while its node was being configured; rollout status waited for it', async () => {
    need('install');
    expect(beforeLabel?.ready).toBe(false);
    expect(rolloutCode).toBe(0);
    // Ready only from the moment the node was installed (the condition's time has whole seconds), and rollout
    // status returned only after that.
    expect(times!.ready).toBeGreaterThanOrEqual(Math.floor(times!.installed / 1000) * 1000);
    expect(times!.rolloutDone).toBeGreaterThanOrEqual(times!.installed);
  });

  test('the host-changed label was set while the node was being configured, and stays once it is', async () => {
    const h = need('install');
    expect(beforeLabel?.labels[HOST_CHANGED_LABEL.key]).toBe(HOST_CHANGED_LABEL.value);
    expect((await nodeLabels(h))[HOST_CHANGED_LABEL.key]).toBe(HOST_CHANGED_LABEL.value);
  });

  test('e. with a pod still on the handler, helm uninstall waits, fails clearly and keeps the release; the node stays configured', async () => {
    const h = need('install');
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(handlerPod) });
    await h.kubectlOk(['wait', '--for=condition=Ready', 'pod/busy-on-handler', '--timeout=120s'], { timeoutMs: 130_000 });
    // Far longer than the remover's wait for pods and the wait Job's bound: the refusal, not Helm's own timeout,
    // ends the uninstall.
    const r = await uninstallWatched(h, '4m');
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/knawd-uninstall-wait/);
    expect(await releases(h)).toEqual([expect.objectContaining({ name: RELEASE })]);
    expect(r.unrestoredAtReturn).not.toEqual([]);
    expect(r.labelsAtReturn[HOST_CHANGED_LABEL.key]).toBe(HOST_CHANGED_LABEL.value);
    expect(r.seen).toEqual(new Set(['remover', 'uninstall-wait']));
    // Helm names the hook that failed, and the wait Job, kept for inspection, quotes the remover's reason.
    expect(r.output).toMatch(/knawd-uninstall-wait/);
    const job = (await h.cluster.kubectl(['-n', NAMESPACE, 'logs', 'job/knawd-uninstall-wait'])).stdout;
    expect(job).toContain('the remover refused on 1 node(s): knawd-node: 1 pod(s) on node knawd-node still run with handler crun-wasm (default/busy-on-handler)');
    // It waited as long as the release's value says (its log, read while its pod existed).
    expect(r.removerLogs).toContain(`waiting up to ${PODS_TIMEOUT_SECONDS} s for 1 pod(s) using handler crun-wasm to finish`);
    expect(restartsOf(h, 'containerd')).toBe(1);
    steps.mark('refused');
  });

  test('e. once the pod is gone, helm uninstall returns only after the node is restored, even with a slow restart', async () => {
    const h = need('refused');
    await h.kubectlOk(['delete', 'pod', 'busy-on-handler', '--wait=true', '--timeout=60s']);
    await h.node.supervisor.delayRestarts('containerd', SLOW_RESTART_MS);
    const r = await uninstallWatched(h, '5m');
    expect({ code: r.code, output: r.output }).toEqual({ code: 0, output: expect.stringContaining(`release "${RELEASE}" uninstalled`) });
    expect(r.seen).toEqual(new Set(['remover', 'uninstall-wait']));
    expect(r.unrestoredAtReturn).toEqual([]);
    expect(Object.keys(r.labelsAtReturn).filter((k) => k === INSTALLED_LABEL.key || k === HOST_CHANGED_LABEL.key)).toEqual([]);
    expect(await releases(h)).toEqual([]);
    const calls = h.node.supervisor.calls().filter((c) => c.args[0] === 'restart');
    expect(calls.map((c) => [c.args, c.code])).toEqual([
      [['restart', 'containerd'], 0],
      [['restart', 'containerd'], 0],
    ]);
    expect(calls[1].delayMs).toBe(SLOW_RESTART_MS);
    expect(JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json'])).metadata.labels[HOST_CHANGED_LABEL.key]).toBeUndefined();
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await need().stop()).toEqual([]);
  });
});
