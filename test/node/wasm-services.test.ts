/**
 * WASM services on the real single-node cluster (containerd 2.x, chart ociType crun-wasmedge), as a user runs
 * them: the README's examples applied verbatim (a WASI Pod, a Deployment of the WASM HTTP service behind a
 * ClusterIP Service), no annotation anywhere. The module answers through kube-proxy from inside the node's
 * network namespace, `kubectl logs` shows what it printed, a deleted module pod stops at SIGTERM instead of
 * waiting out its grace period, and a `run.oci.*` annotation other than crun's handler choice never reaches crun
 * (containerd's pod_annotations do not pass it; the handler's crun would drop it: test/e2e shows that on CRI-O).
 */
import { DEFAULT_RUNTIME_CLASS, INSTALLED_LABEL, NODE_STATUS_ANNOTATION, WASM_SERVICE_ANSWER } from '../../lib/catalog';
import { NodeCluster, IMAGES, NODE_NAME } from '../../demo/cluster/cluster';
import { WASM_LINE, PLAIN_LINE } from '../../demo/cluster/images/test-images';
import { chartFlags, finishWasmPod, helmInstall, NAMESPACE, RELEASE, waitFor, wasmPod } from '../../demo/cluster/product';
import { CHART } from '../support/cluster/objects';
import { Engine, HOST_LINE, PROBE_ENV, PROBE_VOLUME, TRAP_EXIT, TRAP_MESSAGE, WASM_WRITTEN } from '../support/wasi-probe';
import { exec } from '../../demo/cluster/process';
import { clusterForFile } from '../support/node/steps';
import { readmeExample, readmeExampleObjects } from '../../demo/readme-examples';

jest.setTimeout(10 * 60_000);

/** GET through the cluster's network (kube-proxy's DNAT of the ClusterIP), from inside the node's namespace. */
function httpGet(h: NodeCluster, url: string): { code: number | null; body: string } {
  const [command, ...args] = h.netns.enter(['curl', '--silent', '--show-error', '--fail', '--max-time', '5', url]);
  const r = exec(command, args, { timeoutMs: 15_000 });
  return { code: r.code, body: r.stdout.trim() };
}

async function podNames(h: NodeCluster, selector: string): Promise<string[]> {
  const pods = JSON.parse(await h.kubectlOk(['get', 'pods', '-l', selector, '-o', 'json'])).items;
  return pods.filter((p: { metadata: { deletionTimestamp?: string } }) => !p.metadata.deletionTimestamp).map((p: { metadata: { name: string } }) => p.metadata.name);
}

