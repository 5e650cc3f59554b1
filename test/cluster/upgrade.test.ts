/**
 * `helm upgrade` from a release of the original knawd-deployer chart (../shared/original: v1.3.0 and v1.2.0,
 * unchanged) to dist/charts/knawd-deployer, on a real kube-apiserver with the real helm (HELM_VERSION), for every
 * target/ociType pair the original accepted that this project ships, each with the values given at install
 * reused (a plain `helm upgrade` with no values, as a user runs it). No kubelet here: a Pod bound to the node
 * with `runtimeClassName: crun` stands for a WASM pod running under the original's handler (the single-node
 * cluster runs one for real).
 */
import * as fs from 'fs';
import * as path from 'path';
import { findTarget, ORIGINAL_OBJECTS, OriginalObject, runtimesFor } from '../../lib/catalog';
import { Cluster, REPO, startCluster } from '../../demo/cluster/control-plane';
import { parse } from 'yaml';
import { CHART, deleteExceptNamespaces, manifestPath, SCC_CRD, SCC_CRD_NAME, waitCrdEstablished } from '../support/cluster/objects';
import { createNode } from '../support/cluster/node';
import { tempDir } from '../installer/support';

jest.setTimeout(240_000);

const NS = 'knawd';
const RELEASE = 'knawd';
const ORIGINAL = path.join(REPO, '..', 'shared', 'original');
const ORIGINAL_CHARTS = {
  'v1.3.0': path.join(ORIGINAL, 'charts', 'knawd-deployer'),
  'v1.2.0': path.join(ORIGINAL, 'charts-v1.2.0', 'knawd-deployer'),
} as const;
type OriginalVersion = keyof typeof ORIGINAL_CHARTS;

/** The original's values.schema.json enums: what it accepted. */
function originalAccepts(version: OriginalVersion): { targets: string[]; ociTypes: string[] } {
  const file = path.join(ORIGINAL_CHARTS[version], 'values.schema.json');
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: the original knawd-deployer's charts belong at ../shared/original`);
  const props = JSON.parse(fs.readFileSync(file, 'utf8')).definitions.Deployer.properties;
  return { targets: props.target.enum, ociTypes: props.ociType.enum };
}

const CASES = (Object.keys(ORIGINAL_CHARTS) as OriginalVersion[]).flatMap((version) => {
  const { targets, ociTypes } = originalAccepts(version);
  return targets.flatMap((target) => ociTypes.filter((o) => runtimesFor(findTarget(target)).some((r) => r.name === o)).map((ociType) => ({ version, target, ociType })));
});

/**
 * OpenShift's SCC API for the original's rhel8 template, which leaves out fields the CRD requires: on OpenShift its
 * DefaultSecurityContextConstraints admission plugin fills them in before validation (openshift/apiserver-library-go,
 * sccdefaults); this API server has no such plugin, so the CRD here does not require them. Ours sets them all.
 */
async function installSccApi(cluster: Cluster): Promise<void> {
  const crd = parse(fs.readFileSync(SCC_CRD, 'utf8'));
  const schema = crd.spec.versions[0].schema.openAPIV3Schema;
  const defaulted = ['allowedCapabilities', 'defaultAddCapabilities', 'priority', 'requiredDropCapabilities', 'volumes'];
  schema.required = schema.required.filter((f: string) => !defaulted.includes(f));
  await cluster.kubectlOk(['apply', '--server-side', '-f', '-'], { input: JSON.stringify(crd) });
  await waitCrdEstablished(cluster, SCC_CRD_NAME);
  for (let i = 0; i < 40 && (await cluster.kubectl(['get', SCC_CRD_NAME])).code !== 0; i++) await new Promise((r) => setTimeout(r, 250));
}

