/**
 * WASM services on the real single-node cluster (containerd 2.x, chart ociType crun-wasmedge), as a user runs
 * them: the README's examples applied verbatim (a WASI Pod, a Deployment of the WASM HTTP service behind a
 * ClusterIP Service), no annotation anywhere. The module answers through kube-proxy from inside the node's
 * network namespace, `kubectl logs` shows what it printed, a deleted module pod stops at SIGTERM instead of
 * waiting out its grace period, and a `run.oci.*` annotation other than crun's handler choice never reaches crun
 * (containerd's pod_annotations do not pass it; the handler's crun would drop it: test/e2e shows that on CRI-O).
 */
import * as fs from 'fs';
import { DEFAULT_RUNTIME_CLASS, WASM_SERVICE_ANSWER } from '../../lib/catalog';
import { NodeCluster, IMAGES } from '../../demo/cluster/cluster';
import { WASM_LINE, PLAIN_LINE } from '../../demo/cluster/images/test-images';
import { finishWasmPod, helmInstall, waitFor } from '../../demo/cluster/product';
import { exec } from '../../demo/cluster/process';
import { clusterForFile } from '../support/node/steps';
import { readmeExample, readmeExampleObjects } from '../../demo/readme-examples';

jest.setTimeout(10 * 60_000);

/** GET through the cluster's network (kube-proxy's DNAT of the ClusterIP), from inside the node's namespace. */
function httpGet(h: NodeCluster, url: string): { code: number | null; body: string } {
  const [command, ...args] = h.netns.enter(['/bin/busybox', 'wget', '-q', '-O', '-', '-T', '5', url]);
  const r = exec(command, args, { timeoutMs: 15_000 });
  return { code: r.code, body: r.stdout.trim() };
}

async function podNames(h: NodeCluster, selector: string): Promise<string[]> {
  const pods = JSON.parse(await h.kubectlOk(['get', 'pods', '-l', selector, '-o', 'json'])).items;
  return pods.filter((p: { metadata: { deletionTimestamp?: string } }) => !p.metadata.deletionTimestamp).map((p: { metadata: { name: string } }) => p.metadata.name);
}

