import { allVariants, INSTALLED_LABEL, KNATIVE_FEATURE, OPENSHIFT_TARGETS, TargetName, RuntimeName } from '../../lib/catalog';
import { installObjects, uninstallObjects } from '../../lib/render/manifests';
import { validateObject } from '../support/k8s-schema';
import { byKind, one, podSpecs } from '../support/objects';

const variants = allVariants().map((v) => [v.target.name as TargetName, v.runtime.name as RuntimeName] as const);

describe.each(variants)('%s / %s', (target, ociType) => {
  const install = installObjects({ target, ociType });
  const uninstall = uninstallObjects({ target, ociType });
  const openshift = OPENSHIFT_TARGETS.includes(target);

  test('every object is valid against its schema', () => {
    expect([...install, ...uninstall].flatMap(validateObject)).toEqual([]);
  });

  test('the installer pod is privileged, shares the host PID namespace and mounts the host root', () => {
    const ds = one(install, 'DaemonSet', 'knawd-installer');
    const pod = ds.spec.template.spec;
    expect(pod.hostPID).toBe(true);
    expect(pod.containers[0].securityContext).toMatchObject({ privileged: true, allowPrivilegeEscalation: true, runAsUser: 0 });
    expect(pod.volumes).toEqual([{ name: 'node-root', hostPath: { path: '/', type: '' } }]);
    expect(pod.containers[0].volumeMounts).toEqual([{ name: 'node-root', mountPath: '/mnt/node-root' }]);
    expect(pod.tolerations).toEqual([{ operator: 'Exists' }]);
    expect(pod.priorityClassName).toBe('system-node-critical');
    expect(pod.containers[0].resources).toEqual({
      requests: { cpu: '100m', memory: '128Mi' },
      limits: { cpu: '100m', memory: '128Mi' },
    });
    const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toEqual({
      VENDOR: target,
      OCI_TYPE: ociType,
      NODE_ROOT: '/mnt/node-root',
      AUTO_RESTART: 'true',
      LOG_LEVEL: 'info',
      PATCH_KNATIVE: 'true',
      KNAWD_PREFIX: '/opt/knawd',
      KNAWD_HANDLER: 'crun-wasm',
      NODE_NAME: { fieldRef: { fieldPath: 'spec.nodeName' } },
    });
    expect(pod.containers[0].args).toEqual(['install', '--stay']);
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

  test('RBAC is exactly: nodes get/list/patch, node events create/list in default, config-features get/patch, and SCC use on OpenShift', () => {
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
        kind: 'ClusterRole',
        name: 'knawd-installer-knative-features',
        rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [KNATIVE_FEATURE.configMap], verbs: ['get', 'patch'] }],
      },
      {
        kind: 'Role',
        name: 'knawd-installer-node-events',
        rules: [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'list'] }],
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
    // Bound only in Knative's namespace: a cluster-wide binding would cover config-features everywhere.
    expect(byKind(install, 'ClusterRoleBinding').map((b) => b.metadata.name)).toEqual(['knawd-installer-nodes']);
    expect(one(install, 'RoleBinding', 'knawd-installer-knative-features')).toMatchObject({
      metadata: { namespace: 'knative-serving' },
      roleRef: { kind: 'ClusterRole', name: 'knawd-installer-knative-features' },
      subjects: [{ kind: 'ServiceAccount', name: 'knawd-installer', namespace: 'knawd' }],
    });
    const verbs = rules.flatMap((r) => r.rules.flatMap((x: any) => x.verbs));
    expect(verbs).not.toContain('delete');
    expect(rules.flatMap((r) => r.rules.flatMap((x: any) => x.resources))).not.toContain('secrets');
  });

  test('the SCC exists exactly on OpenShift targets and allows what the pod needs', () => {
    const sccs = byKind(install, 'SecurityContextConstraints');
    expect(sccs.length).toBe(openshift ? 1 : 0);
    if (openshift) {
      expect(sccs[0]).toMatchObject({ allowPrivilegedContainer: true, allowHostPID: true, allowHostDirVolumePlugin: true, priority: 0 });
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
    expect(remover.spec.template.spec.containers[0].args).toEqual(['remove', '--stay']);
    expect(remover.spec.template.spec.tolerations).toEqual([{ operator: 'Exists' }]);
    const job = one(uninstall, 'Job', 'knawd-uninstall-wait');
    const container = job.spec.template.spec.containers[0];
    expect(container.args).toEqual(['wait-removed', '--timeout-seconds', '240', '--label', 'knawd.dev/crun-wasm-host=changed']);
    expect(job.spec.backoffLimit).toBe(0);
    expect(job.spec.activeDeadlineSeconds).toBeGreaterThan(240);
    expect(job.spec.template.spec.serviceAccountName).toBe('knawd-installer');
    expect(container.securityContext.privileged).toBeUndefined();
  });

  test('names and labels follow app.kubernetes.io conventions', () => {
    for (const o of [...install, ...uninstall]) {
      expect(o.metadata.labels).toMatchObject({ 'app.kubernetes.io/name': 'knawd-deployer', 'app.kubernetes.io/part-of': 'knawd-deployer' });
    }
  });
});

