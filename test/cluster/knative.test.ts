/**
 * Knative done the way Knative users expect, on a real kube-apiserver, with Knative Serving's own files: its
 * Service CRD (what makes the cluster serve serving.knative.dev/v1) and its config-features and
 * config-deployment ConfigMaps exactly as the oldest and the newest knative.dev/serving release the module
 * proxy serves ships them (`npm run tools` fetches them into the tool cache).
 *
 * - Without Knative, the chart's default install succeeds, renders nothing in Knative's namespace, and the
 *   installer (run with the env of the DaemonSet Helm created, as the ServiceAccount) says at info level how to
 *   wire Knative up later.
 * - With Knative, `helm upgrade` with the same values wires it up: the RoleBindings appear, the installer's pod
 *   template changes (so its pods roll), and install changes exactly the podspec flag and config-deployment's
 *   runtime-class-name (read back by Knative's own parser, which gives crun to labelled revisions only), the
 *   rest of both ConfigMaps untouched; remove restores them to what Knative shipped.
 */
import * as fs from 'fs';
import * as path from 'path';
import { INSTALLED_LABEL, KNATIVE_DEPLOYMENT, KNATIVE_FEATURE } from '../../lib/catalog';
import { run } from '../../lib/installer/run';
import { handlersOnNodeRoot, makeArtifacts, makeRoot, fixture } from '../installer/support';
import { ChrootRunner, installHostBinary } from '../support/chroot-runner';
import { containerdBinary } from '../support/containerd-binaries';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { createNode, nodeLabels } from '../support/cluster/node';
import { CHART } from '../support/cluster/objects';
import { applyShipped, KNATIVE_VERSIONS, knativeParse, serveKnativeApi, shippedConfigMap, stopServingKnativeApi } from '../support/knative';

jest.setTimeout(180_000);

const NS = 'knawd';
const RELEASE = 'knawd';
const TARGET = 'ubuntu_22_04';
const RUNTIME = 'crun-wasmtime';
const VALUES = ['--set', `target=${TARGET}`, '--set', `ociType=${RUNTIME}`, '--set', 'knative.runtimeClassName.enabled=true'];
const OUR_ENTRY = '"crun":\n  "selector":\n    "knawd.dev/wasm": "true"\n';
/** Revision labels as Knative sets them, for a Service labelled for WASM and one that is not. */
const WASM_REVISION = { 'knawd.dev/wasm': 'true', 'serving.knative.dev/service': 'hello-wasm', 'serving.knative.dev/configuration': 'hello-wasm' };
const PLAIN_REVISION = { 'serving.knative.dev/service': 'hello', 'serving.knative.dev/configuration': 'hello' };

type ConfigMapJson = { metadata: { labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion: string }; data?: Record<string, string> };

