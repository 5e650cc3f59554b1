/**
 * What the installer's ServiceAccount may do (RBAC, asked of the real API server by impersonation; the raw
 * manifest with dist/manifests/knative.yaml, the installer's Knative permission), and what
 * PodSecurity admission says about the installer's pod: rejected in a `baseline` namespace, accepted in the
 * project's privileged namespace. The uninstall Job's pod runs unprivileged and passes `restricted`.
 */
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { installSccCrd, json, K8sObject, KNATIVE_MANIFEST, loadObjects, manifestPath } from '../support/cluster/objects';

jest.setTimeout(120_000);

const SA = 'system:serviceaccount:knawd:knawd-installer';

/** Variants with a different RBAC shape: a containerd one and the OpenShift one (SCC + its Role). */
const VARIANTS = [
  { target: 'ubuntu_22_04', ociType: 'crun-wasmtime' },
  { target: 'rhel8', ociType: 'crun-wasmedge' },
];

function podFrom(owner: K8sObject, namespace: string, name: string): K8sObject {
  const template = owner.spec.template;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace, labels: template.metadata?.labels ?? {} },
    spec: template.spec,
  };
}

function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in the manifest`);
  return found;
}

describe('security of the installer on a real API server', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
    await installSccCrd(cluster);
    // Knative's namespace and ConfigMaps (the flag we patch, and a neighbour we must not touch).
    await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
    await cluster.kubectlOk(['-n', 'knative-serving', 'create', 'configmap', 'config-features', '--from-literal=x=y']);
    await cluster.kubectlOk(['-n', 'knative-serving', 'create', 'configmap', 'config-network', '--from-literal=x=y']);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  describe.each(VARIANTS)('$target/$ociType', ({ target, ociType }) => {
    const install = manifestPath(target, ociType);
    const objects = (): K8sObject[] => loadObjects(install);

    beforeAll(async () => {
      await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', install, '-f', KNATIVE_MANIFEST]);
    });

    async function can(verbResource: string[], namespace?: string): Promise<string> {
      const args = ['auth', 'can-i', ...verbResource, '--as', SA, ...(namespace ? ['-n', namespace] : [])];
      const r = await cluster.kubectl(args);
      // can-i exits 0 for yes, 1 for no; anything else is an error worth seeing.
      if (r.code !== 0 && r.code !== 1) throw new Error(`kubectl ${args.join(' ')}: exit ${r.code}: ${r.stderr}`);
      return `${[...verbResource, ...(namespace ? ['-n', namespace] : [])].join(' ')}: ${r.stdout.trim() || r.stderr.trim()}`;
    }

    it.each([
      [['patch', 'configmaps/config-features'], 'knative-serving'],
      [['get', 'configmaps/config-features'], 'knative-serving'],
      [['patch', 'nodes/some-node'], undefined],
      [['get', 'nodes/some-node'], undefined],
      [['list', 'nodes'], undefined],
      [['list', 'pods'], undefined],
      [['list', 'runtimeclasses.node.k8s.io'], undefined],
    ] as [string[], string | undefined][])('the ServiceAccount CAN %j (namespace %s)', async (verbResource, namespace) => {
      expect(await can(verbResource, namespace)).toMatch(/: yes$/);
    });

    it.each([
      [['delete', 'configmaps/config-features'], 'knative-serving'],
      [['delete', 'configmaps'], 'knative-serving'],
      [['delete', 'configmaps'], 'kube-system'],
      [['deletecollection', 'configmaps'], 'knative-serving'],
      [['patch', 'configmaps/config-network'], 'knative-serving'],
      // config-deployment only when knative.runtimeClassName is set (test/cluster/knative.test.ts).
      [['patch', 'configmaps/config-deployment'], 'knative-serving'],
      [['patch', 'configmaps'], 'knative-serving'],
      [['update', 'configmaps/config-features'], 'knative-serving'],
      [['patch', 'configmaps/kube-proxy'], 'kube-system'],
      [['create', 'configmaps'], 'knative-serving'],
      [['list', 'configmaps'], 'knative-serving'],
      [['get', 'secrets'], 'knawd'],
      [['list', 'secrets'], 'knawd'],
      [['get', 'secrets'], 'kube-system'],
      [['list', 'secrets'], undefined],
      [['watch', 'secrets'], 'knative-serving'],
      [['get', 'pods/exec'], 'default'],
      [['create', 'pods/exec'], 'default'],
      [['delete', 'pods'], 'default'],
      [['create', 'pods'], 'default'],
      [['create', 'pods'], 'kube-system'],
      [['create', 'pods'], 'knawd'],
      [['create', 'daemonsets.apps'], 'knawd'],
      [['create', 'jobs.batch'], 'knawd'],
      [['create', 'serviceaccounts/token'], 'knawd'],
      [['delete', 'nodes/some-node'], undefined],
      [['create', 'nodes'], undefined],
      [['update', 'nodes/some-node'], undefined],
      [['create', 'clusterrolebindings.rbac.authorization.k8s.io'], undefined],
      [['escalate', 'clusterroles.rbac.authorization.k8s.io'], undefined],
      [['impersonate', 'users'], undefined],
    ] as [string[], string | undefined][])('the ServiceAccount can NOT %j (namespace %s)', async (verbResource, namespace) => {
      expect(await can(verbResource, namespace)).toMatch(/: no$/);
    });

    // "can NOT patch any other ConfigMap" includes a ConfigMap that happens to be named config-features in
    // another namespace: the installer only ever needs knative-serving's.
    it.each(['kube-system', 'default', 'knawd'])('the ServiceAccount can NOT patch a ConfigMap named config-features in %s', async (namespace) => {
      expect(await can(['patch', 'configmaps/config-features'], namespace)).toMatch(/: no$/);
    });

    it("the uninstall wait Job's own ServiceAccount may only get, list and watch nodes", async () => {
      // The Job of an earlier variant names another ociType's image, and a Job's template is immutable.
      await cluster.kubectlOk(['-n', 'knawd', 'delete', 'job', 'knawd-uninstall-wait', '--ignore-not-found']);
      await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', manifestPath(target, ociType, true)]);
      const job = 'system:serviceaccount:knawd:knawd-uninstall-wait';
      const ask = async (args: string[]) => (await cluster.kubectl(['auth', 'can-i', ...args, '--as', job])).stdout.trim();
      for (const verb of ['get', 'list', 'watch']) expect(`${verb}: ${await ask([verb, 'nodes'])}`).toBe(`${verb}: yes`);
      for (const args of [['patch', 'nodes'], ['list', 'pods'], ['get', 'configmaps', '-n', 'knative-serving'], ['list', 'secrets', '-n', 'knawd'], ['use', 'securitycontextconstraints.security.openshift.io/knawd-installer', '-n', 'knawd']]) {
        expect(`${args.join(' ')}: ${await ask(args)}`).toBe(`${args.join(' ')}: no`);
      }
      await cluster.kubectlOk(['-n', 'knawd', 'delete', 'daemonset', 'knawd-remover', '--ignore-not-found', '--wait=false']);
    });

    if (target === 'rhel8') {
      it('the ServiceAccount may use its own SecurityContextConstraints, and no other', async () => {
        expect(await can(['use', 'securitycontextconstraints.security.openshift.io/knawd-installer'], 'knawd')).toMatch(/: yes$/);
        expect(await can(['use', 'securitycontextconstraints.security.openshift.io/privileged'], 'knawd')).toMatch(/: no$/);
      });
    }

    it("PodSecurity REJECTS the installer's pod in a namespace enforcing baseline", async () => {
      const ns = `psa-baseline-${target.replace(/_/g, '-')}`;
      await cluster.kubectlOk(['create', 'namespace', ns]);
      await cluster.kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=baseline']);
      // The ServiceAccount admission plugin runs first and needs the pod's ServiceAccount to exist.
      await cluster.kubectlOk(['-n', ns, 'create', 'serviceaccount', 'knawd-installer']);
      const pod = podFrom(find(objects(), 'DaemonSet', 'knawd-installer'), ns, 'installer');
      const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: json(pod) });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/violates PodSecurity "baseline:latest"/);
      expect(r.stderr).toMatch(/privileged/);
      expect(r.stderr).toMatch(/host namespaces|hostPID/);
      expect(r.stderr).toMatch(/hostPath/);
    });

    it("PodSecurity ACCEPTS the installer's pod in the project's namespace (knawd, enforce=privileged)", async () => {
      const ns = JSON.parse(await cluster.kubectlOk(['get', 'namespace', 'knawd', '-o', 'json']));
      expect(ns.metadata.labels['pod-security.kubernetes.io/enforce']).toBe('privileged');
      const pod = podFrom(find(objects(), 'DaemonSet', 'knawd-installer'), 'knawd', `installer-${target.replace(/_/g, '-')}`);
      const dry = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: json(pod) });
      expect(dry.stderr).toBe('');
      expect(dry.code).toBe(0);
      // A real create too (no warnings either: warn=privileged); the pod stays Pending (no scheduler) and goes
      // away at once on delete (never bound to a node).
      const real = await cluster.kubectl(['create', '-f', '-'], { input: json(pod) });
      expect(real.stderr).toBe('');
      expect(real.code).toBe(0);
      await cluster.kubectlOk(['-n', 'knawd', 'delete', 'pod', pod.metadata.name, '--wait=true', '--timeout=30s']);
    });

    it("the uninstall Job's pod passes PodSecurity restricted", async () => {
      const ns = `psa-restricted-${target.replace(/_/g, '-')}`;
      await cluster.kubectlOk(['create', 'namespace', ns]);
      await cluster.kubectlOk(['label', 'namespace', ns, 'pod-security.kubernetes.io/enforce=restricted', 'pod-security.kubernetes.io/warn=restricted']);
      await cluster.kubectlOk(['-n', ns, 'create', 'serviceaccount', 'knawd-uninstall-wait']);
      const job = find(loadObjects(manifestPath(target, ociType, true)), 'Job', 'knawd-uninstall-wait');
      const pod = podFrom(job, ns, 'uninstall-wait');
      const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: json(pod) });
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    });
  });

  it('the installer ServiceAccount gets a token from the TokenRequest API (the installer uses the same kind of token)', async () => {
    const token = (await cluster.kubectlOk(['-n', 'knawd', 'create', 'token', 'knawd-installer', '--duration=10m'])).trim();
    const kubeconfig = cluster.writeKubeconfig('knawd-installer', token);
    const who = await cluster.kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'], { kubeconfig });
    expect(who).toBe(SA);
    // With its own credentials (not impersonated): it may list nodes and may not read secrets.
    expect((await cluster.kubectl(['get', 'nodes'], { kubeconfig })).code).toBe(0);
    const secrets = await cluster.kubectl(['-n', 'knawd', 'get', 'secrets'], { kubeconfig });
    expect(secrets.code).not.toBe(0);
    expect(secrets.stderr).toMatch(/forbidden/i);
  });
});