describe('helm upgrade from the original chart on a real API server', () => {
  let cluster: Cluster;

  const getJson = async (args: string[]): Promise<any> => JSON.parse(await cluster.kubectlOk([...args, '-o', 'json']));
  const releases = async (): Promise<{ name: string; status: string; revision: string; chart: string }[]> => JSON.parse(await cluster.helmOk(['list', '-n', NS, '--all', '-o', 'json']));
  /** `kind.group/name`: what `kubectl get -o name` prints, and a reference it takes (cluster-scoped ones ignore `-n`). */
  const objectRef = (o: OriginalObject): string => `${o.kind.toLowerCase()}${o.apiVersion.includes('/') ? `.${o.apiVersion.split('/')[0]}` : ''}/${o.name}`;
  /** Which of `objects` exist, as `Kind/name` in their order: one kubectl call for all (each call is a process start and an API discovery). */
  const existing = async (objects: readonly OriginalObject[]): Promise<string[]> => {
    const found = new Set((await cluster.kubectlOk(['get', ...objects.map(objectRef), '-n', NS, '--ignore-not-found', '-o', 'name'])).split('\n'));
    return objects.filter((o) => found.has(objectRef(o))).map((o) => `${o.kind}/${o.name}`);
  };

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['create', 'namespace', NS]);
    await cluster.kubectlOk(['label', 'namespace', NS, 'pod-security.kubernetes.io/enforce=privileged']);
    await createNode(cluster, 'wasm-node-1', 'containerd://1.7.22');
    // No controller-manager here: the ServiceAccount admission needs the namespace's default account.
    await cluster.kubectlOk(['create', 'serviceaccount', 'default', '-n', 'default']);
    await installSccApi(cluster);
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** The original's release, as its users installed it, with a WASM pod running under its RuntimeClass. */
  async function installOriginal(version: OriginalVersion, target: string, ociType: string): Promise<void> {
    await cluster.helmOk(['install', RELEASE, ORIGINAL_CHARTS[version], '-n', NS, '--set', `target=${target}`, '--set', `ociType=${ociType}`, '--timeout', '30s']);
    expect(await releases()).toEqual([expect.objectContaining({ status: 'deployed', revision: '1', chart: `knawd-deployer-${version}` })]);
    expect((await getJson(['get', 'runtimeclass', 'crun'])).handler).toBe('crun');
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'old-wasm', namespace: 'default', annotations: { 'module.wasm.image/variant': 'compat-smart' } },
      spec: { nodeName: 'wasm-node-1', runtimeClassName: 'crun', automountServiceAccountToken: false, containers: [{ name: 'app', image: 'example.com/wasm:1' }] },
    };
    await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(pod) });
  }

  async function cleanUp(): Promise<void> {
    if ((await releases()).length > 0) await cluster.helmOk(['uninstall', RELEASE, '-n', NS, '--no-hooks', '--timeout', '30s']);
    await cluster.kubectlOk(['delete', 'pod', 'old-wasm', '-n', 'default', '--ignore-not-found', '--wait=false', '--grace-period=0', '--force']);
    // What the original leaves after an uninstall without its hooks (its RBAC and SCC were pre-install hooks).
    await cluster.kubectlOk(['delete', ...ORIGINAL_OBJECTS.map(objectRef), '-n', NS, '--ignore-not-found', '--wait=false']);
  }

  it.each(CASES)('$version $target/$ociType: succeeds first time, the RuntimeClass is ours, the old pod stays, nothing of the original is left', async ({ version, target, ociType }) => {
    try {
      await installOriginal(version, target, ociType);
      // What the original created, here: its DaemonSet and RuntimeClass, and its hooks (the SCC for rhel8 only).
      expect(await existing(ORIGINAL_OBJECTS)).toEqual(ORIGINAL_OBJECTS.filter((o) => !o.openshift || target === 'rhel8').map((o) => `${o.kind}/${o.name}`));
      const oldPod = await getJson(['get', 'pod', 'old-wasm', '-n', 'default']);

      const upgrade = await cluster.helm(['upgrade', RELEASE, CHART, '-n', NS, '--timeout', '60s']);
      expect({ code: upgrade.code, stderr: upgrade.stderr }).toEqual({ code: 0, stderr: '' });
      expect(await releases()).toEqual([expect.objectContaining({ status: 'deployed', revision: '2', chart: 'knawd-deployer-2.0.0' })]);

      const runtimeClass = await getJson(['get', 'runtimeclass', 'crun']);
      expect(runtimeClass.handler).toBe('crun-wasm');
      expect(runtimeClass.scheduling).toEqual({ nodeSelector: { 'knawd.dev/crun-wasm': 'installed' } });
      expect(runtimeClass.metadata.annotations).toMatchObject({ 'meta.helm.sh/release-name': RELEASE });
      expect(runtimeClass.metadata.annotations?.['helm.sh/hook']).toBeUndefined();
      const ds = await getJson(['get', 'daemonset', 'knawd-installer', '-n', NS]);
      const env = Object.fromEntries(ds.spec.template.spec.containers[0].env.filter((e: any) => e.value !== undefined).map((e: any) => [e.name, e.value]));
      // The values given to the original are the ones the new release runs with.
      expect(env).toMatchObject({ VENDOR: target, OCI_TYPE: ociType, KNAWD_HANDLER: 'crun-wasm' });
      expect(ds.spec.template.spec.containers[0].image).toBe(`quay.io/knawd/deployer:v2.0.0-${ociType}`);

      expect(await existing(ORIGINAL_OBJECTS.filter((x) => x.kind !== 'RuntimeClass'))).toEqual([]);
      const hooks = await cluster.kubectlOk(['get', 'runtimeclass,serviceaccount,role,rolebinding,clusterrole,clusterrolebinding,securitycontextconstraints', '-A', '-l', 'app.kubernetes.io/component=upgrade-from-1x', '-o', 'name']);
      expect(hooks.trim()).toBe('');
      // The pod that ran under the original's handler is untouched: same object, same RuntimeClass name.
      const pod = await getJson(['get', 'pod', 'old-wasm', '-n', 'default']);
      expect({ uid: pod.metadata.uid, runtimeClassName: pod.spec.runtimeClassName, nodeName: pod.spec.nodeName }).toEqual({ uid: oldPod.metadata.uid, runtimeClassName: 'crun', nodeName: 'wasm-node-1' });

      // A later upgrade finds our RuntimeClass: no hook, the object stays as it is.
      await cluster.helmOk(['upgrade', RELEASE, CHART, '-n', NS, '--timeout', '60s']);
      expect((await getJson(['get', 'runtimeclass', 'crun'])).metadata.uid).toBe(runtimeClass.metadata.uid);
      expect(await releases()).toEqual([expect.objectContaining({ status: 'deployed', revision: '3' })]);
    } finally {
      await cleanUp();
    }
  });

  it('--reuse-values from a 1.x release (Helm then renders with the 1.x chart\'s defaults) is refused with one line, nothing changed', async () => {
    try {
      await installOriginal('v1.3.0', 'ubuntu_20_04', 'crun-wasmtime');
      const upgrade = await cluster.helm(['upgrade', RELEASE, CHART, '-n', NS, '--reuse-values', '--timeout', '60s']);
      expect(upgrade.code).not.toBe(0);
      expect(upgrade.stderr.trim().split('\n')).toEqual([expect.stringMatching(/^Error: UPGRADE FAILED: execution error at \(knawd-deployer\/templates\/tests\/reuse-values-guard\.yaml:\d+:\d+\): this chart's own values are missing: helm upgrade --reuse-values from a release of the original knawd-deployer \(1\.x\)/)]);
      expect(await releases()).toEqual([expect.objectContaining({ status: 'deployed', revision: '1' })]);
      expect((await getJson(['get', 'runtimeclass', 'crun'])).handler).toBe('crun');
    } finally {
      await cleanUp();
    }
  });

  it("what Helm 3.22 does without the chart's pre-upgrade hook: the immutable handler fails the upgrade, --force too (why the hook exists)", async () => {
    const chart = path.join(tempDir('knawd-chart-'), 'knawd-deployer');
    fs.cpSync(CHART, chart, { recursive: true });
    fs.rmSync(path.join(chart, 'templates', 'upgrade-from-1x.yaml'));
    try {
      await installOriginal('v1.3.0', 'ubuntu_20_04', 'crun-wasmtime');
      for (const force of [[], ['--force']]) {
        const upgrade = await cluster.helm(['upgrade', RELEASE, chart, '-n', NS, ...force, '--timeout', '60s']);
        expect(upgrade.code).not.toBe(0);
        // The value in the message is the one sent up to 1.32 ("crun-wasm"), null from 1.37.
        expect(upgrade.stderr).toMatch(/RuntimeClass\.node\.k8s\.io "crun" is invalid: handler: Invalid value: (null|"crun-wasm"): field is immutable/);
      }
      expect((await getJson(['get', 'runtimeclass', 'crun'])).handler).toBe('crun');
      expect((await releases())[0].status).toBe('failed');
    } finally {
      await cleanUp();
    }
  });

  it("raw manifests: the commands the upgrade page (docs/upgrading.md) gives replace the original (applied from helm template) by ours", async () => {
    const page = fs.readFileSync(path.join(REPO, 'docs', 'upgrading.md'), 'utf8');
    const section = page.slice(page.indexOf('With raw manifests (the original applied from `helm template`)'));
    const start = section.indexOf('```sh\n') + 6;
    const block = section.slice(start, section.indexOf('\n```', start));
    const [target, ociType] = ['rhel8', 'crun-wasmedge'];
    const commands = block
      .split('\n')
      .map((line) => line.replace(/\s+#.*$/, '').trim())
      .filter((line) => line !== '')
      .map((line) => line.replace(/<namespace>/g, NS).replace(/<target>/g, target).replace(/<ociType>/g, ociType).replace(' dist/', ` ${REPO}/dist/`).split(/\s+/));
    expect(commands.map((c) => c.slice(0, 3).join(' '))).toEqual([
      `kubectl -n ${NS}`, 'kubectl delete runtimeclass', `kubectl -n ${NS}`, 'kubectl delete clusterrole/knawd-cluster-role', 'kubectl delete securitycontextconstraints', `kubectl -n ${NS}`, 'kubectl apply --server-side',
    ]);
    // What a working raw install of the original applied: everything but its test pod and its remover (a
    // pre-delete hook, which would have undone the install at once).
    const rendered = (await cluster.helmOk(['template', RELEASE, ORIGINAL_CHARTS['v1.3.0'], '-n', NS, '--skip-tests', '--set', `target=${target}`, '--set', `ociType=${ociType}`]))
      .split(/^---$/m)
      .filter((doc) => !doc.includes('name: knawd-deployer-remove-daemonset'))
      .join('---');
    await cluster.kubectlOk(['apply', '-n', NS, '-f', '-'], { input: rendered });
    expect((await getJson(['get', 'runtimeclass', 'crun'])).handler).toBe('crun');
    try {
      for (const command of commands) await cluster.kubectlOk(command.slice(1));
      expect((await getJson(['get', 'runtimeclass', 'crun'])).handler).toBe('crun-wasm');
      expect(await existing(ORIGINAL_OBJECTS.filter((x) => x.kind !== 'RuntimeClass'))).toEqual([]);
      expect((await cluster.kubectlOk(['get', 'daemonset', 'knawd-installer', '-n', NS, '-o', 'name'])).trim()).toBe('daemonset.apps/knawd-installer');
    } finally {
      await deleteExceptNamespaces(cluster, manifestPath(target, ociType));
      await cleanUp();
    }
  });
});
