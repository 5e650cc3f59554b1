import { INSTALLED_LABEL, KNATIVE_DEPLOYMENT, KNATIVE_FEATURE, OPENSHIFT_TARGETS, TargetName } from '../../lib/catalog';
import { installObjects, knativeObjects, manifestVariants, uninstallObjects } from '../../lib/render/manifests';
import { DEFAULT_RESOURCES } from '../../lib/constructs/settings';
import { KnawdDeployerProps } from '../../lib/constructs/props';
import { validateObject } from '../support/k8s-schema';
import { byKind, one, podSpecs } from '../support/objects';

// Every raw manifest pair: each shipped (target, ociType), and auto with and without the SCC.
const variants = manifestVariants().map((v) => [v.dir, v.props] as const);

describe.each(variants)('%s / %j', (_dir, props) => {
  const { target, ociType } = props;
  const install = installObjects(props);
  const uninstall = uninstallObjects(props);
  const openshift = props.openshift ?? OPENSHIFT_TARGETS.includes(target as TargetName);

  test('every object is valid against its schema', () => {
    expect([...install, ...uninstall].flatMap(validateObject)).toEqual([]);
  });

  test('the installer pod is privileged, shares the host PID namespace and mounts the host root', () => {
    const ds = one(install, 'DaemonSet', 'knawd-installer');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(true);
    expect(pod.containers[0].securityContext).toMatchObject({ privileged: true, allowPrivilegeEscalation: true, runAsUser: 0, readOnlyRootFilesystem: true });
    // The host's root, and the readiness marker's own small tmpfs.
    expect(pod.volumes).toEqual([
      { name: 'node-root', hostPath: { path: '/', type: '' } },
      { name: 'ready', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    ]);
    expect(pod.containers[0].volumeMounts).toEqual([
      { name: 'node-root', mountPath: '/mnt/node-root' },
      { name: 'ready', mountPath: '/run/knawd' },
    ]);
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.containers[0].resources).toEqual(DEFAULT_RESOURCES);
    const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toEqual({
      VENDOR: target,
      OCI_TYPE: ociType,
      NODE_ROOT: '/mnt/node-root',
      AUTO_RESTART: 'true',
      LOG_LEVEL: 'info',
      PATCH_KNATIVE: 'auto',
      KNAWD_PREFIX: '/opt/knawd',
      KNAWD_HANDLER: 'crun-wasm',
      KNAWD_RUNTIME_CLASS: 'crun',
      KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: '',
      NODE_NAME: { fieldRef: { fieldPath: 'spec.nodeName' } },
      KNAWD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      KNAWD_MAX_CONCURRENT_RESTARTS: '1',
      KNAWD_STARTUP_TAINT: '',
      KNAWD_GRACE_SECONDS: '60',
    });
    // The static agent runs the installer, re-runs it for the drift check, and answers the readiness probe.
    expect(pod.containers[0].command).toEqual(['/usr/local/bin/knawd-agent']);
    expect(pod.containers[0].args).toEqual(['run', '--ready-file', '/run/knawd/ready', '--check-every', '300', '--', 'node', '/usr/local/lib/knawd-installer.js', 'install']);
    expect(pod.containers[0].readinessProbe).toEqual({ exec: { command: ['/usr/local/bin/knawd-agent', 'ready', '/run/knawd/ready'] }, periodSeconds: 10, failureThreshold: 1 });
    // A rollout's SIGTERM mid-install: the agent passes it on; the installer's 60 s to finish its step, and time
    // for its last line.
    expect(pod.terminationGracePeriodSeconds).toBe(75);
  });

  test('the restart budget: one free Lease per slot, the installer may get and update those by name, and list, watch, create and delete Leases (its queue tickets) in its namespace only', () => {
    const leases = byKind(install, 'Lease');
    expect(leases.map((l) => [l.metadata.namespace, l.metadata.name, l.spec])).toEqual([['knawd', 'knawd-restart-0', {}]]);
    const five = installObjects({ target, ociType, maxConcurrentRestarts: 5 });
    expect(byKind(five, 'Lease').map((l) => l.metadata.name)).toEqual(['knawd-restart-0', 'knawd-restart-1', 'knawd-restart-2', 'knawd-restart-3', 'knawd-restart-4']);
    expect(one(five, 'Role', 'knawd-installer-restart-slots').rules[0].resourceNames).toEqual(byKind(five, 'Lease').map((l) => l.metadata.name));
    expect(one(five, 'DaemonSet', 'knawd-installer').spec.template.spec.containers[0].env).toContainEqual({ name: 'KNAWD_MAX_CONCURRENT_RESTARTS', value: '5' });
    expect(one(install, 'RoleBinding', 'knawd-installer-restart-slots').subjects).toEqual([{ kind: 'ServiceAccount', name: 'knawd-installer', namespace: 'knawd' }]);
  });

  test('privileged and hostPID appear only on the node agents', () => {
    const privileged = podSpecs([...install, ...uninstall]).filter(
      ({ spec }) => spec.hostPID || spec.containers.some((c: any) => c.securityContext?.privileged),
    );
    expect(privileged.map(({ owner }) => `${owner.kind}/${owner.metadata.name}`).sort()).toEqual([
      'DaemonSet/knawd-installer',
      'DaemonSet/knawd-remover',
    ]);
  });

  test('RBAC is exactly: nodes get/list/patch, node events create in default, the restart slots get/update by name and the namespace Leases list/watch/create/delete, and SCC use on OpenShift; Knative is not touched by default', () => {
    const rules = [...byKind(install, 'ClusterRole'), ...byKind(install, 'Role')].map((r) => ({
      kind: r.kind,
      name: r.metadata.name,
      rules: r.rules,
    }));
    const expected: any[] = [
      {
        kind: 'ClusterRole',
        name: 'knawd-installer-nodes',
        rules: [
          { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'patch'] },
          { apiGroups: ['node.k8s.io'], resources: ['runtimeclasses'], verbs: ['list'] },
          { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
        ],
      },
      {
        kind: 'Role',
        name: 'knawd-installer-node-events',
        rules: [{ apiGroups: [''], resources: ['events'], verbs: ['create'] }],
      },
      {
        kind: 'Role',
        name: 'knawd-installer-restart-slots',
        rules: [
          { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'update'], resourceNames: ['knawd-restart-0'] },
          { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'watch', 'create', 'delete'] },
        ],
      },
    ];
    if (openshift) {
      expected.push({
        kind: 'Role',
        name: 'knawd-installer-scc',
        rules: [{ apiGroups: ['security.openshift.io'], resources: ['securitycontextconstraints'], resourceNames: ['knawd-installer'], verbs: ['use'] }],
      });
    }
    expect(rules).toEqual(expected);
    expect(byKind(install, 'ClusterRoleBinding').map((b) => b.metadata.name)).toEqual(['knawd-installer-nodes']);
    // patchKnative "auto" (the default): nothing in Knative's namespace, so the manifest applies without Knative.
    expect(install.filter((o) => o.metadata.namespace === KNATIVE_FEATURE.namespace)).toEqual([]);
    // The one delete: the restart queue's tickets, Leases in the installer's own namespace (a Role, not a ClusterRole).
    const deletes = rules.flatMap((r) => r.rules.filter((x: any) => x.verbs.includes('delete')).map((x: any) => [r.kind, x.resources]));
    expect(deletes).toEqual([['Role', ['leases']]]);
    expect(rules.flatMap((r) => r.rules.flatMap((x: any) => x.resources))).not.toContain('secrets');
  });

  test('the SCC exists exactly on OpenShift targets (and for auto where openshift is set) and allows what the pod needs', () => {
    const sccs = byKind(install, 'SecurityContextConstraints');
    expect(sccs.length).toBe(openshift ? 1 : 0);
    if (openshift) {
      expect(sccs[0]).toMatchObject({ allowPrivilegedContainer: true, allowHostPID: true, allowHostDirVolumePlugin: true, priority: 0 });
      // The node's root, the ServiceAccount token and the readiness marker's tmpfs: no other volume type.
      expect(sccs[0].volumes).toEqual(['emptyDir', 'hostPath', 'projected']);
      const binding = one(install, 'RoleBinding', 'knawd-installer-scc');
      expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'knawd-installer', namespace: 'knawd' }]);
    }
  });

  test('the RuntimeClass schedules only onto nodes labelled as installed', () => {
    const rc = one(install, 'RuntimeClass', 'crun');
    expect(rc.handler).toBe('crun-wasm');
    expect(rc.scheduling).toEqual({ nodeSelector: { [INSTALLED_LABEL.key]: INSTALLED_LABEL.value } });
  });

  test('the namespace is labelled for PodSecurity privileged', () => {
    expect(one(install, 'Namespace', 'knawd').metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'privileged',
    });
  });

  test('the uninstall path runs remove on every node and waits until no node carries the host-changed label', () => {
    const remover = one(uninstall, 'DaemonSet', 'knawd-remover');
    expect(remover.spec.template.spec.containers[0].args).toEqual(['remove', '--stay', '--pods-timeout-seconds', '120']);
    expect(remover.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
    const job = one(uninstall, 'Job', 'knawd-uninstall-wait');
    const container = job.spec.template.spec.containers[0];
    expect(container.args).toEqual(['wait-removed', '--timeout-seconds', '240', '--label', 'knawd.dev/crun-wasm-host=changed']);
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(240);
    expect(container.securityContext.privileged).toBeUndefined();
    // Its own identity, which may only watch nodes; a fixed non-root user with its group.
    expect(job.spec.template.spec.serviceAccountName).toBe('knawd-uninstall-wait');
    expect(job.spec.template.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534 });
    expect(one(uninstall, 'ServiceAccount', 'knawd-uninstall-wait').metadata.namespace).toBe('knawd');
    expect(one(uninstall, 'ClusterRole', 'knawd-uninstall-wait').rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }]);
    expect(one(uninstall, 'ClusterRoleBinding', 'knawd-uninstall-wait')).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'knawd-uninstall-wait' },
      subjects: [{ kind: 'ServiceAccount', name: 'knawd-uninstall-wait', namespace: 'knawd' }],
    });
    // On OpenShift it may use the built-in SCCs that admit a fixed non-root user (restricted-v2 would not).
    const scc = byKind(uninstall, 'Role').filter((r) => r.metadata.name.endsWith('-scc')).map((r) => r.rules);
    expect(scc).toEqual(openshift ? [[{ apiGroups: ['security.openshift.io'], resources: ['securitycontextconstraints'], resourceNames: ['nonroot-v2', 'nonroot'], verbs: ['use'] }]] : []);
  });

  test("every pod runs the ociType's own installer image; the DaemonSets go to every architecture the image's index carries, the Job to the built ones", () => {
    const pods = podSpecs([...install, ...uninstall]).map(({ owner, spec }) => ({ owner: `${owner.kind}/${owner.metadata.name}`, spec }));
    expect(pods.map(({ owner }) => owner).sort()).toEqual(['DaemonSet/knawd-installer', 'DaemonSet/knawd-remover', 'Job/knawd-uninstall-wait']);
    for (const { spec } of pods) expect(spec.containers.map((c: any) => c.image)).toEqual([`quay.io/knawd/deployer:v2.0.0-${ociType}`]);
    const arches = (spec: any) => spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms;
    const on = (values: string[]) => [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: 'In', values }] }];
    expect(Object.fromEntries(pods.map(({ owner, spec }) => [owner, arches(spec)]))).toEqual({
      'DaemonSet/knawd-installer': on(['amd64', 'arm64', 's390x', 'ppc64le']),
      'DaemonSet/knawd-remover': on(['amd64', 'arm64', 's390x', 'ppc64le']),
      'Job/knawd-uninstall-wait': on(['amd64', 'arm64']),
    });
  });

  test('runAsGroup is set wherever runAsUser is', () => {
    for (const { owner, spec } of podSpecs([...install, ...uninstall])) {
      for (const ctx of [spec.securityContext, ...spec.containers.map((c: any) => c.securityContext)]) {
        if (ctx?.runAsUser !== undefined) expect({ owner: owner.metadata.name, runAsGroup: ctx.runAsGroup }).toEqual({ owner: owner.metadata.name, runAsGroup: ctx.runAsUser });
      }
    }
  });

  test('names and labels follow app.kubernetes.io conventions', () => {
    for (const o of [...install, ...uninstall]) {
      expect(o.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'knawd-deployer', 'app.kubernetes.io/part-of': 'knawd-deployer' });
    }
  });
});

