/**
 * The installer's Kubernetes side for real: `install` and `remove` (lib/installer/main.ts `run`, with the
 * node's file system in a temp directory and the systemctl calls recorded) against a real kube-apiserver,
 * authenticated as the installer's own ServiceAccount (a TokenRequest token, so the manifest's RBAC — with
 * dist/manifests/knative.yaml — is what decides), on a cluster that serves Knative Serving's API. Checks the node label, the Knative flag and its restore (other keys untouched), the config written
 * for the containerd version the Node object reports (loaded by that containerd), and the uninstall Job's
 * `wait-removed` command (the installer CLI from source) against labelled Node objects. There is no fake API
 * server in the test suite: every API step is exercised here or in installer-kube-client.test.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HOST_CHANGED_LABEL, INSTALLED_LABEL, KNATIVE_FEATURE, NODE_STATE_LABEL } from '../../lib/catalog';
import { install, remove } from '../../lib/installer/installer';
import { ClusterApi, connectCluster } from '../../lib/installer/kube/cluster';
import { run } from '../../lib/installer/run';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { Cluster, REPO, startCluster } from '../../demo/cluster/control-plane';
import { KNATIVE_MANIFEST, manifestPath } from '../support/cluster/objects';
import { KNATIVE_VERSIONS, serveKnativeApi } from '../support/knative';
import { containerdConfigDump } from '../support/containerd-binaries';
import { ChrootRunner, installHostBinary } from '../support/chroot-runner';
import { containerdBinary } from '../support/containerd-binaries';
import { effectsFor, fixture, handlersOnNodeRoot, makeArtifacts, makeRoot, RESTART, settingsFor, snapshot } from '../installer/support';
import { configMapData, createNode, installerCli, installerCliUntil, nodeEvents, nodeLabels, serviceAccountKubeconfig, setRuntimeHandlers } from '../support/cluster/node';

jest.setTimeout(120_000);

const TARGET = 'ubuntu_22_04';
const RUNTIME = 'crun-wasmtime';
const { namespace: KN_NS, configMap: KN_CM, key: KN_KEY, value: KN_ON } = KNATIVE_FEATURE;
const HOST_LABEL = `${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`;
const CONTAINERD_CONFIG = fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'toml', 'containerd-1.6-systemd-cgroup.toml'), 'utf8');

/** Other keys of Knative's config-features that must survive install and remove untouched. */
const OTHER_KEYS = {
  'kubernetes.podspec-affinity': 'enabled',
  'kubernetes.podspec-fieldref': 'disabled',
  _example: '################################\n# multi-line text that a careless\n# rewrite would mangle   \n',
};

