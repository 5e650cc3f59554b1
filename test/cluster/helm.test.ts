/**
 * The generated Helm chart (dist/charts/knawd-deployer) on a real kube-apiserver: install, upgrade with
 * changed values, and uninstall with its pre-delete hooks, for a few variants one after another (they share
 * cluster-scoped names), plus an install with the original knawd chart's values file, unchanged. On the newest
 * Kubernetes release every variant, on the oldest supported one (tools/versions.env) one (k3s, uninstall with its
 * hooks) and the default install, which renders the node-restriction policy where the cluster serves it.
 *
 * There is no kubelet, scheduler or Job controller here, so no pod ever runs and the uninstall Job never
 * completes by itself. Helm waits for Job hooks until they complete or `--timeout` expires, so:
 *  - the "hooks included" uninstall plays the missing parts: it checks the hook objects Helm created (the
 *    remover DaemonSet's and the wait Job's specs), runs the Job's wait logic for real (the installer's
 *    `wait-removed`, from source, with the installer ServiceAccount's token) against a Node object labelled
 *    `knawd.dev/crun-wasm-host=changed` (not restored yet) — it must keep waiting while the label is there — then removes the label
 *    as the remover would, sees `wait-removed` succeed, and marks the Job Complete as the Job controller would
 *    after its pod exited 0. Only then does `helm uninstall` return, successfully, and delete the hooks.
 *  - one variant checks the failure path: nobody completes the Job, `helm uninstall` with a short timeout fails
 *    and leaves the release and the hook objects in place; `helm uninstall --no-hooks` then removes it.
 * Timeouts are kept short (seconds, not Helm's 5 minutes) because nothing here would ever become ready by
 * waiting longer; a long timeout would only slow the failure down.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HOST_CHANGED_LABEL, OPENSHIFT_TARGETS } from '../../lib/catalog';
import { Cluster, REPO, startCluster } from '../../demo/cluster/control-plane';
import { CHART, installSccCrd, loadObjects, manifestPath, objectDifferences, readBackExisting } from '../support/cluster/objects';
import { createNode, installerCliUntil, nodeLabels, serviceAccountKubeconfig } from '../support/cluster/node';
import { KUBERNETES_RELEASES } from '../support/cluster/releases';

jest.setTimeout(180_000);

const NS = 'knawd';
const RELEASE = 'knawd';
const LABEL = `${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`;

const VARIANTS = [
  { target: 'rhel8', ociType: 'crun-wasmedge', uninstall: 'hooks' },
  { target: 'ubuntu_22_04', ociType: 'crun-wasmtime', uninstall: 'timeout' },
  { target: 'k3s', ociType: 'crun-wasmtime', uninstall: 'hooks' },
] as const;

/** The values file of the original knawd/deployer chart, unchanged. */
const ORIGINAL_VALUES = path.join(REPO, 'test', 'fixtures', 'chart', 'original-values.yaml');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(200);
  }
}

