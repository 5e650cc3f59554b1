/**
 * Lifecycle steps of issue 13 (3b, 3d) that the product does today, on the single-node cluster with containerd
 * 1.7 (the stand-in's crun cannot start pods under 2.x, see lifecycle.test.ts):
 *   b. a RuntimeClass pod created before the node is labelled stays Pending (unschedulable) and runs once the
 *      label appears; the label comes only after a deliberately slow containerd restart (the shim delays it)
 *   d. `helm upgrade` of logLevel only: the new installer pod writes 0 bytes and restarts nothing
 */
import { INSTALLED_LABEL } from '../../lib/catalog/node-contract';
import { WASM_LINE } from '../../demo/cluster/images/test-images';
import { NodeCluster } from '../../demo/cluster/cluster';
import { clusterForFile } from '../support/node/steps';
import { CHART } from '../support/cluster/objects';
import { chartFlags, componentPods, finishWasmPod, helmUninstall, NAMESPACE, nodeLabels, productLogs, RELEASE, runReport, waitFor, wasmPod } from '../../demo/cluster/product';

jest.setTimeout(10 * 60_000);

const SLOW_RESTART_MS = 8000;

describe('lifecycle steps on a real node with containerd 1.7', () => {
  const steps = clusterForFile(1);
  const need = (...names: string[]): NodeCluster => steps.need(...names);

  test('b. a RuntimeClass pod created before the label stays Pending, and runs once the slow restart is done and the node labelled', async () => {
    const h = need();
    await h.node.supervisor.delayRestarts('containerd', SLOW_RESTART_MS);
    const installed = await h.helm(['install', RELEASE, CHART, '--namespace', NAMESPACE, '--create-namespace', ...chartFlags(h, 'crun-wasmtime')]);
    if (installed.code !== 0) throw new Error(`helm install failed: ${installed.stderr}\n${await productLogs(h)}`);
    const created = Date.now();
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(wasmPod('early-wasm')) });

    // The scheduler refuses it while the node lacks the label (the RuntimeClass's nodeSelector).
    const unschedulable = await waitFor(h, 'the early pod reported Unschedulable', async () => {
      const pod = JSON.parse(await h.kubectlOk(['get', 'pod', 'early-wasm', '-o', 'json']));
      const cond = (pod.status.conditions ?? []).find((x: { type: string }) => x.type === 'PodScheduled');
      return cond?.status === 'False' && cond.reason === 'Unschedulable' ? { cond, phase: pod.status.phase, nodeName: pod.spec.nodeName } : undefined;
    }, 60_000);
    expect(unschedulable.phase).toBe('Pending');
    expect(unschedulable.nodeName).toBeUndefined();
    expect((await nodeLabels(h))[INSTALLED_LABEL.key]).not.toBe(INSTALLED_LABEL.value);

    const labelledAt = await waitFor(h, 'the node labelled', async () => ((await nodeLabels(h))[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? Date.now() : undefined), 120_000);
    const calls = h.node.supervisor.calls();
    expect(calls.map((x) => [x.args, x.code, x.delayMs])).toEqual([[['restart', 'containerd'], 0, SLOW_RESTART_MS]]);
    // The label came only after the slow restart had finished.
    expect(labelledAt).toBeGreaterThanOrEqual(Date.parse(calls[0].start) + calls[0].ms);
    expect(calls[0].ms).toBeGreaterThanOrEqual(SLOW_RESTART_MS);

    const r = await finishWasmPod(h, 'early-wasm', 'default', created);
    expect(r.wasmLog).toBe(WASM_LINE);
    await h.kubectlOk(['delete', 'pod', 'early-wasm', '--wait=true', '--timeout=60s']);
    await h.node.supervisor.delayRestarts('containerd', 0);
    steps.mark('install');
  });

  test('d. helm upgrade of logLevel only: a new installer pod runs, writes 0 bytes and restarts nothing', async () => {
    const h = need('install');
    const [before] = await componentPods(h, 'installer');
    const upperBefore = h.node.upperSummary();
    const callsBefore = h.node.supervisor.calls().length;
    const r = await h.helm(['upgrade', RELEASE, CHART, '--namespace', NAMESPACE, '--reuse-values', '--set', 'logLevel=debug']);
    if (r.code !== 0) throw new Error(`helm upgrade failed: ${r.stderr}\n${await productLogs(h)}`);
    const report = await waitFor(h, 'the upgraded installer pod reporting its install', async () => {
      const pods = (await componentPods(h, 'installer')).filter((p) => p.uid !== before.uid && p.phase === 'Running');
      return pods.length === 1 ? runReport(h, pods[0].name, 'install') : undefined;
    }, 120_000);
    expect(report).toMatchObject({ bytesWritten: 0, filesWritten: 0, restarts: 0, restartPending: false, changed: 0 });
    expect(h.node.supervisor.calls().length).toBe(callsBefore);
    expect(h.node.upperSummary()).toEqual(upperBefore);
    expect((await nodeLabels(h))[INSTALLED_LABEL.key]).toBe(INSTALLED_LABEL.value);
    steps.mark('upgrade');
  });

  test('helm uninstall afterwards restores the node', async () => {
    const h = need('install');
    const r = await helmUninstall(h);
    expect(r.code).toBe(0);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await need().stop()).toEqual([]);
  });
});
