/**
 * What the original knawd-deployer (1.x: chart v1.2.0 / v1.3.0, image quay.io/knawd/deployer:v1.x) leaves on a
 * cluster and on its nodes, as its chart templates and its Rust manager write them. The upgrade path (the
 * chart's upgrade hooks, the installer's take-over, the upgrade docs) recognises them by these exact shapes.
 */

/** The original's RuntimeClass: same name as ours, handler `crun` (immutable: the upgrade replaces the object). */
export const ORIGINAL_RUNTIME_CLASS = { name: 'crun', handler: 'crun' } as const;

/** The CRI handler the original's manager registers on every node. */
export const ORIGINAL_HANDLER = 'crun';

/**
 * The original chart's objects. `release`: part of the Helm release (Helm deletes or replaces them on upgrade);
 * the others were `pre-install` hooks, which Helm never tracks: they stay on the cluster after an upgrade or an
 * uninstall unless someone deletes them. `description` is the `kubernetes.io/description` annotation the
 * original gave each hook object: how the upgrade hook tells the original's object from someone else's of the
 * same name. `namespaced`: in the release namespace.
 */
export interface OriginalObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly namespaced: boolean;
  readonly release: boolean;
  readonly description?: string;
  /** Rendered only for the OpenShift targets (rhel8). */
  readonly openshift?: boolean;
  /** Rendered only with patchKnative true. */
  readonly knative?: boolean;
}

export const ORIGINAL_OBJECTS: readonly OriginalObject[] = [
  { apiVersion: 'apps/v1', kind: 'DaemonSet', name: 'knawd-deployer-daemonset', namespaced: true, release: true },
  { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', name: 'crun', namespaced: false, release: true },
  { apiVersion: 'v1', kind: 'ServiceAccount', name: 'knawd-deployer-sa', namespaced: true, release: false, description: 'Service Account for RBAC definitions' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', name: 'knawd-deployer-role', namespaced: true, release: false, description: 'Role for configuring node' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', name: 'knawd-deployer-role', namespaced: true, release: false, description: 'RoleBinding for configuring node' },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', name: 'knawd-cluster-role', namespaced: false, release: false, description: 'ClusterRole for Knative Patch', knative: true },
  { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', name: 'knawd-cluster-role-binding', namespaced: false, release: false, description: 'ClusterRoleBinding for Knative Patch', knative: true },
  { apiVersion: 'security.openshift.io/v1', kind: 'SecurityContextConstraints', name: 'knawd-deployer-scc', namespaced: false, release: false, description: 'allows pod to run as root, privileged and run nsenter', openshift: true },
];

/** The original's values that this chart reads (and their v1.x defaults where they matter). */
export const ORIGINAL_VALUE_KEYS = ['target', 'tag', 'autoRestart', 'logLevel', 'ociType', 'patchKnative'] as const;

/**
 * Image tags of the original (quay.io/knawd/deployer:v1.x): its image has only the Rust manager, which this
 * chart's DaemonSet cannot run. A values file kept from 1.x still says `tag: v1.2.0`.
 */
export const ORIGINAL_TAG_PATTERN = '^v?1\\.';

/**
 * What the original's manager writes on a node (host paths), per its target (VENDOR): crun copied to
 * `/usr/local/sbin/crun`, the engine library into `/usr/lib64` (rhel8) or `/lib`, and one runtime entry named
 * `crun` in the runtime's main config, which it rewrites whole (comments and layout lost) after copying the file
 * to `<config>.bak` (a second run copies the already modified file there).
 */
export const ORIGINAL_NODE = {
  crun: '/usr/local/sbin/crun',
  /** The engine library each ociType put beside crun; its soname is what the original's crun loads. */
  libraries: { 'crun-wasmedge': 'libwasmedge.so.0', 'crun-wasmtime': 'libwasmtime.so' } as Readonly<Record<string, string>>,
  /** Where it put the library (LIB_LOCATION): `/usr/lib64` for rhel8 (CRI-O), `/lib` for the others (containerd). */
  libraryDir: { containerd: '/lib', crio: '/usr/lib64' },
  configs: {
    containerd: '/etc/containerd/config.toml',
    microk8s: '/var/snap/microk8s/current/args/containerd-template.toml',
    crio: '/etc/crio/crio.conf',
  },
  /** The containerd entry's pod_annotations, in the manager's order. */
  containerdPodAnnotations: ['*.wasm.*', 'module.wasm.image/*', '*.module.wasm.image', 'module.wasm.image/variant.*'],
  /** The CRI-O entry's runtime_root. */
  crioRuntimeRoot: '/run/crun',
} as const;

/** The backup the original's manager keeps beside a config (`config.toml` → `config.toml.bak`). */
export function originalBackupPath(configPath: string): string {
  return configPath.replace(/\.(toml|conf)$/, '.$1.bak');
}