const envOf = (objects: any[]): Record<string, string> =>
  Object.fromEntries(one(objects, 'DaemonSet').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));

/** The Knative RoleBinding/ClusterRole pairs, by name, with the one rule of each. */
function knativeGrants(objects: any[]): Record<string, { configMaps: string[]; verbs: string[]; boundIn: string }> {
  return Object.fromEntries(
    byKind(objects, 'RoleBinding')
      .filter((b) => b.metadata.namespace === KNATIVE_FEATURE.namespace)
      .map((b) => {
        const role = one(objects, 'ClusterRole', b.roleRef.name);
        expect(role.rules).toHaveLength(1);
        expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: 'knawd-installer', namespace: 'knawd' }]);
        return [b.metadata.name, { configMaps: role.rules[0].resourceNames, verbs: role.rules[0].verbs, boundIn: b.metadata.namespace }];
      }),
  );
}

describe('patchKnative and knative.runtimeClassName', () => {
  const variant = { target: 'ubuntu_22_04', ociType: 'crun-wasmtime' } as const;
  const features = { configMaps: [KNATIVE_FEATURE.configMap], verbs: ['get', 'patch'], boundIn: 'knative-serving' };
  const deployment = { configMaps: [KNATIVE_DEPLOYMENT.configMap], verbs: ['get', 'patch'], boundIn: 'knative-serving' };

  test('"auto" (the default): no Knative RBAC in the deployer; KnawdKnativeAccess carries it, get/patch on exactly config-features', () => {
    const objects = installObjects(variant);
    expect(knativeGrants(objects)).toEqual({});
    expect(envOf(objects)).toMatchObject({ PATCH_KNATIVE: 'auto', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: '' });
    expect(knativeGrants(knativeObjects(variant))).toEqual({ 'knawd-installer-knative-features': features });
  });

  test('true: the deployer carries the Knative RBAC itself, as the original did', () => {
    const objects = installObjects({ ...variant, patchKnative: true });
    expect(knativeGrants(objects)).toEqual({ 'knawd-installer-knative-features': features });
    expect(envOf(objects)).toMatchObject({ PATCH_KNATIVE: 'true' });
  });

  test('false drops the Knative RBAC and tells the installer', () => {
    const objects = installObjects({ ...variant, patchKnative: false });
    expect(knativeGrants(objects)).toEqual({});
    expect(envOf(objects)).toMatchObject({ PATCH_KNATIVE: 'false' });
    expect(() => knativeObjects({ ...variant, patchKnative: false })).toThrow('KnawdKnativeAccess with patchKnative false grants nothing the installer uses');
  });

  test('runtimeClassName adds get/patch on exactly config-deployment and gives the installer the selector', () => {
    const props = { ...variant, patchKnative: true, runtimeClassName: 'wasm', knative: { runtimeClassName: { selector: { 'example.com/wasm': 'yes', app: 'fn' } } } };
    const objects = installObjects(props);
    expect(knativeGrants(objects)).toEqual({ 'knawd-installer-knative-features': features, 'knawd-installer-knative-deployment': deployment });
    expect(envOf(objects)).toMatchObject({ PATCH_KNATIVE: 'true', KNAWD_RUNTIME_CLASS: 'wasm', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: 'app=fn,example.com/wasm=yes' });
    expect(objects.flatMap(validateObject)).toEqual([]);
    // With "auto" the same grants come from KnawdKnativeAccess; the default selector is knawd.dev/wasm=true.
    const auto = { ...variant, knative: { runtimeClassName: {} } };
    expect(knativeGrants(knativeObjects(auto))).toEqual({ 'knawd-installer-knative-features': features, 'knawd-installer-knative-deployment': deployment });
    expect(envOf(installObjects(auto))).toMatchObject({ PATCH_KNATIVE: 'auto', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: 'knawd.dev/wasm=true' });
  });
});

