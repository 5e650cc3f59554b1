/**
 * The node-restriction admission policy (dist/manifests/node-restriction.yaml, then the same policy rendered with
 * a startup taint) on a real kube-apiserver, the newest and the oldest supported release (tools/versions.env), each
 * with the etcd its kubeadm deploys: both serve ValidatingAdmissionPolicy at admissionregistration.k8s.io/v1 (GA
 * since 1.30); MutatingAdmissionPolicy is served from 1.36 only (docs/kubernetes-releases.md).
 * A token of the installer's ServiceAccount bound to a pod on node A (a TokenRequest bound to a Pod object with
 * spec.nodeName, as the kubelet requests the projected token; there is no kubelet here) carries node A in
 * `authentication.kubernetes.io/node-name` (ServiceAccountTokenPodNodeInfo is GA and on since 1.32: no feature
 * gate to set). With it the installer labels node A, the normal path, and may not label node B, nor change
 * anything but the node contract's labels (with the contract's values) and its status annotation (bounded) on
 * A; the spec only by removing the configured startup taint, and only where one is configured. A token bound
 * to no pod changes no node. Anyone else is not affected.
 */
import { HOST_CHANGED_LABEL, INSTALLED_LABEL, NODE_STATE_LABEL, NODE_STATUS_ANNOTATION } from '../../lib/catalog';
import { renderNodeRestrictionManifest } from '../../lib/render/manifests';
import { connectCluster } from '../../lib/installer/kube/cluster';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { run } from '../../lib/installer/run';
import { fixture, handlersOnNodeRoot, makeArtifacts, makeRoot } from '../installer/support';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { createNode, nodeLabels } from '../support/cluster/node';
import { manifestPath, MANIFESTS } from '../support/cluster/objects';
import { KUBERNETES_RELEASES, minorOf, releaseVersions } from '../support/cluster/releases';

jest.setTimeout(120_000);

const NS = 'knawd';
const SA = 'knawd-installer';
const POLICY = `${MANIFESTS}/node-restriction.yaml`;
const OWN_NODE_ONLY = 'the knawd installer may change only the Node its pod runs on (the node name in its token)';

