/**
 * Every shipped (target, ociType) manifest, and target auto's with and without the SCC, applied to a real kube-apiserver (with etcd) with
 * `kubectl apply --server-side`: accepted, stored as sent (after defaulting), and its uninstall manifest too,
 * on a cluster without Knative (no knative-serving namespace); then the separate Knative file.
 *
 * On the newest Kubernetes release every variant; on the oldest supported one (tools/versions.env) the two auto
 * variants, which between them ship every kind.
 *
 * One API server per release for all its variants. The variants share fixed names (namespace `knawd`, cluster-scoped RBAC and
 * RuntimeClass), so they run one after another: apply install → compare → apply uninstall → compare → delete
 * everything except the Namespace (a deleted namespace is never finalized without a controller-manager; the
 * next variant re-applies it, which is an update of our own object).
 */
import { manifestVariants } from '../../lib/render/manifests';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { deleteExceptNamespaces, installSccCrd, KNATIVE_MANIFEST, loadObjects, manifestPath, readBack, storedDifferences, subsetDifferences } from '../support/cluster/objects';
import { KUBERNETES_RELEASES } from '../support/cluster/releases';

jest.setTimeout(120_000);


// Every raw manifest pair, auto/ and auto-openshift/ included.
const variants = manifestVariants().map((v) => ({ dir: v.dir, ociType: v.props.ociType, openshift: loadObjects(manifestPath(v.dir, v.props.ociType)).some((o) => o.kind === 'SecurityContextConstraints') }));

// The oldest release gets the two auto variants: between them every kind the manifests ship (the SCC too); the
// variants differ only in values, which the newest release checks one by one.
const OLDEST_VARIANTS = variants.filter((v) => (v.dir === 'auto' || v.dir === 'auto-openshift') && v.ociType === 'crun-wasmtime');

describe.each(KUBERNETES_RELEASES)('raw manifests on a real API server (%s Kubernetes)', (release) => {
  let cluster: Cluster;
  let sccCrdInstalled = false;

  // No knative-serving namespace: the install manifests must apply on a cluster without Knative.
  beforeAll(async () => {
    cluster = await startCluster({ kubernetes: release });
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('the comparison finds changed, missing and re-typed fields, and allows server-side additions', () => {
    const sent = { a: { b: 1, c: ['x', { d: 'true' }], e: 0 } };
    expect(subsetDifferences(sent, { a: { b: 1, c: ['x', { d: 'true', extra: 1 }], more: 2 } })).toEqual([]);
    expect(subsetDifferences(sent, { a: { b: 2, c: ['x', { d: true }] } })).toEqual([
      '.a.b: sent 1, stored 2',
      '.a.c[1].d: sent "true", stored true',
    ]);
    expect(subsetDifferences(sent, { a: { c: ['x'] } })).toHaveLength(2);
  });

  it('covers every shipped variant, and auto with and without the SCC (from manifestVariants())', () => {
    expect(variants.length).toBeGreaterThan(0);
    expect(variants).toContainEqual({ dir: 'rhel8_plugins', ociType: 'crun-wasmedge', openshift: true });
    expect(variants).toContainEqual({ dir: 'k3s', ociType: 'crun-wasmtime', openshift: false });
    expect(variants).toContainEqual({ dir: 'auto', ociType: 'crun-wasmtime', openshift: false });
    expect(variants).toContainEqual({ dir: 'auto-openshift', ociType: 'crun-wasmtime', openshift: true });
  });

  describe.each(release === 'newest' ? variants : OLDEST_VARIANTS)('$dir/$ociType', ({ dir, ociType, openshift }) => {
    const install = manifestPath(dir, ociType);
    const uninstall = manifestPath(dir, ociType, true);

    it('install manifest is accepted by server-side apply and stored as sent', async () => {
      if (openshift && !sccCrdInstalled) {
        // OpenShift variants carry a SecurityContextConstraints object: register its CRD as OpenShift has it.
        await installSccCrd(cluster);
        sccCrdInstalled = true;
      }
      await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', install]);
      expect(await storedDifferences(cluster, install)).toEqual([]);
    });

    it('re-applying the same install manifest changes nothing', async () => {
      const before = (await readBack(cluster, install)).map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`);
      await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', install]);
      const after = (await readBack(cluster, install)).map((o) => `${o.kind}/${o.metadata.name}@${o.metadata.resourceVersion}`);
      expect(after).toEqual(before);
    });

    it('uninstall manifest is accepted after the installer DaemonSet is deleted, and stored as sent', async () => {
      // The uninstall steps of the manifest header: delete the installer DaemonSet, then apply the uninstall file.
      await cluster.kubectlOk(['-n', 'knawd', 'delete', 'daemonset', 'knawd-installer', '--ignore-not-found', '--wait=false']);
      expect(loadObjects(uninstall).length).toBeGreaterThan(0);
      await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', uninstall]);
      expect(await storedDifferences(cluster, uninstall)).toEqual([]);
    });

    it('all objects can be deleted again (except the Namespace, which is never finalized here)', async () => {
      await deleteExceptNamespaces(cluster, uninstall);
      await deleteExceptNamespaces(cluster, install);
      const left = await cluster.kubectl(['get', '-f', install, '-o', 'name', '--ignore-not-found']);
      expect(left.stdout.split('\n').filter((l) => l && !l.startsWith('namespace/'))).toEqual([]);
    });
  });

  it("the Knative file is refused without Knative's namespace, applies once it exists, and deletes again", async () => {
    const refused = await cluster.kubectl(['apply', '--server-side', '--field-manager=knawd-test', '-f', KNATIVE_MANIFEST]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('namespaces "knative-serving" not found');
    await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
    await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', KNATIVE_MANIFEST]);
    expect(await storedDifferences(cluster, KNATIVE_MANIFEST)).toEqual([]);
    expect(loadObjects(KNATIVE_MANIFEST).map((o) => `${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`)).toEqual([
      'ClusterRole//knawd-installer-knative-features',
      'RoleBinding/knative-serving/knawd-installer-knative-features',
    ]);
    await deleteExceptNamespaces(cluster, KNATIVE_MANIFEST);
    const left = await cluster.kubectl(['get', '-f', KNATIVE_MANIFEST, '-o', 'name', '--ignore-not-found']);
    expect(left.stdout.trim()).toBe('');
  });

  it('one variant can be upgraded in place to another (server-side apply over the previous one)', async () => {
    const first = manifestPath('ubuntu_22_04', 'crun-wasmtime');
    const second = manifestPath('k3s', 'crun-wasmedge');
    await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', first]);
    await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knawd-test', '-f', second]);
    expect(await storedDifferences(cluster, second)).toEqual([]);
    // Fields of the first variant that the second does not set are gone (same field manager), e.g. the env.
    const ds = JSON.parse(await cluster.kubectlOk(['-n', 'knawd', 'get', 'daemonset', 'knawd-installer', '-o', 'json']));
    const env = Object.fromEntries(ds.spec.template.spec.containers[0].env.filter((e: { value?: string }) => e.value !== undefined).map((e: { name: string; value: string }) => [e.name, e.value]));
    expect(env).toMatchObject({ VENDOR: 'k3s', OCI_TYPE: 'crun-wasmedge' });
    await deleteExceptNamespaces(cluster, second);
  });
});