test('props reach the objects', () => {
  const objects = installObjects({
    target: 'k3s',
    ociType: 'crun-wasmtime',
    namespace: 'wasm-system',
    image: { repository: 'registry.example/knawd', digests: { 'crun-wasmtime': `sha256:${'a'.repeat(64)}`, 'crun-wasmedge': `sha256:${'b'.repeat(64)}` }, pullPolicy: 'Always' },
    nodeSelector: { 'kubernetes.io/arch': 'amd64' },
    tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'wasm', effect: 'NoSchedule' }],
    resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
    priorityClassName: 'system-cluster-critical',
    imagePullSecrets: ['pull'],
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%' } },
    runtimeClassName: 'wasm',
    handler: 'knawd-wasm',
    autoRestart: false,
    logLevel: 'debug',
    hostPrefix: '/var/opt/knawd',
    createNamespace: false,
  });
  expect(byKind(objects, 'Namespace')).toEqual([]);
  const ds = one(objects, 'DaemonSet');
  const pod = ds.spec.template.spec;
  expect(ds.metadata.namespace).toBe('wasm-system');
  expect(pod.containers[0].image).toBe(`registry.example/knawd@sha256:${'a'.repeat(64)}`);
  // An ociType without a digest takes its tag; a reference wins over everything.
  const image = (p: KnawdDeployerProps) => one(installObjects(p), 'DaemonSet').spec.template.spec.containers[0].image;
  expect(image({ ociType: 'crun-wasm-nodejs', image: { repository: 'registry.example/knawd', tag: 'v2.1.0', digests: { 'crun-wasmtime': `sha256:${'a'.repeat(64)}` } } })).toBe('registry.example/knawd:v2.1.0-crun-wasm-nodejs');
  expect(image({ ociType: 'crun-wasmtime', image: { reference: 'mirror.example/any:thing', digests: { 'crun-wasmtime': `sha256:${'a'.repeat(64)}` } } })).toBe('mirror.example/any:thing');
  expect(pod.containers[0].imagePullPolicy).toBe('Always');
  expect(pod.nodeSelector).toEqual({ 'kubernetes.io/arch': 'amd64' });
  expect(pod.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'wasm', effect: 'NoSchedule' }]);
  expect(pod.containers[0].resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
  expect(pod.priorityClassName).toBe('system-cluster-critical');
  expect(pod.imagePullSecrets).toEqual([{ name: 'pull' }]);
  expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%' } });
  const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value]));
  expect(env).toMatchObject({ AUTO_RESTART: 'false', LOG_LEVEL: 'debug', KNAWD_PREFIX: '/var/opt/knawd', KNAWD_HANDLER: 'knawd-wasm', KNAWD_RUNTIME_CLASS: 'wasm' });
  expect(one(objects, 'RuntimeClass')).toMatchObject({ metadata: { name: 'wasm' }, handler: 'knawd-wasm' });
  expect(one(objects, 'ClusterRoleBinding', 'knawd-installer-nodes').subjects[0].namespace).toBe('wasm-system');
  expect(objects.flatMap(validateObject)).toEqual([]);
});

