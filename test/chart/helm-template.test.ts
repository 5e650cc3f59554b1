import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { KNATIVE_SERVING_API, OPENSHIFT_SECURITY_API, WASM_TEST_IMAGE } from '../../lib/catalog';
import { KnawdDeployerProps } from '../../lib/constructs';
import { installObjects, manifestVariants, uninstallObjects } from '../../lib/render/manifests';
import { REPO, run, toolPath } from '../support/tools';

const CHART = join(REPO, 'dist', 'charts', 'knawd-deployer');
const BOOKKEEPING_LABELS = ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance', 'app.kubernetes.io/version'];

function helm(args: string[]): string {
  const result = run(toolPath('helm'), args);
  if (result.code !== 0) throw new Error(`helm ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

function parse(yamlText: string): any[] {
  return parseAllDocuments(yamlText).map((d) => d.toJS()).filter((o) => o);
}

/** Objects without Helm's bookkeeping labels, sorted so order does not matter. */
function comparable(objects: any[]): any[] {
  return objects
    .map((o) => {
      const copy = structuredClone(o);
      for (const l of BOOKKEEPING_LABELS) delete copy.metadata.labels?.[l];
      return copy;
    })
    .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
}

function isHook(o: any): boolean {
  return Boolean(o.metadata.annotations?.['helm.sh/hook']);
}

function template(sets: string[]): any[] {
  return parse(helm(['template', 'knawd', CHART, '--namespace', 'knawd', ...sets]));
}

// auto-openshift/ is what the chart renders with target auto on a cluster that serves the SCC API (OpenShift).
const variants = manifestVariants().map((v) => [v.dir, v.props.target, v.props.ociType, v.props.openshift ? ['--api-versions', OPENSHIFT_SECURITY_API] : []] as const);

describe('helm template yields exactly the objects of dist/manifests (no Knative: patchKnative auto renders none of it)', () => {
  test.each(variants)('%s / %s / %s %j', (dir, target, ociType, cluster) => {
    const rendered = template(['--set', `target=${target}`, '--set', `ociType=${ociType}`, ...cluster]);
    const dist = parse(readFileSync(join(REPO, 'dist', 'manifests', dir, `${ociType}.yaml`), 'utf8')).filter((o) => o.kind !== 'Namespace');
    expect(comparable(rendered.filter((o) => !isHook(o)))).toEqual(comparable(dist));

    const hooks = rendered.filter(isHook);
    const distUninstall = parse(readFileSync(join(REPO, 'dist', 'manifests', dir, `${ociType}.uninstall.yaml`), 'utf8'));
    const preDelete = hooks.filter((o) => o.metadata.annotations['helm.sh/hook'] === 'pre-delete');
    const withoutHookAnnotations = preDelete.map((o) => {
      const copy = structuredClone(o);
      delete copy.metadata.annotations;
      return copy;
    });
    expect(comparable(withoutHookAnnotations)).toEqual(comparable(distUninstall));
  });
});

describe('non-default values render the same objects as the constructs given the same props', () => {
  const cases: [string, string[], KnawdDeployerProps][] = [
    ['custom tag', ['--set', 'tag=v9.9.9'], { image: { tag: 'v9.9.9' } }],
    [
      'nodeSelector',
      ['--set-json', 'nodeSelector={"kubernetes.io/arch":"arm64","pool":"wasm"}'],
      { nodeSelector: { 'kubernetes.io/arch': 'arm64', pool: 'wasm' } },
    ],
    ['patchKnative=false', ['--set', 'patchKnative=false'], { patchKnative: false }],
    ['patchKnative=true', ['--set', 'patchKnative=true'], { patchKnative: true }],
    // "auto" on a cluster that serves Knative Serving wires it up: what true does.
    ['patchKnative=auto where Knative Serving is served', ['--api-versions', KNATIVE_SERVING_API], { patchKnative: true }],
    ['patchKnative=false where Knative Serving is served', ['--api-versions', KNATIVE_SERVING_API, '--set', 'patchKnative=false'], { patchKnative: false }],
    [
      'knative.runtimeClassName where Knative Serving is served',
      ['--api-versions', KNATIVE_SERVING_API, '--set', 'knative.runtimeClassName.enabled=true', '--set', 'runtimeClass.name=wasm'],
      { patchKnative: true, runtimeClassName: 'wasm', knative: { runtimeClassName: {} } },
    ],
    [
      'knative.runtimeClassName with its own selector (--set true is the label value "true")',
      ['--set', 'patchKnative=true', '--set', 'knative.runtimeClassName.enabled=true', '--set', 'knative.runtimeClassName.selector.app=fn', '--set', 'knative.runtimeClassName.selector.example\\.com/wasm=true'],
      { patchKnative: true, knative: { runtimeClassName: { selector: { 'knawd.dev/wasm': 'true', app: 'fn', 'example.com/wasm': 'true' } } } },
    ],
    ['nodeRestrictionPolicy=auto where the cluster serves ValidatingAdmissionPolicy', ['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy'], { nodeRestrictionPolicy: true }],
    ['nodeRestrictionPolicy=true', ['--set', 'nodeRestrictionPolicy=true'], { nodeRestrictionPolicy: true }],
    ['nodeRestrictionPolicy=false where the cluster serves it', ['--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy', '--set', 'nodeRestrictionPolicy=false'], { nodeRestrictionPolicy: false }],
    [
      'knative.runtimeClassName without Knative Serving: only the installer learns the selector',
      ['--set', 'knative.runtimeClassName.enabled=true'],
      { knative: { runtimeClassName: {} } },
    ],
    ['autoRestart=false', ['--set', 'autoRestart=false'], { autoRestart: false }],
    ['maxConcurrentRestarts=5: five Leases, the Role names each', ['--set', 'maxConcurrentRestarts=5'], { maxConcurrentRestarts: 5 }],
    ['driftCheckSeconds=60', ['--set', 'driftCheckSeconds=60'], { driftCheckSeconds: 60 }],
    ['driftCheckSeconds=0 (never)', ['--set', 'driftCheckSeconds=0'], { driftCheckSeconds: 0 }],
    ['uninstallPodsTimeoutSeconds=5: the remover and the wait Job both follow it', ['--set', 'uninstallPodsTimeoutSeconds=5'], { uninstallPodsTimeoutSeconds: 5 }],
    [
      'startupTaint, with the node-restriction policy that lets exactly it go',
      ['--set', 'startupTaint.key=karpenter.example/wasm-not-ready', '--set', 'startupTaint.effect=NoExecute', '--set', 'nodeRestrictionPolicy=true'],
      { startupTaint: { key: 'karpenter.example/wasm-not-ready', effect: 'NoExecute' }, nodeRestrictionPolicy: true },
    ],
    [
      'everything else',
      [
        '--set', 'target=k3s', '--set', 'ociType=crun-wasmtime', '--set', 'image.repository=registry.example/knawd',
        '--set', `image.digests.crun-wasmtime=sha256:${'b'.repeat(64)}`, '--set', `image.digests.crun-wasmedge=sha256:${'c'.repeat(64)}`, '--set', 'image.pullPolicy=Always', '--set', 'logLevel=debug',
        '--set-json', 'imagePullSecrets=["pull-a","pull-b"]', '--set-json', 'tolerations=[]',
        '--set-json', 'resources={"requests":{"cpu":"50m","memory":null},"limits":{"cpu":null,"memory":"256Mi"}}', '--set', 'priorityClassName=high',
        '--set-json', 'updateStrategy={"type":"OnDelete","rollingUpdate":null}', '--set', 'runtimeClass.name=wasm', '--set', 'runtimeClass.handler=knawd-wasm',
        '--set', 'hostPrefix=/var/opt/knawd',
      ],
      {
        target: 'k3s', ociType: 'crun-wasmtime', image: { repository: 'registry.example/knawd', digests: { 'crun-wasmtime': `sha256:${'b'.repeat(64)}`, 'crun-wasmedge': `sha256:${'c'.repeat(64)}` }, pullPolicy: 'Always' },
        logLevel: 'debug', imagePullSecrets: ['pull-a', 'pull-b'], tolerations: [], resources: { requests: { cpu: '50m' }, limits: { memory: '256Mi' } },
        priorityClassName: 'high', updateStrategy: { type: 'OnDelete' }, runtimeClassName: 'wasm', handler: 'knawd-wasm', hostPrefix: '/var/opt/knawd',
      },
    ],
  ];
  // Helm merges user maps into the defaults: keys of a default map are removed by setting them to null.
  test.each(cases)('%s', (_name, sets, props) => {
    const rendered = template(sets);
    const full: KnawdDeployerProps = { target: 'auto', ociType: 'crun-wasmedge', ...props, createNamespace: false };
    // An empty list renders as nothing in the chart and as [] from the constructs; both mean "none".
    const normalise = (objs: any[]) => comparable(objs).map((o) => JSON.parse(JSON.stringify(o, (_k, v) => (Array.isArray(v) && v.length === 0 ? undefined : v))));
    expect(normalise(rendered.filter((o) => !isHook(o)))).toEqual(normalise(installObjects(full)));
    const preDelete = rendered.filter((o) => o.metadata.annotations?.['helm.sh/hook'] === 'pre-delete').map((o) => {
      delete o.metadata.annotations;
      return o;
    });
    expect(normalise(preDelete)).toEqual(normalise(uninstallObjects(full)));
  });
});

test('the uninstall hooks: remover first, then the Job Helm waits for; deleted only after success', () => {
  // On OpenShift (target auto, the default, renders the SCC parts there), with the wait Job's SCC Role.
  const hooks = template(['--api-versions', OPENSHIFT_SECURITY_API]).filter(isHook);
  expect(template([]).filter(isHook).map((o) => `${o.kind}/${o.metadata.name}`)).not.toContain('Role/knawd-uninstall-wait-scc');
  const annotations = Object.fromEntries(hooks.map((o) => [`${o.kind}/${o.metadata.name}`, o.metadata.annotations]));
  const preDelete = (weight: string) => ({ 'helm.sh/hook': 'pre-delete', 'helm.sh/hook-weight': weight, 'helm.sh/hook-delete-policy': 'before-hook-creation,hook-succeeded' });
  expect(annotations).toEqual({
    'ServiceAccount/knawd-uninstall-wait': preDelete('-1'),
    'ClusterRole/knawd-uninstall-wait': preDelete('-1'),
    'ClusterRoleBinding/knawd-uninstall-wait': preDelete('-1'),
    'Role/knawd-uninstall-wait-node-events': preDelete('-1'),
    'RoleBinding/knawd-uninstall-wait-node-events': preDelete('-1'),
    'Role/knawd-uninstall-wait-scc': preDelete('-1'),
    'RoleBinding/knawd-uninstall-wait-scc': preDelete('-1'),
    'DaemonSet/knawd-remover': preDelete('0'),
    'Job/knawd-uninstall-wait': preDelete('1'),
    'Pod/knawd-wasm-test': { 'helm.sh/hook': 'test', 'helm.sh/hook-delete-policy': 'before-hook-creation' },
  });
  const testPod = hooks.find((o) => o.kind === 'Pod');
  expect(testPod.spec.runtimeClassName).toBe('crun');
  expect(testPod.spec.containers[0].image).toBe(WASM_TEST_IMAGE);
  expect(template(['--set', 'test.image=registry.example/wasi:1']).find((o) => o.kind === 'Pod').spec.containers[0].image).toBe('registry.example/wasi:1');
});

test('target auto is the default: the installer detects each node; the SCC comes where the cluster serves its API, for auto and the OpenShift targets only', () => {
  const env = (objects: any[]) => Object.fromEntries(objects.find((o) => o.kind === 'DaemonSet' && o.metadata.name === 'knawd-installer').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
  const sccs = (sets: string[]) => template(sets).filter((o) => o.kind === 'SecurityContextConstraints').length;
  expect(env(template([]))).toMatchObject({ VENDOR: 'auto', OCI_TYPE: 'crun-wasmedge' });
  expect([sccs([]), sccs(['--api-versions', OPENSHIFT_SECURITY_API])]).toEqual([0, 1]);
  expect([sccs(['--set', 'target=rhel8']), sccs(['--set', 'target=crio', '--api-versions', OPENSHIFT_SECURITY_API])]).toEqual([1, 0]);
});

test("the original chart's values file works, except its tag: the 1.x image is refused with one line", () => {
  const original = join(__dirname, '..', 'fixtures', 'chart', 'original-values.yaml');
  const refused = run(toolPath('helm'), ['template', 'knawd', CHART, '--namespace', 'knawd', '-f', original]);
  expect(refused.code).not.toBe(0);
  expect(refused.stderr.split('\n')[0]).toMatch(/tag v1\.2\.0 names an image of the original knawd-deployer \(1\.x\).*drop tag from your values/);
  const rendered = parse(helm(['template', 'knawd', CHART, '--namespace', 'knawd', '-f', original, '--set', 'tag=v2.0.0']));
  const ds = rendered.find((o) => o.kind === 'DaemonSet' && o.metadata.name === 'knawd-installer');
  expect(ds.spec.template.spec.containers[0].image).toBe('quay.io/knawd/deployer:v2.0.0-crun-wasmedge');
  expect(rendered.some((o) => o.kind === 'SecurityContextConstraints')).toBe(true);
  // Another repository's 1.x tag is the user's own image: left alone.
  const mirrored = parse(helm(['template', 'knawd', CHART, '--namespace', 'knawd', '-f', original, '--set', 'image.repository=registry.example/knawd']));
  expect(mirrored.find((o) => o.kind === 'DaemonSet' && o.metadata.name === 'knawd-installer').spec.template.spec.containers[0].image).toBe('registry.example/knawd:v1.2.0-crun-wasmedge');
});

test('without a cluster to look at, the upgrade-from-1x template renders no hook', () => {
  expect(template([]).filter((o) => o.metadata.labels?.['app.kubernetes.io/component'] === 'upgrade-from-1x')).toEqual([]);
});