describe.each(KUBERNETES_RELEASES)('the node-restriction policy on a real API server (%s Kubernetes)', (release) => {
  const versions = releaseVersions(release);
  let cluster: Cluster;
  /** kubeconfig of a token bound to the installer pod on node-a. */
  let onNodeA: string;

  async function podOn(name: string, node: string): Promise<string> {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: NS },
      spec: { nodeName: node, serviceAccountName: SA, containers: [{ name: 'installer', image: 'example.test/knawd-installer:1' }] },
    };
    const created = JSON.parse(await cluster.kubectlOk(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod) }));
    return created.metadata.uid as string;
  }

  async function boundToken(pod: string, uid: string): Promise<string> {
    const token = (await cluster.kubectlOk(['-n', NS, 'create', 'token', SA, '--bound-object-kind', 'Pod', '--bound-object-name', pod, '--bound-object-uid', uid, '--duration=30m'])).trim();
    return cluster.writeKubeconfig(`bound-${pod}`, token);
  }

  beforeAll(async () => {
    cluster = await startCluster({ kubernetes: release });
    await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath('ubuntu_22_04', 'crun-wasmtime'), '-f', POLICY]);
    await createNode(cluster, 'node-a', 'containerd://1.7.22', { 'example.com/keep': 'a' });
    await createNode(cluster, 'node-b', 'containerd://1.7.22', { 'example.com/keep': 'b' });
    onNodeA = await boundToken('installer-a', await podOn('installer-a', 'node-a'));
    // The policy is enforced once the API server's policy informer has it: wait for a refusal.
    const other = connectCluster(onNodeA, {})!;
    for (let i = 0; i < 60; i++) {
      const refused = await other.setNodeLabels('node-b', { [INSTALLED_LABEL.key]: INSTALLED_LABEL.value }).then(() => false, () => true);
      if (refused) return;
      await cluster.kubectlOk(['label', 'node', 'node-b', `${INSTALLED_LABEL.key}-`]);
      await new Promise((r) => setTimeout(r, 500));
    }
    throw new Error('the ValidatingAdmissionPolicy was not enforced within 30 s');
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it(`runs ${versions.kubernetes} on etcd ${versions.etcd}, kubectl ${versions.kubernetes}; serves ValidatingAdmissionPolicy at v1, MutatingAdmissionPolicy ${minorOf(versions.kubernetes) >= 36 ? 'at v1' : 'not at all'}`, async () => {
    const version = JSON.parse(await cluster.kubectlOk(['version', '-o', 'json']));
    expect([version.serverVersion.gitVersion, version.clientVersion.gitVersion]).toEqual([versions.kubernetes, versions.kubernetes]);
    const etcd = (await fetch(`${cluster.etcdUrl}/version`).then((r) => r.json())) as { etcdserver: string };
    expect(`v${etcd.etcdserver}`).toBe(versions.etcd);
    const resources = (await cluster.kubectlOk(['api-resources', '--api-group=admissionregistration.k8s.io', '-o', 'name'])).trim().split('\n').sort();
    const policies = resources.filter((r) => r.includes('admissionpolic'));
    expect(policies).toEqual([
      ...(minorOf(versions.kubernetes) >= 36 ? ['mutatingadmissionpolicies.admissionregistration.k8s.io', 'mutatingadmissionpolicybindings.admissionregistration.k8s.io'] : []),
      'validatingadmissionpolicies.admissionregistration.k8s.io',
      'validatingadmissionpolicybindings.admissionregistration.k8s.io',
    ]);
    // The preferred (served) version of the group: v1 for both kinds; no beta is on by default.
    const group = JSON.parse(await cluster.kubectlOk(['get', '--raw', '/apis/admissionregistration.k8s.io']));
    expect(group.versions.map((v: { version: string }) => v.version)).toEqual(['v1']);
  });

  it("the API server puts the pod's node into the bound token's user info", async () => {
    const who = JSON.parse(await cluster.kubectlOk(['auth', 'whoami', '-o', 'json'], { kubeconfig: onNodeA }));
    expect(who.status.userInfo.username).toBe(`system:serviceaccount:${NS}:${SA}`);
    expect(who.status.userInfo.extra['authentication.kubernetes.io/node-name']).toEqual(['node-a']);
    expect(who.status.userInfo.extra['authentication.kubernetes.io/pod-name']).toEqual(['installer-a']);
  });

  it('the normal path: the installer, with the token of its pod on node-a, installs and labels node-a', async () => {
    const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const args = ['--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--node-root', root, '--artifacts', artifacts, '--kubeconfig', onNodeA, '--patch-knative', 'false'];
    const io = { stdout: () => undefined, stderr: (l: string) => err.push(l) };
    const err: string[] = [];
    // No runtime behind the node root's socket: CRI Status answers what the node root's configs define.
    const effects = { runner: new RecordingRunner(), probeSocket: async () => true, waitForSocket: async () => true, readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) };
    const code = await run(['install', ...args, '--node-name', 'node-a'], {}, io, effects);
    expect({ code, err }).toEqual({ code: 0, err: [] });
    expect(await nodeLabels(cluster, 'node-a')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value, 'example.com/keep': 'a' });
    expect(JSON.parse((await nodeAnnotations('node-a'))[NODE_STATUS_ANNOTATION])).toMatchObject({ state: 'installed', reason: 'Installed', target: 'ubuntu_22_04', runtime: 'crun-wasmtime' });
    expect(await run(['remove', ...args, '--node-name', 'node-a'], {}, io, effects)).toBe(0);
    expect(await nodeLabels(cluster, 'node-a')).not.toHaveProperty([INSTALLED_LABEL.key]);
    expect(await nodeAnnotations('node-a')).not.toHaveProperty([NODE_STATUS_ANNOTATION]);
  });

  async function nodeAnnotations(name: string): Promise<Record<string, string>> {
    return JSON.parse(await cluster.kubectlOk(['get', 'node', name, '-o', 'json'])).metadata.annotations ?? {};
  }

  it('a token from node-a cannot label node-b (RBAC alone would let it)', async () => {
    const api = connectCluster(onNodeA, {})!;
    await expect(api.setNodeLabels('node-b', { [INSTALLED_LABEL.key]: INSTALLED_LABEL.value })).rejects.toThrow(
      `Kubernetes API: cannot label node node-b (HTTP 403): nodes "node-b" is forbidden: ValidatingAdmissionPolicy 'knawd-installer-own-node' with binding 'knawd-installer-own-node' denied request: ${OWN_NODE_ONLY}`,
    );
    expect(await nodeLabels(cluster, 'node-b')).toEqual({ 'kubernetes.io/hostname': 'node-b', 'example.com/keep': 'b' });
    // RBAC says yes: only the policy stops it.
    expect((await cluster.kubectl(['auth', 'can-i', 'patch', 'nodes/node-b', '--as', `system:serviceaccount:${NS}:${SA}`])).stdout.trim()).toBe('yes');
  });

  it.each<[string, string[], string]>([
    ['another label', ['label', 'node', 'node-a', 'example.com/other=x'], 'may change only the labels knawd.dev/crun-wasm and knawd.dev/crun-wasm-host of a Node'],
    ['a label of someone else, removed', ['label', 'node', 'node-a', 'example.com/keep-'], 'may change only the labels knawd.dev/crun-wasm and knawd.dev/crun-wasm-host of a Node'],
    ['a state the contract does not know', ['label', 'node', 'node-a', `${NODE_STATE_LABEL}=bogus`], 'may set knawd.dev/crun-wasm only to pending, installed, failed'],
    ['another annotation', ['annotate', 'node', 'node-a', 'example.com/note=x'], `may change only the annotation ${NODE_STATUS_ANNOTATION} of a Node (at most 1024 characters)`],
    ['its status annotation beyond 1024 characters', ['annotate', 'node', 'node-a', `${NODE_STATUS_ANNOTATION}=${'x'.repeat(1025)}`], `may change only the annotation ${NODE_STATUS_ANNOTATION} of a Node (at most 1024 characters)`],
    // A patch, not `kubectl cordon`: cordon prints the refusal but exits 0 (seen with kubectl 1.32).
    ['the spec (unschedulable)', ['patch', 'node', 'node-a', '-p', '{"spec":{"unschedulable":true}}'], "may change a Node's spec only by removing its configured startup taint"],
    ['a taint, with no startup taint configured', ['taint', 'node', 'node-a', 'example.com/x=y:NoSchedule'], "may change a Node's spec only by removing its configured startup taint"],
  ])('on its own node it cannot change %s', async (_what, args, message) => {
    const r = await cluster.kubectl(args, { kubeconfig: onNodeA });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(message);
  });

  it("on its own node it can set and remove the contract's labels", async () => {
    const api = connectCluster(onNodeA, {})!;
    for (const state of ['pending', 'failed', 'installed']) await api.setNodeLabels('node-a', { [NODE_STATE_LABEL]: state });
    await api.setNodeLabels('node-a', { [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
    expect(await nodeLabels(cluster, 'node-a')).toMatchObject({ [NODE_STATE_LABEL]: 'installed', [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
    await api.setNodeLabels('node-a', { [HOST_CHANGED_LABEL.key]: null });
    await api.setNodeLabels('node-a', { [NODE_STATE_LABEL]: null });
    expect(await nodeLabels(cluster, 'node-a')).toEqual({ 'kubernetes.io/hostname': 'node-a', 'example.com/keep': 'a' });
  });

  it('a token bound to no pod (no node in it) changes no node', async () => {
    const unbound = cluster.writeKubeconfig('unbound', (await cluster.kubectlOk(['-n', NS, 'create', 'token', SA, '--duration=10m'])).trim());
    const r = await cluster.kubectl(['label', 'node', 'node-a', `${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`], { kubeconfig: unbound });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(OWN_NODE_ONLY);
  });

  it('on its own node it can write its status annotation', async () => {
    await cluster.kubectlOk(['annotate', 'node', 'node-a', `${NODE_STATUS_ANNOTATION}=${'x'.repeat(1024)}`], { kubeconfig: onNodeA });
    await cluster.kubectlOk(['annotate', 'node', 'node-a', `${NODE_STATUS_ANNOTATION}-`], { kubeconfig: onNodeA });
  });

  describe('with a startup taint configured (the policy rendered with startupTaint)', () => {
    const STARTUP = 'example.com/wasm-not-ready';
    // The test's own taints (the API server's TaintNodesByCondition admission gives a new Node not-ready too).
    const taints = async (): Promise<string[]> =>
      ((JSON.parse(await cluster.kubectlOk(['get', 'node', 'node-a', '-o', 'json'])).spec.taints ?? []) as Array<{ key: string; effect: string }>)
        .filter((t) => t.key.startsWith('example.com/'))
        .map((t) => `${t.key}:${t.effect}`);

    beforeAll(async () => {
      await cluster.kubectlOk(['apply', '--server-side', '-f', '-'], { input: renderNodeRestrictionManifest({ startupTaint: { key: STARTUP, effect: 'NoSchedule' } }) });
      await cluster.kubectlOk(['taint', 'node', 'node-a', `${STARTUP}:NoSchedule`, 'example.com/other:NoExecute']);
      // Enforced once the API server's informer has the new version: the removal is refused until then.
      for (let i = 0; i < 60; i++) {
        if ((await cluster.kubectl(['taint', 'node', 'node-a', `${STARTUP}:NoSchedule-`], { kubeconfig: onNodeA })).code === 0) return;
        await new Promise((r) => setTimeout(r, 500));
      }
      throw new Error('the policy with a startup taint was not enforced within 30 s');
    }, 60_000);

    it('the installer removes exactly that taint (the taint step of install, through its own client)', async () => {
      await cluster.kubectlOk(['taint', 'node', 'node-a', `${STARTUP}:NoSchedule`]);
      const api = connectCluster(onNodeA, {})!;
      const list = await api.nodeTaints('node-a');
      const index = list.findIndex((t) => t.key === STARTUP);
      expect(await api.removeNodeTaint('node-a', index, list[index])).toBe('removed');
      expect(await taints()).toEqual(['example.com/other:NoExecute']);
      // A stale index: the test op fails, nothing is removed.
      expect(await api.removeNodeTaint('node-a', 0, list[index])).toBe('moved');
      expect(await taints()).toEqual(['example.com/other:NoExecute']);
    });

    it.each<[string, boolean, string[]]>([
      ['remove another taint', false, ['taint', 'node', 'node-a', 'example.com/other:NoExecute-']],
      ['add the startup taint', false, ['taint', 'node', 'node-a', `${STARTUP}:NoSchedule`]],
      ['change the spec while removing it', true, ['patch', 'node', 'node-a', '--type=json', '-p', '[{"op":"remove","path":"/spec/taints/0"},{"op":"add","path":"/spec/unschedulable","value":true}]']],
    ])('it cannot %s', async (_what, tainted, args) => {
      if (tainted) await cluster.kubectlOk(['taint', 'node', 'node-a', `${STARTUP}:NoSchedule`, 'example.com/other:NoExecute-']);
      if (tainted) await cluster.kubectlOk(['taint', 'node', 'node-a', 'example.com/other:NoExecute']);
      const before = await taints();
      const r = await cluster.kubectl(args, { kubeconfig: onNodeA });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain("may change a Node's spec only by removing its configured startup taint");
      expect(await taints()).toEqual(before);
    });
  });

  it('anyone else is not affected (the admin labels and annotates any node)', async () => {
    await cluster.kubectlOk(['label', 'node', 'node-b', 'example.com/admin=yes']);
    await cluster.kubectlOk(['annotate', 'node', 'node-b', 'example.com/note=admin']);
    expect(await nodeLabels(cluster, 'node-b')).toMatchObject({ 'example.com/admin': 'yes' });
  });
});