describe('WASM services on a real node, no annotation (containerd 2.x; crun-wasmedge, then crun-wasmtime)', () => {
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
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(wasmPod('foreign-annotation', 'default', { 'run.oci.pidfd_receiver': receiver })) });
    const r = await finishWasmPod(h, 'foreign-annotation', 'default');
    expect([r.wasmLog, r.plainLog]).toEqual([WASM_LINE, PLAIN_LINE]);
    // What containerd handed crun: the OCI spec it keeps for each container (the bundle's config.json).
    const status = JSON.parse(await h.kubectlOk(['get', 'pod', 'foreign-annotation', '-o', 'json'])).status;
    expect(status.containerStatuses).toHaveLength(2);
    for (const c of status.containerStatuses) {
      const id = String(c.containerID).replace(/^containerd:\/\//, '');
      const spec = JSON.parse(h.node.ctr(['-n', 'k8s.io', 'containers', 'info', id])).Spec;
      expect(spec.annotations['io.kubernetes.cri.container-name']).toBe(c.name);
      expect(Object.keys(spec.annotations).filter((k) => k.startsWith('run.oci.'))).toEqual([]);
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

  /**
   * What a module relies on, on the node: one pod, no annotation, a busybox init container filling an emptyDir
   * natively, then one probe container per behaviour — args pick the behaviour, env as the pod sets it (no HOME
   * added), a ConfigMap read by absolute path, the emptyDir read and written, exit status 3 in the pod status,
   * stdout and stderr in `kubectl logs`, a trap with the engine's message and exit status.
   */
  async function probeOnNode(h: NodeCluster, engine: Engine): Promise<void> {
    const name = `probe-${engine}`;
    const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { 'input.txt': `from a ConfigMap for ${engine}\n` } };
    const probe = (container: string, args: string[], extra: Record<string, unknown> = {}) => ({ name: container, image: IMAGES.probe, imagePullPolicy: 'Never', args, ...extra });
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        runtimeClassName: DEFAULT_RUNTIME_CLASS,
        restartPolicy: 'Never',
        volumes: [{ name: 'config', configMap: { name } }, { name: 'scratch', emptyDir: {} }],
        initContainers: [{ name: 'fill', image: IMAGES.busybox, imagePullPolicy: 'Never', command: ['/bin/busybox', 'sh', '-c', `echo '${HOST_LINE}' > ${PROBE_VOLUME}/from-host.txt`], volumeMounts: [{ name: 'scratch', mountPath: PROBE_VOLUME }] }],
        containers: [
          probe('files', ['files'], { volumeMounts: [{ name: 'config', mountPath: '/etc/wasi-probe', readOnly: true }] }),
          probe('volume', ['volume', PROBE_VOLUME], { volumeMounts: [{ name: 'scratch', mountPath: PROBE_VOLUME }] }),
          probe('env', ['env'], { env: Object.entries(PROBE_ENV).map(([k, v]) => ({ name: k, value: v })) }),
          probe('exit-3', ['exit', '3']),
          probe('stdout', ['stdout']),
          probe('trap', ['trap']),
        ],
      },
    };
    await h.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [configMap, pod] }) });
    let statuses: Array<{ name: string; state: { terminated?: { exitCode: number } } }> = [];
    await waitFor(h, `pod ${name}: every probe container terminated`, async () => {
      statuses = JSON.parse(await h.kubectlOk(['get', 'pod', name, '-o', 'json'])).status.containerStatuses ?? [];
      return statuses.length === 6 && statuses.every((c) => c.state.terminated) ? true : undefined;
    }, 120_000, () => JSON.stringify(statuses));
    const exit = Object.fromEntries(statuses.map((c) => [c.name, c.state.terminated!.exitCode]));
    const logs = async (c: string): Promise<string> => h.kubectlOk(['logs', name, '-c', c]);
    expect(exit).toEqual({ files: 0, volume: 0, env: 0, 'exit-3': 3, stdout: 0, trap: TRAP_EXIT[engine] });
    expect((await logs('files')).trim()).toBe(`files: from a ConfigMap for ${engine} | ${WASM_WRITTEN.trim()}`);
    expect((await logs('volume')).trim()).toBe(`volume: ${HOST_LINE}`);
    const env = (await logs('env')).trim().split('\n');
    expect(env).toContain(`PROBE_GREETING=${PROBE_ENV.PROBE_GREETING}`);
    expect(env.filter((l) => l.startsWith('HOME='))).toEqual([]);
    expect(await logs('stdout')).toBe('exact output\n');
    expect(await logs('exit-3')).toBe('exit 3\n');
    const trap = await logs('trap');
    expect(trap).toContain('before trap');
    expect(trap).toMatch(TRAP_MESSAGE[engine]);
    await h.kubectlOk(['delete', 'pod', name, '--wait=true']);
    await h.kubectlOk(['delete', 'configmap', name]);
  }

  test('what a module relies on, under WasmEdge: args, env, a ConfigMap, an emptyDir, exit status, stdout and stderr', async () => {
    await probeOnNode(steps.need('install'), 'wasmedge');
  });

  test('the same under wasmtime, after helm upgrade --set ociType=crun-wasmtime', async () => {
    const h = steps.need('install');
    const r = await h.helm(['upgrade', RELEASE, CHART, '--namespace', NAMESPACE, ...chartFlags(h, 'crun-wasmtime', { target: 'auto' })], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(`helm upgrade failed: ${r.stderr}`);
    let status = '';
    await waitFor(h, 'the node installed with crun-wasmtime', async () => {
      const node = JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json']));
      status = node.metadata.annotations?.[NODE_STATUS_ANNOTATION] ?? '';
      const report = status ? JSON.parse(status) : {};
      return node.metadata.labels?.[INSTALLED_LABEL.key] === INSTALLED_LABEL.value && report.runtime === 'crun-wasmtime' && report.state === 'installed' ? true : undefined;
    }, 180_000, () => status);
    await probeOnNode(h, 'wasmtime');
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