test('target auto: the installer is told auto; the SCC parts only with openshift: true, which also adds them to any target', () => {
  const env = (objects: any[]) => Object.fromEntries(one(objects, 'DaemonSet').spec.template.spec.containers[0].env.map((e: any) => [e.name, e.value]));
  expect(env(installObjects({}))).toMatchObject({ VENDOR: 'auto', OCI_TYPE: 'crun-wasmedge' });
  expect(env(uninstallObjects({ target: 'auto' }))).toMatchObject({ VENDOR: 'auto' });
  const sccParts = (objects: any[]) => objects.filter((o) => o.kind === 'SecurityContextConstraints' || /-scc$/.test(o.metadata.name)).map((o) => `${o.kind}/${o.metadata.name}`).sort();
  expect(sccParts(installObjects({ target: 'auto' }))).toEqual([]);
  expect(sccParts(installObjects({ target: 'auto', openshift: true }))).toEqual(['Role/knawd-installer-scc', 'RoleBinding/knawd-installer-scc', 'SecurityContextConstraints/knawd-installer']);
  expect(sccParts(uninstallObjects({ target: 'auto', openshift: true }))).toEqual(['Role/knawd-uninstall-wait-scc', 'RoleBinding/knawd-uninstall-wait-scc']);
  expect(sccParts(installObjects({ target: 'crio', openshift: true }))).toHaveLength(3);
  expect(sccParts(installObjects({ target: 'rhel8', openshift: false }))).toEqual([]);
});