describe('WASM services on a real node, no annotation (containerd 2.x, crun-wasmedge)', () => {
  const steps = clusterForFile(2);
  const timings: string[] = [];
  afterAll(() => console.log(`wasm services: ${timings.join(', ')}`));

  test('the chart installs crun-wasmedge on the node', async () => {
    const h = steps.need();
    const { labelledMs } = await helmInstall(h, 'crun-wasmedge', { target: 'auto' });
    timings.push(`helm install → labelled ${labelledMs} ms`);
    steps.mark('install');
  });

  test("the README's WASI Pod runs the module on the engine with nothing but runtimeClassName: crun", async () => {
    const h = steps.need('install');
    const [pod] = readmeExampleObjects('pod');
    expect(pod.metadata.annotations).toBeUndefined();
    expect(pod.spec.runtimeClassName).toBe(DEFAULT_RUNTIME_CLASS);
    const started = Date.now();
    await h.kubectlOk(['apply', '-f', '-'], { input: readmeExample('pod') });
    let phase = '';
    await waitFor(h, 'the README pod Succeeded', async () => {
      phase = JSON.parse(await h.kubectlOk(['get', 'pod', pod.metadata.name, '-o', 'json'])).status.phase;
      if (phase === 'Failed') throw new Error(`the README pod failed: ${await h.kubectlOk(['describe', 'pod', pod.metadata.name])}`);
      return phase === 'Succeeded' ? true : undefined;
    }, 120_000, () => phase);
    timings.push(`README pod created → Succeeded ${Date.now() - started} ms`);
    expect((await h.kubectlOk(['logs', pod.metadata.name])).trim()).toBe(WASM_LINE);
    await h.kubectlOk(['delete', 'pod', pod.metadata.name, '--wait=true']);
  });

  test('a run.oci.* annotation other than the handler choice never reaches crun; the pod starts, its sidecar runs natively', async () => {
    const h = steps.need('install');
    const receiver = '/run/knawd-test-no-such-receiver.sock';
    // crun would connect to this socket to hand over the container's pidfd; it does not exist, so a crun that
    // saw the annotation would fail to create the container.
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'foreign-annotation', annotations: { 'run.oci.pidfd_receiver': receiver } },
      spec: {
        runtimeClassName: DEFAULT_RUNTIME_CLASS,
        restartPolicy: 'Never',
        containers: [
          { name: 'wasm', image: IMAGES.wasm, imagePullPolicy: 'Never' },
          { name: 'plain', image: IMAGES.busybox, imagePullPolicy: 'Never' },
        ],
      },
    };
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(pod) });
    const r = await finishWasmPod(h, 'foreign-annotation', 'default');
    expect([r.wasmLog, r.plainLog]).toEqual([WASM_LINE, PLAIN_LINE]);
    // What containerd handed crun: the bundle's config.json (kept until the container is removed).
    const status = JSON.parse(await h.kubectlOk(['get', 'pod', 'foreign-annotation', '-o', 'json'])).status;
    for (const c of status.containerStatuses) {
      const id = String(c.containerID).replace(/^containerd:\/\//, '');
      const config = JSON.parse(fs.readFileSync(h.node.host(`run/containerd/io.containerd.runtime.v2.task/k8s.io/${id}/config.json`), 'utf8'));
      expect(Object.keys(config.annotations ?? {}).filter((k) => k.startsWith('run.oci.'))).toEqual([]);
    }
    await h.kubectlOk(['delete', 'pod', 'foreign-annotation', '--wait=true']);
  });

  test("the README's Deployment serves: 2 module replicas Ready, their answer through the ClusterIP Service, kubectl logs", async () => {
    const h = steps.need('install');
    const objects = readmeExampleObjects('deployment');
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    const service = objects.find((o) => o.kind === 'Service')!;
    expect(deployment.spec.template.metadata.annotations).toBeUndefined();
    const started = Date.now();
    await h.kubectlOk(['apply', '-f', '-'], { input: readmeExample('deployment') });
    await h.kubectlOk(['rollout', 'status', `deployment/${deployment.metadata.name}`, '--timeout=180s'], { timeoutMs: 190_000 });
    timings.push(`README deployment applied → 2 replicas Ready ${Date.now() - started} ms`);

    const pods = await podNames(h, 'app=wasm-http');
    expect(pods).toHaveLength(2);
    const clusterIP = JSON.parse(await h.kubectlOk(['get', 'service', service.metadata.name, '-o', 'json'])).spec.clusterIP;
    const answers = [1, 2, 3, 4].map(() => httpGet(h, `http://${clusterIP}:${service.spec.ports[0].port}/`));
    for (const a of answers) {
      expect(a.code).toBe(0);
      const m = WASM_SERVICE_ANSWER.exec(a.body);
      expect(m).not.toBeNull();
      expect(m![1]).toBe('WasmEdge');
      expect(pods).toContain(m![2]);
    }
    expect(httpGet(h, `http://${clusterIP}/healthz`)).toEqual({ code: 0, body: 'ok' });

    const logs = await h.kubectlOk(['logs', pods[0]]);
    expect(logs).toContain('wasm-http: listening on port 8080');
    expect(logs).toMatch(/^GET \/healthz 200$/m);
    steps.mark('deployment');
  });

  test('deleting a module pod: crun stops the module at SIGTERM, far within the grace period', async () => {
    const h = steps.need('install', 'deployment');
    const [victim] = await podNames(h, 'app=wasm-http');
    const grace = JSON.parse(await h.kubectlOk(['get', 'pod', victim, '-o', 'json'])).spec.terminationGracePeriodSeconds;
    const started = Date.now();
    await h.kubectlOk(['delete', 'pod', victim, '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
    const ms = Date.now() - started;
    timings.push(`kubectl delete pod of a module ${ms} ms (grace ${grace} s)`);
    expect(grace).toBe(30);
    expect(ms).toBeLessThan(10_000);
    // The Deployment replaces it, and the Service keeps answering.
    await h.kubectlOk(['rollout', 'status', 'deployment/wasm-http', '--timeout=120s'], { timeoutMs: 130_000 });
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