describe('Knative Serving as it ships, with the chart and the installer', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['create', 'namespace', NS]);
    await cluster.kubectlOk(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=privileged']);
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  async function getJson<T>(args: string[]): Promise<T> {
    return JSON.parse(await cluster.kubectlOk([...args, '-o', 'json'])) as T;
  }

  async function exists(args: string[]): Promise<boolean> {
    return (await cluster.kubectlOk(['get', ...args, '--ignore-not-found', '-o', 'name'])).trim() !== '';
  }

  async function installerDaemonSet(): Promise<any> {
    return getJson(['-n', NS, 'get', 'daemonset', 'knawd-installer']);
  }

  /** The installer's env as the DaemonSet Helm created sets it (plain values; NODE_NAME comes from the flag). */
  async function daemonSetEnv(): Promise<Record<string, string>> {
    const env = (await installerDaemonSet()).spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: unknown }[];
    return Object.fromEntries(env.filter((e) => e.valueFrom === undefined).map((e) => [e.name, e.value ?? '']));
  }

  const tokens = new Map<string, string>();
  /**
   * A kubeconfig with the installer ServiceAccount's token bound to a pod on `node`, as the kubelet gets it
   * for the DaemonSet's pod: the chart's node-restriction policy lets that token label that node only.
   */
  async function kubeconfigOn(node: string): Promise<string> {
    const known = tokens.get(node);
    if (known) return known;
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: `installer-${node}`, namespace: NS }, spec: { nodeName: node, serviceAccountName: 'knawd-installer', containers: [{ name: 'installer', image: 'example.test/knawd-installer:1' }] } };
    const uid = JSON.parse(await cluster.kubectlOk(['create', '-o', 'json', '-f', '-'], { input: JSON.stringify(pod) })).metadata.uid as string;
    const token = (await cluster.kubectlOk(['-n', NS, 'create', 'token', 'knawd-installer', '--bound-object-kind', 'Pod', '--bound-object-name', pod.metadata.name, '--bound-object-uid', uid, '--duration=30m'])).trim();
    const file = cluster.writeKubeconfig(`installer-${node}`, token);
    tokens.set(node, file);
    return file;
  }

  /** The installer as that DaemonSet runs it on `node`, against a temp node root, as its ServiceAccount. */
  async function installer(command: 'install' | 'remove', node: string, root: string, artifacts: string) {
    const out: string[] = [];
    const err: string[] = [];
    const code = await run(
      [command, '--node-root', root, '--artifacts', artifacts, '--node-name', node, '--kubeconfig', await kubeconfigOn(node), '--host-exec', 'chroot'],
      await daemonSetEnv(),
      { stdout: (l) => out.push(l), stderr: (l) => err.push(l) },
      // No runtime behind the node root's socket: CRI Status answers what the node root's configs define.
      // systemctl is recorded (no systemd on a node root); the pre-flight runs the node root's own containerd.
      { runner: new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined)), probeSocket: async () => true, waitForSocket: async () => true, readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) },
    );
    return { code, out: out.join('\n'), err: err.join('\n'), lines: out.map((l) => JSON.parse(l) as { level: string; msg: string }) };
  }

  function freshNode(): { root: string; artifacts: string } {
    const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') });
    installHostBinary(root, '/usr/bin/containerd', containerdBinary(1));
    return { root, artifacts: makeArtifacts(TARGET) };
  }

  async function configMap(name: string): Promise<ConfigMapJson> {
    return getJson(['-n', 'knative-serving', 'get', 'configmap', name]);
  }

  it('without Knative: the default helm install succeeds, renders nothing of Knative, and the installer says how to wire it up later', async () => {
    const output = await cluster.helmOk(['install', RELEASE, CHART, '-n', NS, ...VALUES, '--timeout', '30s']);
    expect(output).toContain('Knative Serving is not installed (the cluster does not serve serving.knative.dev/v1): Knative is left alone.');
    expect(output).toContain('Installed it later? Run helm upgrade with the same values: that wires it up.');
    expect(await exists(['namespace', 'knative-serving'])).toBe(false);
    expect(await exists(['clusterrole', 'knawd-installer-knative-features'])).toBe(false);
    expect(await exists(['clusterrole', 'knawd-installer-knative-deployment'])).toBe(false);
    expect(await daemonSetEnv()).toMatchObject({ PATCH_KNATIVE: 'auto', KNAWD_RUNTIME_CLASS: 'crun', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: 'knawd.dev/wasm=true' });

    await createNode(cluster, 'node-0', 'containerd://1.7.22');
    const { root, artifacts } = freshNode();
    const installed = await installer('install', 'node-0', root, artifacts);
    expect({ code: installed.code, err: installed.err }).toEqual({ code: 0, err: '' });
    expect(installed.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);
    expect(installed.lines).toContainEqual(
      expect.objectContaining({
        level: 'info',
        msg: expect.stringMatching(/^Knative Serving is not installed \(the cluster does not serve serving\.knative\.dev\/v1\): Knative is left alone; to wire it up later: install Knative Serving, then run helm upgrade with the same values/),
      }),
    );
    expect(await nodeLabels(cluster, 'node-0')).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value });
    expect(JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8')).knative).toBeUndefined();
    expect((await installer('remove', 'node-0', root, artifacts)).code).toBe(0);
  });

  it('Knative Serving installed but the chart not yet upgraded: the installer says it may not read its ConfigMaps, and installs', async () => {
    const version = KNATIVE_VERSIONS[0];
    await serveKnativeApi(cluster, version);
    await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
    await applyShipped(cluster, shippedConfigMap(version, 'features'));
    await applyShipped(cluster, shippedConfigMap(version, 'deployment'));
    await createNode(cluster, 'node-1', 'containerd://1.7.22');
    const { root, artifacts } = freshNode();
    const installed = await installer('install', 'node-1', root, artifacts);
    expect({ code: installed.code, err: installed.err }).toEqual({ code: 0, err: '' });
    const notes = installed.lines.filter((l) => /Knative/.test(l.msg));
    expect(notes).toEqual([
      expect.objectContaining({ level: 'info', msg: expect.stringMatching(/^the installer may not read Knative's ConfigMap knative-serving\/config-features \(.*forbidden.*\); give the installer Knative's RBAC: helm upgrade with the same values/) }),
      expect.objectContaining({ level: 'info', msg: expect.stringMatching(/^the installer may not read Knative's ConfigMap knative-serving\/config-deployment/) }),
    ]);
    expect((await configMap(KNATIVE_FEATURE.configMap)).data).toEqual(shippedConfigMap(version, 'features').data);
    expect((await installer('remove', 'node-1', root, artifacts)).code).toBe(0);
  });

  describe.each(KNATIVE_VERSIONS)('Knative Serving %s', (version) => {
    const features = shippedConfigMap(version, 'features');
    const deployment = shippedConfigMap(version, 'deployment');

    beforeAll(async () => {
      await serveKnativeApi(cluster, version);
      if (!(await exists(['namespace', 'knative-serving']))) await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
      await applyShipped(cluster, features);
      await applyShipped(cluster, deployment);
    });

    it('what Knative ships: the flag disabled in the _example block only, no runtime-class-name key', () => {
      expect(features.data[KNATIVE_FEATURE.key]).toBeUndefined();
      expect(features.data._example).toContain(`${KNATIVE_FEATURE.key}: "disabled"`);
      expect(deployment.data[KNATIVE_DEPLOYMENT.key]).toBeUndefined();
      expect(knativeParse(version, deployment.data, [WASM_REVISION])).toEqual({ picks: [null] });
    });

    it('helm upgrade with the same values wires Knative up: exactly the two ConfigMaps granted, the installer pods roll', async () => {
      const before = (await installerDaemonSet()).spec.template;
      const output = await cluster.helmOk(['upgrade', RELEASE, CHART, '-n', NS, ...VALUES, '--timeout', '30s']);
      expect(output).toContain('Knative Serving: the installer enables kubernetes.podspec-runtimeclassname in knative-serving/config-features');
      expect(output).toContain('and makes crun the default RuntimeClass of Knative Services whose revisions are labelled');
      expect(await daemonSetEnv()).toMatchObject({ PATCH_KNATIVE: 'true', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: 'knawd.dev/wasm=true' });
      expect((await installerDaemonSet()).spec.template).not.toEqual(before);

      const sa = `system:serviceaccount:${NS}:knawd-installer`;
      const can = async (...args: string[]) => (await cluster.kubectl(['auth', 'can-i', ...args, '--as', sa])).stdout.trim();
      expect(await can('get', 'configmaps/config-features', '-n', 'knative-serving')).toBe('yes');
      expect(await can('patch', 'configmaps/config-features', '-n', 'knative-serving')).toBe('yes');
      expect(await can('get', 'configmaps/config-deployment', '-n', 'knative-serving')).toBe('yes');
      expect(await can('patch', 'configmaps/config-deployment', '-n', 'knative-serving')).toBe('yes');
      expect(await can('update', 'configmaps/config-deployment', '-n', 'knative-serving')).toBe('no');
      expect(await can('patch', 'configmaps/config-network', '-n', 'knative-serving')).toBe('no');
      expect(await can('patch', 'configmaps/config-deployment', '-n', 'default')).toBe('no');
    });

    it('install changes exactly the flag and runtime-class-name; Knative gives crun to labelled revisions; remove restores what Knative shipped', async () => {
      const node = `node-${version.replace(/\./g, '-')}`;
      await createNode(cluster, node, 'containerd://1.7.22');
      const { root, artifacts } = freshNode();
      const installed = await installer('install', node, root, artifacts);
      expect({ code: installed.code, err: installed.err }).toEqual({ code: 0, err: '' });
      expect(installed.lines.filter((l) => l.level === 'warn' || l.level === 'error')).toEqual([]);

      const f = await configMap(KNATIVE_FEATURE.configMap);
      const d = await configMap(KNATIVE_DEPLOYMENT.configMap);
      expect(f.data).toEqual({ ...features.data, [KNATIVE_FEATURE.key]: 'enabled' });
      expect(d.data).toEqual({ ...deployment.data, [KNATIVE_DEPLOYMENT.key]: OUR_ENTRY });
      // Knative's example checksum (its webhook compares it with _example), labels and annotations untouched.
      for (const [stored, shipped] of [[f, features], [d, deployment]] as const) {
        expect(stored.metadata.labels).toEqual(shipped.metadata.labels);
        expect(stored.metadata.annotations).toEqual(shipped.metadata.annotations);
      }
      expect(knativeParse(version, d.data ?? {}, [WASM_REVISION, PLAIN_REVISION])).toEqual({
        runtimeClassNames: { crun: { selector: { 'knawd.dev/wasm': 'true' } } },
        picks: ['crun', null],
      });
      expect(JSON.parse(fs.readFileSync(path.join(root, 'opt/knawd/state.json'), 'utf8')).knative).toEqual({
        previous: null,
        runtimeClassName: { previous: null, name: 'crun', selector: { 'knawd.dev/wasm': 'true' } },
      });

      // Again: nothing to do, nothing written.
      expect((await installer('install', node, root, artifacts)).code).toBe(0);
      expect((await configMap(KNATIVE_FEATURE.configMap)).metadata.resourceVersion).toBe(f.metadata.resourceVersion);
      expect((await configMap(KNATIVE_DEPLOYMENT.configMap)).metadata.resourceVersion).toBe(d.metadata.resourceVersion);

      const removed = await installer('remove', node, root, artifacts);
      expect({ code: removed.code, err: removed.err }).toEqual({ code: 0, err: '' });
      expect((await configMap(KNATIVE_FEATURE.configMap)).data).toEqual(features.data);
      expect((await configMap(KNATIVE_DEPLOYMENT.configMap)).data).toEqual(deployment.data);
    });

    it("an entry the platform team adds after install stays on remove; only ours goes", async () => {
      const node = `node-team-${version.replace(/\./g, '-')}`;
      await createNode(cluster, node, 'containerd://1.7.22');
      const { root, artifacts } = freshNode();
      expect((await installer('install', node, root, artifacts)).code).toBe(0);
      const theirs = 'gvisor:\n  selector:\n    sandbox: strict\n';
      const current = (await configMap(KNATIVE_DEPLOYMENT.configMap)).data?.[KNATIVE_DEPLOYMENT.key];
      await cluster.kubectlOk(['-n', 'knative-serving', 'patch', 'configmap', KNATIVE_DEPLOYMENT.configMap, '--type=merge', '-p', JSON.stringify({ data: { [KNATIVE_DEPLOYMENT.key]: `${current}${theirs}` } })]);
      expect((await installer('remove', node, root, artifacts)).code).toBe(0);
      const data = (await configMap(KNATIVE_DEPLOYMENT.configMap)).data ?? {};
      expect(data).toEqual({ ...deployment.data, [KNATIVE_DEPLOYMENT.key]: theirs });
      expect(knativeParse(version, data, [{ sandbox: 'strict' }, WASM_REVISION])).toEqual({ runtimeClassNames: { gvisor: { selector: { sandbox: 'strict' } } }, picks: ['gvisor', null] });
      await applyShipped(cluster, deployment);
    });

    it("two nodes' installers at once: neither loses the other's write, and both removes leave what Knative shipped", async () => {
      const nodes = ['a', 'b'].map((n) => `node-${n}-${version.replace(/\./g, '-')}`);
      const roots = nodes.map(() => freshNode());
      for (const n of nodes) await createNode(cluster, n, 'containerd://1.7.22');
      const results = await Promise.all(nodes.map((n, i) => installer('install', n, roots[i].root, roots[i].artifacts)));
      expect(results.map((r) => ({ code: r.code, err: r.err }))).toEqual([{ code: 0, err: '' }, { code: 0, err: '' }]);
      expect((await configMap(KNATIVE_DEPLOYMENT.configMap)).data).toEqual({ ...deployment.data, [KNATIVE_DEPLOYMENT.key]: OUR_ENTRY });
      for (let i = 0; i < nodes.length; i++) expect((await installer('remove', nodes[i], roots[i].root, roots[i].artifacts)).code).toBe(0);
      expect((await configMap(KNATIVE_FEATURE.configMap)).data).toEqual(features.data);
      expect((await configMap(KNATIVE_DEPLOYMENT.configMap)).data).toEqual(deployment.data);
    });

    // Knative gone again, and the chart upgraded: the next version starts from a cluster without Knative.
    afterAll(async () => {
      await stopServingKnativeApi(cluster);
      await cluster.helmOk(['upgrade', RELEASE, CHART, '-n', NS, ...VALUES, '--timeout', '30s']);
    });
  });

  it('Knative removed again: helm upgrade took the Knative RBAC away and tells the installer "auto" again', async () => {
    expect(await exists(['clusterrole', 'knawd-installer-knative-deployment'])).toBe(false);
    expect(await exists(['-n', 'knative-serving', 'rolebinding', 'knawd-installer-knative-features'])).toBe(false);
    expect(await daemonSetEnv()).toMatchObject({ PATCH_KNATIVE: 'auto' });
    await cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
  });
});
