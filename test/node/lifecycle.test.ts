/**
 * The product on a real single-node cluster (issue 13), for containerd 1.7 and 2.x: `helm install` of
 * dist/charts/knawd-deployer with target auto (issue 16) runs the installer DaemonSet on a real kubelet, which
 * finds from the real Node object and the node's files that the node is plain containerd, configures the node
 * (overlay upper dirs), restarts containerd exactly once through the recorded systemctl shim and labels the
 * node; a WASI pod with no annotation prints its line through `kubectl logs` with a plain container beside it;
 * `helm test` runs the chart's default WASI test image, named by its image index digest; `helm uninstall` restores
 * the node's config byte for byte. Each step fails with the failing component's log.
 * On containerd 2.x, WASM Jobs (issue 31): the probe calling exit(0) is Complete, exit(3) Failed with exit code 3;
 * the Node lists the handler with the features containerd found in crun (node.status.runtimeHandlers).
 *
 * The installer image is the one `npm run image` builds (demo/cluster/images/installer-image.ts).
 */
import { INSTALLED_LABEL } from '../../lib/catalog/node-contract';
import { PLAIN_LINE, WASM_LINE } from '../../demo/cluster/images/test-images';
import { NODE_NAME, NodeCluster } from '../../demo/cluster/cluster';
import { ClusterSteps } from '../support/node/steps';
import { WASM_TEST_IMAGE } from '../../lib/catalog/test-image';
import { ComponentPod, componentPods, helmInstall, helmTest, helmUninstall, NAMESPACE, nodeLabels, restartsOf, runWasmJob, runWasmPod, unrestored, waitFor } from '../../demo/cluster/product';

jest.setTimeout(10 * 60_000);

/** What containerd 2.2 under kubelet 1.37 reports crun 1.21 can do, on this machine's kernel (6.18). */
const CRUN_FEATURES = { recursiveReadOnlyMounts: true, userNamespaces: true };