describe("the installer's Kubernetes steps against a real API server", () => {
  let cluster: Cluster;
  let saKubeconfig: string;
  let waitKubeconfig: string;

  beforeAll(async () => {
    cluster = await startCluster();
    // The installer's ServiceAccount and RBAC as shipped.
    await cluster.kubectlOk(['create', 'namespace', KN_NS]);
    // Knative Serving's API (its Service CRD), so that patchKnative "auto", the default, finds Knative.
    await serveKnativeApi(cluster, KNATIVE_VERSIONS[KNATIVE_VERSIONS.length - 1]);
    await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath(TARGET, RUNTIME), '-f', KNATIVE_MANIFEST]);
    saKubeconfig = await serviceAccountKubeconfig(cluster, 'knawd', 'knawd-installer');
    // The uninstall Job's own identity (its manifest's ServiceAccount and RBAC; no controllers run its Job here).
    await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath(TARGET, RUNTIME, true)]);
    waitKubeconfig = await serviceAccountKubeconfig(cluster, 'knawd', 'knawd-uninstall-wait');
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function installer(command: 'install' | 'remove', node: string, root: string, artifacts: string, extra: string[] = []) {
    const out: string[] = [];
    const err: string[] = [];
    const runner = new RecordingRunner();
    const code = await run(
      [command, '--target', TARGET, '--runtime', RUNTIME, '--node-root', root, '--artifacts', artifacts, '--node-name', node, '--kubeconfig', saKubeconfig, '--log-level', 'debug', ...extra],
      {},
      { stdout: (l) => out.push(l), stderr: (l) => err.push(l) },
      // No runtime behind the node root's socket: CRI Status answers what the node root's configs define.
      { runner, probeSocket: async () => true, waitForSocket: async () => true, readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) },
    );
    return { code, out: out.join('\n'), err: err.join('\n'), runner };
  }

  async function setConfigFeatures(data: Record<string, string>): Promise<void> {
    await cluster.kubectl(['-n', KN_NS, 'delete', 'configmap', KN_CM, '--ignore-not-found']);
    const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: KN_CM, namespace: KN_NS }, data };
    await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(cm) });
  }

  // Temp node roots and artifacts are removed by the installer tests' support after this file.
  function freshNode(): { root: string; artifacts: string } {
    return { root: makeRoot({ '/etc/containerd/config.toml': CONTAINERD_CONFIG }), artifacts: makeArtifacts(TARGET) };
  }

  it('install labels the node and enables the Knative flag; remove unlabels it and restores the previous value', async () => {
    await createNode(cluster, 'node-a', 'containerd://1.7.22', { 'example.com/keep': 'me' });
    await setConfigFeatures({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });
    const { root, artifacts } = freshNode();

    const installed = await installer('install', 'node-a', root, artifacts);
    expect({ code: installed.code, err: installed.err }).toEqual({ code: 0, err: '' });
    expect(installed.runner.calls).toContainEqual(['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'containerd']);
    expect(await nodeLabels(cluster, 'node-a')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value, [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value, 'example.com/keep': 'me' });
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: KN_ON });
    expect(await nodeEvents(cluster, 'node-a')).toEqual([
      ['Normal', 'Installing', 'installing crun-wasmtime as handler crun-wasm for target ubuntu_22_04'],
      ['Normal', 'Installed', 'containerd serves handler crun-wasm (crun-wasmtime, target ubuntu_22_04)'],
    ]);

    // Running install again changes nothing in the API.
    const rv = async () => [
      JSON.parse(await cluster.kubectlOk(['get', 'node', 'node-a', '-o', 'json'])).metadata.resourceVersion,
      JSON.parse(await cluster.kubectlOk(['-n', KN_NS, 'get', 'configmap', KN_CM, '-o', 'json'])).metadata.resourceVersion,
    ];
    const before = await rv();
    expect((await installer('install', 'node-a', root, artifacts)).code).toBe(0);
    expect(await rv()).toEqual(before);

    const removed = await installer('remove', 'node-a', root, artifacts);
    expect({ code: removed.code, err: removed.err }).toEqual({ code: 0, err: '' });
    const labels = await nodeLabels(cluster, 'node-a');
    expect(labels).not.toHaveProperty([INSTALLED_LABEL.key]);
    expect(labels).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    expect(labels).toMatchObject({ 'example.com/keep': 'me' });
    expect((await nodeEvents(cluster, 'node-a')).slice(2)).toEqual([
      ['Normal', 'Removing', 'removing handler crun-wasm from this node'],
      ['Normal', 'Restored', "handler crun-wasm removed; the node's containerd config is restored"],
    ]);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });
    // The node's config is back byte for byte.
    expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe(CONTAINERD_CONFIG);
  });

  it('remove refuses while a pod on the node runs under the RuntimeClass, and goes on once it is gone', async () => {
    await createNode(cluster, 'node-p', 'containerd://1.7.22');
    const { root, artifacts } = freshNode();
    expect((await installer('install', 'node-p', root, artifacts)).code).toBe(0);
    const installedConfig = fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8');

    // A WASM pod bound to the node (no scheduler or kubelet here: nodeName is set directly), and one on another
    // node and one without the RuntimeClass, which must not count.
    await cluster.kubectl(['-n', 'default', 'create', 'serviceaccount', 'default']);
    const pod = (name: string, nodeName: string, runtimeClassName?: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name, namespace: 'default' },
      spec: { nodeName, ...(runtimeClassName ? { runtimeClassName } : {}), containers: [{ name: 'app', image: 'example.test/app:1' }] },
    });
    for (const p of [pod('wasm-app', 'node-p', 'crun'), pod('wasm-elsewhere', 'node-a', 'crun'), pod('plain-app', 'node-p')]) {
      await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(p) });
    }

    const refused = await installer('remove', 'node-p', root, artifacts, ['--pods-timeout-seconds', '2']);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('1 pod(s) on node node-p still run with handler crun-wasm (default/wasm-app); nothing was removed');
    expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe(installedConfig);
    // Unschedulable at once, but not restored: the uninstall keeps waiting on the host label, and the reason is on the node.
    expect(await nodeLabels(cluster, 'node-p')).not.toHaveProperty([INSTALLED_LABEL.key]);
    expect(await nodeLabels(cluster, 'node-p')).toMatchObject({ [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
    expect((await nodeEvents(cluster, 'node-p')).pop()).toEqual([
      'Warning',
      'RemoveRefused',
      expect.stringContaining('1 pod(s) on node node-p still run with handler crun-wasm (default/wasm-app); nothing was removed'),
    ]);

    await cluster.kubectlOk(['-n', 'default', 'delete', 'pod', 'wasm-app', '--force', '--grace-period=0']);
    const removed = await installer('remove', 'node-p', root, artifacts, ['--pods-timeout-seconds', '2']);
    expect({ code: removed.code, err: removed.err }).toEqual({ code: 0, err: '' });
    expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe(CONTAINERD_CONFIG);
    expect(await nodeLabels(cluster, 'node-p')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    await cluster.kubectl(['-n', 'default', 'delete', 'pod', 'wasm-elsewhere', 'plain-app', '--force', '--grace-period=0']);
  });

  it('a flag that was absent before install is absent again after remove', async () => {
    await createNode(cluster, 'node-b', 'containerd://1.7.22');
    await setConfigFeatures({ ...OTHER_KEYS });
    const { root, artifacts } = freshNode();

    expect((await installer('install', 'node-b', root, artifacts)).code).toBe(0);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: KN_ON });
    expect(await nodeLabels(cluster, 'node-b')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value });

    expect((await installer('remove', 'node-b', root, artifacts)).code).toBe(0);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS });
    expect(await nodeLabels(cluster, 'node-b')).not.toHaveProperty([INSTALLED_LABEL.key]);
  });

  it('remove leaves the flag alone when someone else changed it after install', async () => {
    await createNode(cluster, 'node-c', 'containerd://1.7.22');
    await setConfigFeatures({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });
    const { root, artifacts } = freshNode();
    expect((await installer('install', 'node-c', root, artifacts)).code).toBe(0);
    await cluster.kubectlOk(['-n', KN_NS, 'patch', 'configmap', KN_CM, '--type=merge', '-p', JSON.stringify({ data: { [KN_KEY]: 'allowed' } })]);
    expect((await installer('remove', 'node-c', root, artifacts)).code).toBe(0);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: 'allowed' });
  });

  it('--patch-knative false leaves Knative alone; without Knative, install still succeeds', async () => {
    await createNode(cluster, 'node-d', 'containerd://1.7.22');
    await setConfigFeatures({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });
    let node = freshNode();
    expect((await installer('install', 'node-d', node.root, node.artifacts, ['--patch-knative', 'false'])).code).toBe(0);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });
    expect(await nodeLabels(cluster, 'node-d')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value });
    expect((await installer('remove', 'node-d', node.root, node.artifacts)).code).toBe(0);
    expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: 'disabled' });

    await cluster.kubectlOk(['-n', KN_NS, 'delete', 'configmap', KN_CM]);
    node = freshNode();
    const installed = await installer('install', 'node-d', node.root, node.artifacts);
    expect(installed.code).toBe(0);
    expect(installed.out).toContain(`"level":"info","msg":"Knative's ConfigMap ${KN_NS}/${KN_CM} does not exist: ${KN_KEY} left alone"`);
    expect(await nodeLabels(cluster, 'node-d')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value });
    expect((await installer('remove', 'node-d', node.root, node.artifacts)).code).toBe(0);
    expect(await nodeLabels(cluster, 'node-d')).not.toHaveProperty([INSTALLED_LABEL.key]);
  });

  describe('install and remove called directly, with the ServiceAccount client', () => {
    let api: ClusterApi;
    beforeAll(() => {
      api = connectCluster(saKubeconfig, {}) as ClusterApi;
    });
    const argsFor = (command: string, root: string, artifacts: string, node: string, extra: string[] = []) =>
      [command, '--node-root', root, '--target', TARGET, '--runtime', RUNTIME, '--artifacts', artifacts, '--node-name', node, ...extra];

    it('a flag that was already enabled is not ours: remove leaves it enabled', async () => {
      await createNode(cluster, 'node-e', 'containerd://1.7.22');
      await setConfigFeatures({ ...OTHER_KEYS, [KN_KEY]: KN_ON });
      const { root, artifacts } = freshNode();
      await install(settingsFor(argsFor('install', root, artifacts, 'node-e')), effectsFor(root, { cluster: api }));
      expect(JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8')).knative).toBeUndefined();
      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-e')), effectsFor(root, { cluster: api }));
      expect(await configMapData(cluster, KN_NS, KN_CM)).toEqual({ ...OTHER_KEYS, [KN_KEY]: KN_ON });
    });

    it("taking over from the original knawd-deployer waits while pods run under its handler: pending, an Event naming them; the drift check takes over once they are gone", async () => {
      await createNode(cluster, 'node-o', 'containerd://1.7.22');
      // The original's entry, in the form its manager wrote it, with its crun and the engine that crun names.
      const entry = [
        '',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]',
        'runtime_type = "io.containerd.runc.v2"',
        'privileged_without_host_devices = false',
        'pod_annotations = [',
        '    "*.wasm.*",',
        '    "module.wasm.image/*",',
        '    "*.module.wasm.image",',
        '    "module.wasm.image/variant.*",',
        ']',
        '',
        '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]',
        'BinaryName = "/usr/local/sbin/crun"',
        '',
      ].join('\n');
      const root = makeRoot({ '/etc/containerd/config.toml': CONTAINERD_CONFIG + entry, '/usr/local/sbin/crun': 'the original crun, NEEDED libwasmtime.so\n', '/lib/libwasmtime.so': 'wasmtime\n' });
      const artifacts = makeArtifacts(TARGET);
      const pods = [{ namespace: 'default', name: 'old-wasm', runtimeHandler: 'crun', ready: true }];
      const effects = { ...effectsFor(root, { cluster: api }), listPodSandboxes: async () => pods };
      const waiting = ['Normal', 'WaitingForOriginalPods', 'containerd serves handler crun-wasm; taking over from the original knawd-deployer waits: pods still run under it: default/old-wasm'];

      await install(settingsFor(argsFor('install', root, artifacts, 'node-o')), effects);
      expect(await nodeLabels(cluster, 'node-o')).toMatchObject({ [NODE_STATE_LABEL]: 'pending', [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      expect(await nodeEvents(cluster, 'node-o')).toEqual([['Normal', 'Installing', 'installing crun-wasmtime as handler crun-wasm for target ubuntu_22_04'], waiting]);
      expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toContain('runtimes.crun]');

      // The staying installer's next look: the pods still run, nothing is written, no new Event.
      await install(settingsFor(argsFor('install', root, artifacts, 'node-o', ['--drift-check'])), effects);
      expect((await nodeEvents(cluster, 'node-o')).length).toBe(2);
      expect(await nodeLabels(cluster, 'node-o')).toMatchObject({ [NODE_STATE_LABEL]: 'pending' });

      pods.length = 0;
      const restarts = effects.runner.calls.filter((c) => c.join(' ') === RESTART('containerd').join(' ')).length;
      await install(settingsFor(argsFor('install', root, artifacts, 'node-o', ['--drift-check'])), effects);
      expect(effects.runner.calls.filter((c) => c.join(' ') === RESTART('containerd').join(' ')).length).toBe(restarts + 1);
      expect(await nodeLabels(cluster, 'node-o')).toMatchObject({ [NODE_STATE_LABEL]: INSTALLED_LABEL.value });
      expect((await nodeEvents(cluster, 'node-o')).slice(2)).toEqual([['Normal', 'Installed', 'containerd serves handler crun-wasm (crun-wasmtime, target ubuntu_22_04)']]);
      expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).not.toContain('runtimes.crun]');
      expect(fs.existsSync(path.join(root, 'usr/local/sbin/crun')) || fs.existsSync(path.join(root, 'lib/libwasmtime.so'))).toBe(false);

      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-o')), effectsFor(root, { cluster: api }));
      // No .bak was left by the original here: the config stays as it was without either entry.
      expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe(CONTAINERD_CONFIG);
    });

    it('with --restart none the node stays pending: the runtime does not know the handler yet', async () => {
      await createNode(cluster, 'node-r', 'containerd://1.7.22');
      const { root, artifacts } = freshNode();
      const effects = effectsFor(root, { cluster: api });
      const report = await install(settingsFor(argsFor('install', root, artifacts, 'node-r', ['--restart', 'none'])), effects);
      expect(report.restartPending).toBe(true);
      expect(await nodeLabels(cluster, 'node-r')).toMatchObject({ [NODE_STATE_LABEL]: 'pending', [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      expect(effects.statusCalls).toEqual([]);

      // remove with --restart none: files restored, but the host is not restored until the runtime restarts.
      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-r', ['--restart', 'none'])), effectsFor(root, { cluster: api }));
      expect(await nodeLabels(cluster, 'node-r')).toMatchObject({ [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      expect(await nodeLabels(cluster, 'node-r')).not.toHaveProperty([NODE_STATE_LABEL]);
      // After the restart (by hand), remove again clears it.
      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-r')), effectsFor(root, { cluster: api }));
      expect(await nodeLabels(cluster, 'node-r')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    });

    it('remove on a node with nothing installed still clears stale labels', async () => {
      await createNode(cluster, 'node-s', 'containerd://1.7.22', { [INSTALLED_LABEL.key]: INSTALLED_LABEL.value, [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      const root = makeRoot();
      const report = await remove(settingsFor(['remove', '--node-root', root, '--node-name', 'node-s']), effectsFor(root, { cluster: api }));
      expect(report.changed).toEqual([]);
      expect(await nodeLabels(cluster, 'node-s')).not.toHaveProperty([INSTALLED_LABEL.key]);
      expect(await nodeLabels(cluster, 'node-s')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    });

    it('a restart that fails rolls the install back and marks the node failed, with the reason as an Event', async () => {
      await createNode(cluster, 'node-f', 'containerd://1.7.22');
      const { root, artifacts } = freshNode();
      const before = snapshot(root);
      let restarts = 0;
      const effects = effectsFor(root, { cluster: api, answer: (argv) => (argv.includes('restart') && restarts++ === 0 ? { code: 1, stderr: 'Job for containerd.service failed' } : undefined) });
      await expect(install(settingsFor(argsFor('install', root, artifacts, 'node-f')), effects)).rejects.toThrow(/the install was rolled back/);
      expect(snapshot(root)).toEqual(before);
      expect(effects.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART('containerd'), RESTART('containerd')]);
      expect(await nodeLabels(cluster, 'node-f')).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
      expect(await nodeLabels(cluster, 'node-f')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
      expect((await nodeEvents(cluster, 'node-f')).pop()).toEqual(['Warning', 'InstallFailed', expect.stringMatching(/^systemctl restart containerd failed \(exit 1\): Job for containerd.service failed; the install was rolled back/)]);

      // A later successful run replaces both.
      await install(settingsFor(argsFor('install', root, artifacts, 'node-f')), effectsFor(root, { cluster: api }));
      expect(await nodeLabels(cluster, 'node-f')).toMatchObject({ [NODE_STATE_LABEL]: 'installed' });
      expect((await nodeEvents(cluster, 'node-f')).pop()).toEqual(['Normal', 'Installed', expect.any(String)]);
      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-f')), effectsFor(root, { cluster: api }));
    });

    it('a runtime that comes back without the handler: rolled back, node failed, reason on the node', async () => {
      await createNode(cluster, 'node-i', 'containerd://1.7.22');
      const { root, artifacts } = freshNode();
      const before = snapshot(root);
      // The runtime restarts fine but ignores the new handler (what containerd 2.x does with a block under the 1.x name).
      const effects = effectsFor(root, { cluster: api, criHandlers: () => ['runc'] });
      await expect(install(settingsFor(argsFor('install', root, artifacts, 'node-i', ['--socket-timeout-seconds', '2'])), effects)).rejects.toThrow(
        /containerd came back without handler crun-wasm \(it serves runc\): it ignored the config that was written; the install was rolled back/,
      );
      expect(snapshot(root)).toEqual(before);
      expect(effects.runner.calls.filter((c) => c.includes('restart'))).toEqual([RESTART('containerd'), RESTART('containerd')]);
      // Failed, but restored: nothing for an uninstall to wait for.
      expect(await nodeLabels(cluster, 'node-i')).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
      expect(await nodeLabels(cluster, 'node-i')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
      expect((await nodeEvents(cluster, 'node-i')).pop()).toEqual(['Warning', 'InstallFailed', expect.stringContaining('came back without handler crun-wasm')]);
    });

    it("where the kubelet reports runtimeHandlers, install waits until the Node lists ours before it says installed", async () => {
      await createNode(cluster, 'node-h', 'containerd://1.7.22', {}, ['runc']);
      const { root, artifacts } = freshNode();
      const effects = effectsFor(root, { cluster: api });
      const installing = install(settingsFor(argsFor('install', root, artifacts, 'node-h')), effects);
      // The kubelet's next status update, a few seconds after the restart.
      await new Promise((r) => setTimeout(r, 3000));
      expect(await nodeLabels(cluster, 'node-h')).toMatchObject({ [NODE_STATE_LABEL]: 'pending' });
      await setRuntimeHandlers(cluster, 'node-h', ['runc', 'crun-wasm']);
      await installing;
      expect(await nodeLabels(cluster, 'node-h')).toMatchObject({ [NODE_STATE_LABEL]: 'installed' });
      // With the features the kubelet reports for it (what setRuntimeHandlers wrote).
      expect(effects.log.records).toContainEqual({ level: 'info', msg: 'node node-h lists runtime handler crun-wasm in its status', features: { recursiveReadOnlyMounts: false, userNamespaces: false } });
      await remove(settingsFor(argsFor('remove', root, artifacts, 'node-h')), effectsFor(root, { cluster: api }));
    });

    it('a kubelet that never lists the handler: rolled back, node failed', async () => {
      await createNode(cluster, 'node-k', 'containerd://1.7.22', {}, ['runc']);
      const { root, artifacts } = freshNode();
      const before = snapshot(root);
      const effects = effectsFor(root, { cluster: api });
      await expect(install(settingsFor(argsFor('install', root, artifacts, 'node-k', ['--socket-timeout-seconds', '3'])), effects)).rejects.toThrow(
        /the kubelet on node node-k does not list runtime handler crun-wasm after 3 s \(it lists runc\); the install was rolled back/,
      );
      expect(snapshot(root)).toEqual(before);
      expect(await nodeLabels(cluster, 'node-k')).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
    });

    it("pre-flight: the Node says containerd 1.7 but the host's containerd is 2.2 — refused before any write, node failed", async () => {
      await createNode(cluster, 'node-x', 'containerd://1.7.22');
      const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd2-version2-2x-names.toml') });
      installHostBinary(root, '/usr/bin/containerd', containerdBinary(2));
      const before = snapshot(root);
      const runner = new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined));
      const effects = { ...effectsFor(root, { cluster: api }), runner };
      await expect(install(settingsFor(argsFor('install', root, makeArtifacts(TARGET), 'node-x')), effects)).rejects.toThrow(
        /^pre-flight: the node's containerd \(\/usr\/bin\/containerd 2\.2\.\d+\) would not see the handler in the config install would write to \/etc\/containerd\/config\.toml; it reads these runtime handlers instead: runc \(under plugins\."io\.containerd\.cri\.v1\.runtime"\.containerd\.runtimes\); nothing was changed$/,
      );
      expect(snapshot(root)).toEqual(before);
      expect(runner.calls.some((c) => c.includes('systemctl'))).toBe(false);
      expect(await nodeLabels(cluster, 'node-x')).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
      expect(await nodeLabels(cluster, 'node-x')).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
      expect((await nodeEvents(cluster, 'node-x')).pop()).toEqual(['Warning', 'InstallFailed', expect.stringMatching(/^pre-flight: the node's containerd .* nothing was changed$/)]);
      expect(effects.log.records.map((r) => r.msg)).toContainEqual(expect.stringMatching(/the node reports containerd 1\.7\.22 but \/usr\/bin\/containerd is 2\.2\.\d+/));
    });

    describe('the containerd version the node object reports decides the config, and that containerd loads it', () => {
      it.each<[string, string, string, Record<string, string>, string, 1 | 2]>([
        ['no config file on a containerd 2 node: version 3', 'node-v3', 'containerd://2.1.0', {}, 'version = 3', 2],
        ['no config file on a containerd 1.7 node: version 2', 'node-v2', 'containerd://1.7.22', {}, 'version = 2', 1],
        ['a containerd 1.x config on a containerd 2 node (migrated on load)', 'node-m', 'containerd://2.0.2', { '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') }, 'version = 2', 2],
        // 2.1's default config imports nothing (the conf.d import came with 2.2: test/installer/preflight.test.ts).
        ["containerd 2.1's own default config", 'node-d2', 'containerd://2.1.0', { '/etc/containerd/config.toml': fixture('containerd-2-no-imports.toml') }, 'version = 3', 2],
      ])('%s', async (_name, node, version, files, declared, major) => {
        await createNode(cluster, node, version);
        const root = makeRoot(files);
        const args = ['install', '--node-root', root, '--target', 'containerd', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('containerd'), '--node-name', node];
        await install(settingsFor(args), effectsFor(root, { cluster: api }));
        const config = fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8');
        expect(config).toContain(declared);
        // containerd's own reading of the file, in the newest config version that containerd knows.
        const dumped = containerdConfigDump(major, config);
        const plugin = major === 2 ? 'io.containerd.cri.v1.runtime' : 'io.containerd.grpc.v1.cri';
        expect(dumped).toMatch(new RegExp(`\\[plugins\\.["']${plugin.replace(/\./g, '\\.')}["']\\.containerd\\.runtimes\\.crun-wasm\\]`));
        expect(dumped).toMatch(/BinaryName = ["']\/opt\/knawd\/bin\/crun-wasmtime["']/);
        expect(dumped).toMatch(/["']module\.wasm\.image\/variant["']/);

        // The nodes are shared with the wait-removed tests below: leave them unlabelled, as remove does.
        await remove(settingsFor(['remove', ...args.slice(1)]), effectsFor(root, { cluster: api }));
        expect(await nodeLabels(cluster, node)).not.toHaveProperty([INSTALLED_LABEL.key]);
      });
    });
    describe("the CRI-O version the node object reports decides the drop-in's allowed_annotations", () => {
      const DROP_IN = 'etc/crio/crio.conf.d/50-knawd-crun-wasm.conf';
      // The host's binary would say otherwise: the node object, when it answers, wins, and the host is not asked.
      const hostSays = (argv: readonly string[]) => (argv.includes('--version') ? { stdout: 'crio version 1.24.6\n' } : undefined);
      it.each<[string, string, string]>([
        ['CRI-O 1.36 filters crun annotations: the handler allows them', 'node-c36', 'cri-o://1.36.3'],
        ['OpenShift CRI-O 1.29.4 (with the CVE-2024-3154 fix): the handler allows them', 'node-c29', 'cri-o://1.29.4-2.rhaos4.16.git1234567.el9'],
        ['CRI-O 1.29.3 would drop a handler listing them: none', 'node-c293', 'cri-o://1.29.3'],
      ])('%s', async (_name, node, version) => {
        await createNode(cluster, node, version);
        const root = makeRoot({ '/etc/crio/crio.conf': fixture('crio.conf') });
        const args = ['install', '--node-root', root, '--target', 'crio', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('crio'), '--node-name', node];
        const effects = effectsFor(root, { cluster: api, answer: hostSays });
        await install(settingsFor(args), effects);
        const dropIn = fs.readFileSync(path.join(root, DROP_IN), 'utf8');
        if (version === 'cri-o://1.29.3') expect(dropIn).not.toContain('allowed_annotations');
        else expect(dropIn).toContain('  allowed_annotations = ["module.wasm.image/variant", "run.oci."]\n');
        expect(effects.runner.calls.filter((c) => c.includes('--version'))).toEqual([]);
        expect(effects.log.records.some((r) => r.msg.includes('(as reported by the node object)'))).toBe(true);
        await remove(settingsFor(['remove', ...args.slice(1)]), effectsFor(root, { cluster: api }));
        expect(fs.existsSync(path.join(root, DROP_IN))).toBe(false);
      });
    });
  });

  describe('wait-removed (the uninstall Job), the installer CLI from source with the Job\'s ServiceAccount token', () => {
    let api: ClusterApi;
    beforeAll(() => {
      api = connectCluster(saKubeconfig, {}) as ClusterApi;
    });

    it('times out naming the node not restored and the reason its remover gave, then succeeds once the label is gone', async () => {
      await createNode(cluster, 'node-w', 'containerd://1.7.22', { [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      await api.createNodeEvent('node-w', { type: 'Warning', reason: 'RemoveFailed', message: 'systemctl restart containerd failed (exit 1)' });
      const started = Date.now();
      const waiting = await installerCli(['wait-removed', '--timeout-seconds', '5', '--kubeconfig', waitKubeconfig]);
      const took = Date.now() - started;
      expect(waiting.code).toBe(1);
      expect(waiting.stderr).toMatch(/timed out after 5 s/);
      expect(waiting.stderr).toContain(`1 node(s) not restored yet (${HOST_LABEL}): node-w; node-w: RemoveFailed: systemctl restart containerd failed (exit 1)`);
      expect(took).toBeGreaterThanOrEqual(5000);
      expect(took).toBeLessThan(40_000);

      await cluster.kubectlOk(['label', 'node', 'node-w', `${HOST_CHANGED_LABEL.key}-`]);
      const done = await installerCli(['wait-removed', '--timeout-seconds', '5', '--kubeconfig', waitKubeconfig]);
      expect({ code: done.code, stderr: done.stderr }).toEqual({ code: 0, stderr: '' });
      expect(done.stdout).toMatch(/every node is restored/);
    });

    it('fails at once, with the reason, when a remover refuses during the wait (an older refusal does not count)', async () => {
      await cluster.kubectlOk(['label', 'node', 'node-w', HOST_LABEL]);
      await api.createNodeEvent('node-w', { type: 'Warning', reason: 'RemoveRefused', message: 'an old refusal from an earlier uninstall' });
      await new Promise((r) => setTimeout(r, 1100));
      const waiting = installerCliUntil(['wait-removed', '--timeout-seconds', '60', '--kubeconfig', waitKubeconfig, '--log-level', 'debug'], /"msg":"waiting for nodes"/);
      await waiting.reached;
      const refusedAt = Date.now();
      await api.createNodeEvent('node-w', { type: 'Warning', reason: 'RemoveRefused', message: '1 pod(s) on node node-w still run with handler crun-wasm (default/x); nothing was removed' });
      const r = await waiting.done;
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('the remover refused on 1 node(s): node-w: 1 pod(s) on node node-w still run with handler crun-wasm (default/x); nothing was removed');
      expect(r.stderr).not.toContain('an old refusal');
      expect(Date.now() - refusedAt).toBeLessThan(15_000);
      await cluster.kubectlOk(['label', 'node', 'node-w', `${HOST_CHANGED_LABEL.key}-`]);
    });

    it('returns as soon as the last host label is removed while it waits, whatever the state label says', async () => {
      await cluster.kubectlOk(['label', 'node', 'node-w', HOST_LABEL]);
      const waiting = installerCliUntil(['wait-removed', '--timeout-seconds', '60', '--kubeconfig', waitKubeconfig, '--log-level', 'debug'], /"msg":"waiting for nodes"/);
      // It waits on the labelled node before the label goes (not merely slow to start)...
      await waiting.reached;
      const started = Date.now();
      // Unschedulable is not restored: taking the state label away does not end the wait.
      await cluster.kubectlOk(['label', 'node', 'node-w', `${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`]);
      await cluster.kubectlOk(['label', 'node', 'node-w', `${INSTALLED_LABEL.key}-`]);
      await new Promise((r) => setTimeout(r, 3000));
      await cluster.kubectlOk(['label', 'node', 'node-w', `${HOST_CHANGED_LABEL.key}-`]);
      const done = await waiting.done;
      // ...and returns once it is gone.
      expect(done.code).toBe(0);
      expect(done.stdout).toMatch(/"msg":"waiting for nodes".*"nodes":\["node-w"\]/);
      expect(Date.now() - started).toBeLessThan(15_000);
    });

    it('fails (not hangs, not succeeds) when it may not list nodes', async () => {
      await cluster.kubectlOk(['-n', 'default', 'create', 'serviceaccount', 'nobody']);
      const nobody = await serviceAccountKubeconfig(cluster, 'default', 'nobody');
      await cluster.kubectlOk(['label', 'node', 'node-w', HOST_LABEL]);
      const r = await installerCli(['wait-removed', '--timeout-seconds', '3', '--kubeconfig', nobody]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/timed out after 3 s/);
      await cluster.kubectlOk(['label', 'node', 'node-w', `${HOST_CHANGED_LABEL.key}-`]);
    });
  });
});