test('uninstallPodsTimeoutSeconds bounds the remover\'s wait for pods, and the wait Job always waits longer than the remover', () => {
  for (const seconds of [1, 5, 3600]) {
    const objects = uninstallObjects({ uninstallPodsTimeoutSeconds: seconds });
    expect(one(objects, 'DaemonSet', 'knawd-remover').spec.template.spec.containers[0].args).toEqual(['remove', '--stay', '--pods-timeout-seconds', String(seconds)]);
    const job = one(objects, 'Job', 'knawd-uninstall-wait');
    const args: string[] = job.spec.template.spec.containers[0].args;
    const wait = Number(args[args.indexOf('--timeout-seconds') + 1]);
    expect(wait).toBe(seconds + 120);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(wait);
    expect(objects.flatMap(validateObject)).toEqual([]);
  }
});

test('the offline schema check rejects what the API server would', () => {
  const [scc] = byKind(installObjects({ target: 'rhel8' }), 'SecurityContextConstraints');
  const { priority: _dropped, ...withoutPriority } = scc;
  expect(validateObject(withoutPriority).join()).toMatch(/priority/);
  const ds = one(installObjects({ target: 'rhel8' }), 'DaemonSet');
  ds.spec.template.spec.hostPID = 'yes';
  expect(validateObject(ds).join()).toMatch(/hostPID/);
});