function envOf(podSpec: any): Record<string, string> {
  return Object.fromEntries(podSpec.containers[0].env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
}

describe.each(KUBERNETES_RELEASES)('the Helm chart on a real API server (%s Kubernetes)', (release) => {
  let cluster: Cluster;
  let sccCrd = false;

  async function getJson(args: string[]): Promise<any> {
    return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json']));
  }

  async function exists(args: string[]): Promise<boolean> {
    const r = await cluster.kubectl(['get', ...args, '--ignore-not-found', '-o', 'name']);
    if (r.code !== 0) throw new Error(`kubectl get ${args.join(' ')}: ${r.stderr}`);
    return r.stdout.trim() !== '';
  }

  async function releases(): Promise<{ name: string; status: string; revision: string }[]> {
    return JSON.parse(await cluster.helmOk(['list', '-n', NS, '--all', '-o', 'json']));
  }

  /** The chart's objects as rendered with default values must be what the raw manifest says (chart = manifests). */
  async function differencesFromRawManifest(target: string, ociType: string): Promise<string[]> {
    const sent = loadObjects(manifestPath(target, ociType)).filter((o) => o.kind !== 'Namespace');
    return objectDifferences(sent, await readBackExisting(cluster, sent), 'not installed by the chart');
  }

  beforeAll(async () => {
    if (!fs.existsSync(path.join(CHART, 'Chart.yaml'))) {
      throw new Error(`${CHART} has no Chart.yaml: run \`npm run synth\` to generate the chart`);
    }
    cluster = await startCluster({ kubernetes: release });
    // The release namespace, labelled as the raw manifests label theirs (the chart does not own it).
    await cluster.kubectlOk(['create', 'namespace', NS]);
    await cluster.kubectlOk(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=privileged']);
    // No knative-serving namespace: patchKnative "auto" (the default) must install on a cluster without Knative.
    await createNode(cluster, 'wasm-node-1', 'containerd://1.7.22');
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function ensureSccCrd(target: string): Promise<void> {
    if ((OPENSHIFT_TARGETS as readonly string[]).includes(target) && !sccCrd) {
      await installSccCrd(cluster);
      sccCrd = true;
    }
  }

  describe.each(release === 'newest' ? VARIANTS : VARIANTS.filter((v) => v.target === 'k3s'))('$target/$ociType', ({ target, ociType, uninstall }) => {
    const variantValues = ['--set', `target=${target}`, '--set', `ociType=${ociType}`];

    it('helm install succeeds and installs what the raw manifest has', async () => {
      await ensureSccCrd(target);
      // No --wait: nothing here would ever become ready (no kubelet); Helm returns once the objects exist.
      const output = await cluster.helmOk(['install', RELEASE, CHART, '-n', NS, ...variantValues, '--timeout', '30s']);
      expect(await releases()).toEqual([expect.objectContaining({ name: RELEASE, status: 'deployed', revision: '1' })]);
      // NOTES.txt: what was installed, how to check the nodes, how to run a WASM pod.
      const notes = output.slice(output.indexOf('NOTES:'));
      expect(notes).toContain(`is installing ${ociType} on ${target} nodes`);
      expect(notes).toContain('kubectl get nodes -L knawd.dev/crun-wasm');
      expect(notes).toContain('runtimeClassName: crun');
      expect(notes).toContain('no annotation needed');
      expect(notes).not.toContain('module.wasm.image/variant');
      expect(await differencesFromRawManifest(target, ociType)).toEqual([]);
      const ds = await getJson(['-n', NS, 'get', 'daemonset', 'knawd-installer']);
      expect(ds.metadata.labels).toMatchObject({ 'app.kubernetes.io/managed-by': 'Helm', 'app.kubernetes.io/instance': RELEASE });
      expect(await exists(['runtimeclass', 'crun'])).toBe(true);
      if (sccCrd) {
        // The SCC (and its Role) exist exactly for the OpenShift targets.
        expect(await exists(['securitycontextconstraints.security.openshift.io', 'knawd-installer'])).toBe(target.startsWith('rhel8'));
        expect(await exists(['-n', NS, 'role', 'knawd-installer-scc'])).toBe(target.startsWith('rhel8'));
      }
    });

    it('helm upgrade with changed values (tag, nodeSelector, patchKnative=false) succeeds and changes the objects', async () => {
      const nodeSelector = { 'kubernetes.io/os': 'linux', 'example.com/pool': 'wasm' };
      await cluster.helmOk([
        'upgrade', RELEASE, CHART, '-n', NS, ...variantValues,
        '--set', 'tag=v9.9.9',
        '--set-json', `nodeSelector=${JSON.stringify(nodeSelector)}`,
        '--set', 'patchKnative=false',
        '--timeout', '30s',
      ]);
      expect(await releases()).toEqual([expect.objectContaining({ name: RELEASE, status: 'deployed', revision: '2' })]);
      const ds = await getJson(['-n', NS, 'get', 'daemonset', 'knawd-installer']);
      const spec = ds.spec.template.spec;
      expect(spec.containers[0].image).toBe(`quay.io/knawd/deployer:v9.9.9-${ociType}`);
      expect(spec.nodeSelector).toEqual(nodeSelector);
      expect(envOf(spec)).toMatchObject({ VENDOR: target, OCI_TYPE: ociType, PATCH_KNATIVE: 'false' });
      // Without the Knative patch the installer gets no ConfigMap permission at all.
      expect(await exists(['clusterrole', 'knawd-installer-knative-features'])).toBe(false);
      expect(await exists(['clusterrolebinding', 'knawd-installer-knative-features'])).toBe(false);
      expect(await exists(['clusterrole', 'knawd-installer-nodes'])).toBe(true);
    });

    if (uninstall === 'hooks') {
      it('helm uninstall runs the pre-delete hooks, waits for the nodes to be restored, and succeeds', async () => {
        await cluster.kubectlOk(['label', 'node', 'wasm-node-1', LABEL, '--overwrite']);
        const uninstalling = cluster.helm(['uninstall', RELEASE, '-n', NS, '--timeout', '90s']);
        // helm uninstall is awaited whatever happens here, and a failure here is the one reported.
        let failure: unknown;
        try {
          // The hooks: the remover DaemonSet (weight 0), then the wait Job (weight 1), with the upgraded values.
          const remover = await waitFor('the knawd-remover hook DaemonSet', async () =>
            (await exists(['-n', NS, 'daemonset', 'knawd-remover'])) ? getJson(['-n', NS, 'get', 'daemonset', 'knawd-remover']) : undefined,
          );
          const job = await waitFor('the knawd-uninstall-wait hook Job', async () =>
            (await exists(['-n', NS, 'job', 'knawd-uninstall-wait'])) ? getJson(['-n', NS, 'get', 'job', 'knawd-uninstall-wait']) : undefined,
          );
          expect(Number(remover.metadata.resourceVersion)).toBeLessThan(Number(job.metadata.resourceVersion));
          const removerSpec = remover.spec.template.spec;
          expect(removerSpec.containers[0].args).toEqual(['remove', '--stay', '--pods-timeout-seconds', '120']);
          expect(removerSpec.containers[0].image).toBe(`quay.io/knawd/deployer:v9.9.9-${ociType}`);
          expect(removerSpec.containers[0].securityContext.privileged).toBe(true);
          expect(removerSpec.hostPID).toBe(true);
          expect(removerSpec.serviceAccountName).toBe('knawd-installer');
          expect(removerSpec.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'example.com/pool': 'wasm' });
          expect(envOf(removerSpec)).toMatchObject({ VENDOR: target, OCI_TYPE: ociType, PATCH_KNATIVE: 'false', NODE_ROOT: '/mnt/node-root' });
          const wait = job.spec.template.spec.containers[0];
          expect(wait.args.slice(0, 1)).toEqual(['wait-removed']);
          expect(wait.args).toEqual(expect.arrayContaining(['--label', LABEL]));
          expect(wait.image).toBe(`quay.io/knawd/deployer:v9.9.9-${ociType}`);
          expect(job.spec.template.spec.serviceAccountName).toBe('knawd-uninstall-wait');
          expect(job.spec.backoffLimit).toBe(0);
          // The Job's own identity, a hook created before it: its token is what the wait below runs with.
          const saKubeconfig = await serviceAccountKubeconfig(cluster, NS, 'knawd-uninstall-wait');

          // The Job's wait logic, for real: it keeps waiting while a node is labelled...
          const timeoutArg = wait.args[wait.args.indexOf('--timeout-seconds') + 1];
          // Longer than the remover's wait for pods: the remover's verdict comes first.
          expect(Number(timeoutArg)).toBeGreaterThan(120);
          const waiting = installerCliUntil(['wait-removed', '--timeout-seconds', '60', '--label', LABEL, '--kubeconfig', saKubeconfig, '--log-level', 'debug'], /"msg":"waiting for nodes"/);
          await waiting.reached;
          expect(await releases()).toEqual([expect.objectContaining({ name: RELEASE, status: 'uninstalling' })]);
          // ...the remover restores the node and drops the label...
          await cluster.kubectlOk(['label', 'node', 'wasm-node-1', `${HOST_CHANGED_LABEL.key}-`]);
          const waited = await waiting.done;
          expect({ code: waited.code, stderr: waited.stderr }).toEqual({ code: 0, stderr: '' });
          // It really saw the labelled node (not merely slow to start).
          expect(waited.stdout).toMatch(/"msg":"waiting for nodes".*"nodes":\["wasm-node-1"\]/);
          // ...and the Job controller would mark the Job Complete once its pod exited 0.
          await completeJob(cluster, NS, 'knawd-uninstall-wait');
        } catch (error) {
          failure = error;
        }
        const result = await uninstalling;
        if (failure) throw failure;
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
        expect(await releases()).toEqual([]);
        // hook-succeeded: Helm deleted both hooks; the release's objects are gone too.
        expect(await exists(['-n', NS, 'daemonset', 'knawd-remover'])).toBe(false);
        expect(await exists(['-n', NS, 'job', 'knawd-uninstall-wait'])).toBe(false);
        expect(await exists(['-n', NS, 'serviceaccount', 'knawd-uninstall-wait'])).toBe(false);
        expect(await exists(['clusterrole', 'knawd-uninstall-wait'])).toBe(false);
        expect(await exists(['-n', NS, 'daemonset', 'knawd-installer'])).toBe(false);
        expect(await exists(['runtimeclass', 'crun'])).toBe(false);
        expect(await exists(['clusterrole', 'knawd-installer-nodes'])).toBe(false);
        expect(await nodeLabels(cluster, 'wasm-node-1')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
      });
    } else {
      it('helm uninstall fails (and keeps the release) while the wait Job does not complete; --no-hooks removes it', async () => {
        await cluster.kubectlOk(['label', 'node', 'wasm-node-1', LABEL, '--overwrite']);
        try {
          // Short timeout: no Job controller, so the Job never completes; 10 s shows the failure path.
          const failed = await cluster.helm(['uninstall', RELEASE, '-n', NS, '--timeout', '10s']);
          expect(failed.code).not.toBe(0);
          expect(failed.stderr).toMatch(/timed out waiting for the condition|pre-delete|deadline/i);
          // The release is still there, marked uninstalling (the uninstall stopped at the hook), with its objects.
          expect(await releases()).toEqual([expect.objectContaining({ name: RELEASE, status: 'uninstalling' })]);
          expect(await exists(['-n', NS, 'daemonset', 'knawd-installer'])).toBe(true);
          expect(await exists(['runtimeclass', 'crun'])).toBe(true);
          // The failed wait Job stays for inspection; the remover DaemonSet hook had "succeeded" (Helm does not
          // wait for DaemonSets) and Helm 3.22 applies hook-succeeded to it even though a later hook failed.
          const job = await getJson(['-n', NS, 'get', 'job', 'knawd-uninstall-wait']);
          expect(job.spec.template.spec.containers[0].args[0]).toBe('wait-removed');
          expect(job.spec.template.spec.containers[0].image).toBe(`quay.io/knawd/deployer:v9.9.9-${ociType}`);
          expect(await exists(['-n', NS, 'daemonset', 'knawd-remover'])).toBe(false);

          await cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
          expect(await releases()).toEqual([]);
          expect(await exists(['-n', NS, 'daemonset', 'knawd-installer'])).toBe(false);
          expect(await exists(['runtimeclass', 'crun'])).toBe(false);
        } finally {
          // Leave a clean slate for the next variant whatever happened above.
          if ((await releases()).length > 0) await cluster.helm(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
          // Hooks are not part of the release: they stay until the next hook run (before-hook-creation) or by hand.
          await cluster.kubectlOk(['-n', NS, 'delete', 'daemonset/knawd-remover', 'job/knawd-uninstall-wait', '--ignore-not-found', '--wait=false']);
          await cluster.kubectlOk(['label', 'node', 'wasm-node-1', `${HOST_CHANGED_LABEL.key}-`]);
        }
      });
    }
  });

  it('helm install with the default target, auto, on a cluster that serves the SCC API: auto-openshift/ exactly; NOTES say how to see what each node was found to be', async () => {
    await ensureSccCrd('rhel8');
    const output = await cluster.helmOk(['install', RELEASE, CHART, '-n', NS, '--set', 'ociType=crun-wasmtime', '--timeout', '30s']);
    const notes = output.slice(output.indexOf('NOTES:'));
    expect(notes).toContain('is installing crun-wasmtime on every node, as what its installer finds it is (target auto).');
    expect(notes).toContain(`kubectl -n ${NS} logs -l app.kubernetes.io/component=installer --prefix | grep '"msg":"target '`);
    expect(await differencesFromRawManifest('auto-openshift', 'crun-wasmtime')).toEqual([]);
    expect(envOf((await getJson(['-n', NS, 'get', 'daemonset', 'knawd-installer'])).spec.template.spec)).toMatchObject({ VENDOR: 'auto', OCI_TYPE: 'crun-wasmtime' });
    expect(await exists(['securitycontextconstraints.security.openshift.io', 'knawd-installer'])).toBe(true);
    expect(await exists(['-n', NS, 'role', 'knawd-installer-scc'])).toBe(true);
    // nodeRestrictionPolicy "auto" (the default): the cluster serves admissionregistration.k8s.io/v1 policies.
    expect(await exists(['validatingadmissionpolicy.admissionregistration.k8s.io', 'knawd-installer-own-node'])).toBe(true);
    expect(await exists(['validatingadmissionpolicybinding.admissionregistration.k8s.io', 'knawd-installer-own-node'])).toBe(true);
    await cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
    expect(await releases()).toEqual([]);
  });

  it("helm install with the original chart's values file works once its 1.x tag is replaced", async () => {
    await ensureSccCrd('rhel8');
    // Its patchKnative: true keeps the original's meaning: the binding goes into Knative's namespace.
    await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
    // Its tag names the original's image, which cannot run this chart's installer: refused, nothing created.
    const refused = await cluster.helm(['install', RELEASE, CHART, '-n', NS, '-f', ORIGINAL_VALUES, '--timeout', '30s']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/tag v1\.2\.0 names an image of the original knawd-deployer/);
    expect(await releases()).toEqual([]);
    await cluster.helmOk(['install', RELEASE, CHART, '-n', NS, '-f', ORIGINAL_VALUES, '--set', 'tag=v2.0.0', '--timeout', '30s']);
    const ds = await getJson(['-n', NS, 'get', 'daemonset', 'knawd-installer']);
    const spec = ds.spec.template.spec;
    expect(spec.containers[0].image).toBe('quay.io/knawd/deployer:v2.0.0-crun-wasmedge');
    expect(envOf(spec)).toMatchObject({ VENDOR: 'rhel8', OCI_TYPE: 'crun-wasmedge', AUTO_RESTART: 'true', LOG_LEVEL: 'info', PATCH_KNATIVE: 'true' });
    expect(await exists(['securitycontextconstraints.security.openshift.io', 'knawd-installer'])).toBe(true);
    expect(await exists(['clusterrole', 'knawd-installer-knative-features'])).toBe(true);
    await cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
    expect(await releases()).toEqual([]);
  });
});

/** What the Job controller writes when the Job's pod succeeded (the API server validates this shape). */
async function completeJob(cluster: Cluster, namespace: string, name: string): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const condition = (type: string) => ({ type, status: 'True', lastProbeTime: now, lastTransitionTime: now });
  const status = {
    status: {
      startTime: now,
      completionTime: now,
      succeeded: 1,
      conditions: [condition('SuccessCriteriaMet'), condition('Complete')],
    },
  };
  await cluster.kubectlOk(['-n', namespace, 'patch', 'job', name, '--subresource=status', '--type=merge', '-p', JSON.stringify(status)]);
}