test('patchKnative=false drops the Knative RBAC and tells the installer', () => {
  const objects = installObjects({ target: 'ubuntu_22_04', ociType: 'crun-wasmtime', patchKnative: false });
  expect(objects.filter((o) => o.metadata.name === 'knawd-installer-knative-features')).toEqual([]);
  const env = one(objects, 'DaemonSet').spec.template.spec.containers[0].env;
  expect(env).toContainEqual({ name: 'PATCH_KNATIVE', value: 'false' });
});

test('props reach the objects', () => {
  const objects = installObjects({
    target: 'k3s',
    ociType: 'crun-wasmtime',
    namespace: 'wasm-system',
    image: { repository: 'registry.example/knawd', digest: `sha256:${'a'.repeat(64)}`, pullPolicy: 'Always' },
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
  expect(pod.containers[0].imagePullPolicy).toBe('Always');
  expect(pod.nodeSelector).toEqual({ 'kubernetes.io/arch': 'amd64' });
  expect(pod.tolerations).toEqual([{ key: 'dedicated', operator: 'Equal', value: 'wasm', effect: 'NoSchedule' }]);
  expect(pod.containers[0].resources).toEqual({ requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } });
  expect(pod.priorityClassName).toBe('system-cluster-critical');
  expect(pod.imagePullSecrets).toEqual([{ name: 'pull' }]);
  expect(ds.spec.updateStrategy).toEqual({ type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%' } });
  const env = Object.fromEntries(pod.containers[0].env.map((e: any) => [e.name, e.value]));
  expect(env).toMatchObject({ AUTO_RESTART: 'false', LOG_LEVEL: 'debug', KNAWD_PREFIX: '/var/opt/knawd', KNAWD_HANDLER: 'knawd-wasm' });
  expect(one(objects, 'RuntimeClass')).toMatchObject({ metadata: { name: 'wasm' }, handler: 'knawd-wasm' });
  expect(one(objects, 'ClusterRoleBinding', 'knawd-installer-nodes').subjects[0].namespace).toBe('wasm-system');
  expect(objects.flatMap(validateObject)).toEqual([]);
});

test('the offline schema check rejects what the API server would', () => {
  const [scc] = byKind(installObjects({ target: 'rhel8' }), 'SecurityContextConstraints');
  const { priority: _dropped, ...withoutPriority } = scc;
  expect(validateObject(withoutPriority).join()).toMatch(/priority/);
  const ds = one(installObjects({ target: 'rhel8' }), 'DaemonSet');
  ds.spec.template.spec.hostPID = 'yes';
  expect(validateObject(ds).join()).toMatch(/hostPID/);
});