describe.each([1, 2] as const)('helm install --set target=auto / uninstall on a real node with containerd %d.x', (major) => {
  const steps = new ClusterSteps();
  const need = (...names: string[]): NodeCluster => steps.need(...names);
  const timings: string[] = [];

  beforeAll(async () => {
    const c = await steps.start(major);
    timings.push(`node Ready ${c.readyMs} ms`);
  }, 8 * 60_000);

  afterAll(async () => {
    await steps.stop();
    console.log(`containerd ${major}.x timings: ${timings.join(', ')}`);
  });

  test('helm install: the installer pod runs on the node, finds it is containerd, configures it, restarts containerd once, labels it', async () => {
    const h = need();
    const { labelledMs } = await helmInstall(h, 'crun-wasmtime', { target: 'auto' });
    timings.push(`helm install → node labelled ${labelledMs} ms`);

    // The install restarted containerd under the installer's own container: until the kubelet has seen it again it
    // may report the container as waiting, and `kubectl logs` refuses then.
    let installers: ComponentPod[] = [];
    await waitFor(h, 'the installer pod Running and Ready again after the containerd restart', async () => {
      installers = await componentPods(h, 'installer');
      return installers.length === 1 && installers[0].phase === 'Running' && installers[0].ready ? true : undefined;
    }, 60_000, () => JSON.stringify(installers));
    // What the installer found: the kubelet's containerd (this node's major) and the node's own files.
    const log = await h.kubectlOk(['-n', NAMESPACE, 'logs', '-l', 'app.kubernetes.io/component=installer', '--tail=-1']);
    const detected = JSON.parse(log.split('\n').find((l) => l.includes('"msg":"target ')) ?? '{}');
    expect(detected.msg).toBe('target containerd (auto)');
    expect(detected.evidence).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^node object: runtime containerd://${major}\\.\\d+\\.\\d+\\S*, kubelet v1\\.\\d+\\.\\d+, OS `)),
        expect.stringMatching(/^host: .*\/etc\/containerd\/config\.toml/),
        expect.stringMatching(new RegExp(`^target containerd: the kubelet talks to containerd://${major}\\.`)),
        'not microk8s: /var/snap/microk8s/current/args/containerd-template.toml does not exist, which every microk8s node has',
      ]),
    );
    expect(log).toContain(`"msg":"containerd ${major}.`);

    // What the kubelet reports for our handler (node.status.runtimeHandlers, docs/kubernetes-releases.md): containerd
    // 2.x lists it with the features it found in crun's `features`, and the installer logs them; 1.7 lists no handler.
    const handlers = (JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json'])).status.runtimeHandlers ?? []) as Array<{ name: string }>;
    if (major === 2) {
      expect(handlers.find((x) => x.name === 'crun-wasm')).toEqual({ name: 'crun-wasm', features: CRUN_FEATURES });
      const listed = JSON.parse(log.split('\n').find((l) => l.includes('lists runtime handler crun-wasm')) ?? '{}');
      expect([listed.msg, listed.features]).toEqual([`node ${NODE_NAME} lists runtime handler crun-wasm in its status`, CRUN_FEATURES]);
    } else {
      expect(handlers).toEqual([]);
    }

    const pods = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pods', '-l', 'app.kubernetes.io/component=installer', '-o', 'json'])).items;
    expect(pods.map((p: { spec: { nodeName: string }; status: { phase: string } }) => [p.spec.nodeName, p.status.phase])).toEqual([[NODE_NAME, 'Running']]);
    expect((await nodeLabels(h))[INSTALLED_LABEL.key]).toBe(INSTALLED_LABEL.value);
    expect(h.node.supervisor.calls().map((x) => [x.args, x.code])).toEqual([[['restart', 'containerd'], 0]]);
    const containerd = (await h.node.supervisor.status()).find((u) => u.name === 'containerd');
    expect([containerd?.state, containerd?.starts]).toEqual(['active', 2]);

    // containerd 1.x: our block in config.toml. 2.x: its default config imports conf.d, so our drop-in goes there
    // and config.toml stays as it was (never even copied up into the overlay).
    const written = [...h.node.upper().keys()];
    const dropIn = 'etc/containerd/conf.d/50-knawd-crun-wasm.toml';
    if (major === 1) {
      expect(h.node.nodeFile(h.node.containerdConfigPath)?.toString('utf8')).toContain('crun-wasm');
      expect(written).toContain(h.node.containerdConfigPath);
    } else {
      expect(h.node.nodeFile(dropIn)?.toString('utf8')).toContain('/opt/knawd/bin/crun-wasmtime');
      expect(written).toContain(dropIn);
      expect(written).not.toContain(h.node.containerdConfigPath);
    }
    expect(written.filter((p) => p.startsWith('opt/knawd/'))).toEqual(expect.arrayContaining(['opt/knawd/bin/crun-wasmtime', 'opt/knawd/lib/libwasmtime.so', 'opt/knawd/libexec/crun-wasmtime/crun']));
    steps.mark('install');
  });

  test('a WASI pod with no annotation prints its line through kubectl logs; a plain container beside it runs', async () => {
    const h = need('install');
    const r = await runWasmPod(h, 'wasm-hello');
    timings.push(`WASI pod created → Succeeded ${r.ms} ms`);
    expect(r.wasmLog).toBe(WASM_LINE);
    expect(r.plainLog).toBe(PLAIN_LINE);
    await h.kubectlOk(['delete', 'pod', 'wasm-hello', '--wait=true', '--timeout=60s']);
    steps.mark('wasm');
  });

  test("helm test runs the chart's default test image, which the node resolves by its image index digest (the import of the index archive)", async () => {
    const h = need('install');
    expect(WASM_TEST_IMAGE).toBe(`${h.images.installer.wasiName.replace(/:[^:/]+$/, '')}@${h.images.installer.wasiDigest}`);
    expect(await helmTest(h)).toContain(WASM_LINE);
    const pod = JSON.parse(await h.kubectlOk(['-n', NAMESPACE, 'get', 'pod', 'knawd-wasm-test', '-o', 'json']));
    expect(pod.spec.containers[0].image).toBe(WASM_TEST_IMAGE);
    await h.kubectlOk(['-n', NAMESPACE, 'delete', 'pod', 'knawd-wasm-test', '--wait=true', '--timeout=60s']);
  });

  // One containerd is enough for what the Job controller makes of a module's exit (issue 31).
  if (major === 2) {
    test('WASM Jobs: the probe calling exit(0) is Complete, exit(3) is Failed with exit code 3 in the pod status', async () => {
      const h = need('install');
      const ok = await runWasmJob(h, 'wasm-exit-0', ['exit', '0']);
      const failed = await runWasmJob(h, 'wasm-exit-3', ['exit', '3']);
      expect([ok, failed]).toEqual([
        { condition: 'Complete', exitCode: 0, log: 'exit 0\n' },
        { condition: 'Failed', exitCode: 3, log: 'exit 3\n' },
      ]);
      for (const job of ['wasm-exit-0', 'wasm-exit-3']) await h.kubectlOk(['delete', 'job', job, '--cascade=foreground', '--wait=true', '--timeout=60s']);
    });
  }

  test('helm uninstall restores the node byte for byte and restarts containerd once more', async () => {
    const h = need('install', 'wasm');
    const r = await helmUninstall(h);
    expect({ code: r.code, output: r.output }).toEqual({ code: 0, output: expect.stringContaining('release "knawd" uninstalled') });
    timings.push(`helm uninstall returned ${r.uninstallMs} ms`, `helm uninstall → node restored ${r.restoredMs} ms`);
    expect(unrestored(h)).toEqual([]);
    expect(restartsOf(h, 'containerd')).toBe(2);
    expect(h.node.supervisor.calls().map((x) => [x.args, x.code])).toEqual([
      [['restart', 'containerd'], 0],
      [['restart', 'containerd'], 0],
    ]);
    // Whatever the uninstall left in the upper dirs is a byte-identical copy of the original.
    expect([...h.node.upper().keys()].filter((p) => !['etc', 'etc/containerd', h.node.containerdConfigPath].includes(p))).toEqual([]);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await need().stop()).toEqual([]);
  });
});
