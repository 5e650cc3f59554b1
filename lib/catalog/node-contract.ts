/**
 * What the cluster side and the node installer agree on: the installer reads these env vars, the DaemonSet
 * sets them; the installer sets the label, the RuntimeClass schedules on it and the uninstall wait polls it.
 */

/** Env vars the installer reads. The first six keep the names the original knawd deployer used. */
export const INSTALLER_ENV = {
  target: 'VENDOR',
  runtime: 'OCI_TYPE',
  nodeRoot: 'NODE_ROOT',
  autoRestart: 'AUTO_RESTART',
  logLevel: 'LOG_LEVEL',
  patchKnative: 'PATCH_KNATIVE',
  prefix: 'KNAWD_PREFIX',
  handler: 'KNAWD_HANDLER',
  artifacts: 'KNAWD_ARTIFACTS',
  nodeName: 'NODE_NAME',
} as const;

/** Where the installer pod mounts the host's `/`. */
export const NODE_ROOT_MOUNT = '/mnt/node-root';

/** Where the installer image carries the artifacts (`<dir>/<target>/...`), as the original image did. */
export const DEFAULT_ARTIFACTS_DIR = '/vendor';

/** The one host directory everything is installed under; writable on RHCOS, unlike /usr and /lib. */
export const DEFAULT_HOST_PREFIX = '/opt/knawd';

/**
 * Default CRI handler name. Not `crun`: since CRI-O 1.31 the default runtime is named `crun`, and k3s
 * auto-registers a `crun` handler when it finds crun on its PATH.
 */
export const DEFAULT_HANDLER = 'crun-wasm';

/** Default RuntimeClass name, as the original. */
export const DEFAULT_RUNTIME_CLASS = 'crun';

/** Set on a node by the installer only after a successful install; removed by `remove`. */
export const INSTALLED_LABEL = { key: 'knawd.dev/crun-wasm', value: 'installed' } as const;

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The image's entry point; the commands are the installer's subcommands. */
export const INSTALLER_ENTRYPOINT = ['node', '/usr/local/lib/knawd-installer.js'] as const;

/** Knative's feature flag that allows runtimeClassName in Knative services. */
export const KNATIVE_FEATURE = {
  namespace: 'knative-serving',
  configMap: 'config-features',
  key: 'kubernetes.podspec-runtimeclassname',
  value: 'enabled',
} as const;
