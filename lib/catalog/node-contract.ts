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
  runtimeClass: 'KNAWD_RUNTIME_CLASS',
  knativeRuntimeClassSelector: 'KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR',
  artifacts: 'KNAWD_ARTIFACTS',
  nodeName: 'NODE_NAME',
  hostExec: 'KNAWD_HOST_EXEC',
  namespace: 'KNAWD_NAMESPACE',
  maxConcurrentRestarts: 'KNAWD_MAX_CONCURRENT_RESTARTS',
  readyFile: 'KNAWD_READY_FILE',
  startupTaint: 'KNAWD_STARTUP_TAINT',
  startStoppedRuntime: 'KNAWD_START_STOPPED_RUNTIME',
  graceSeconds: 'KNAWD_GRACE_SECONDS',
} as const;

/**
 * After SIGTERM, how long the installer lets the step in progress finish (or roll back) before it exits saying
 * where it was (its `--grace-seconds`, set from KNAWD_GRACE_SECONDS by the DaemonSet). One restart with its
 * verification takes a few seconds (measured: test/e2e/sigterm.test.ts); this bounds a slow one.
 */
export const INSTALLER_GRACE_SECONDS = 60;

/**
 * The installer pods' terminationGracePeriodSeconds: the installer's own bound plus time to write its last line
 * and Event, so the kubelet's SIGKILL never lands in the middle of a step. An idle pod exits at once on SIGTERM:
 * the long period costs a rollout nothing.
 */
export const INSTALLER_TERMINATION_GRACE_SECONDS = INSTALLER_GRACE_SECONDS + 15;

/** Where the installer pod mounts the host's `/`. */
export const NODE_ROOT_MOUNT = '/mnt/node-root';

/** Where the installer image carries the artifacts (`<dir>/<target>/...`), as the original image did. */
export const DEFAULT_ARTIFACTS_DIR = '/vendor';

/** The one host directory everything is installed under; writable on RHCOS, unlike /usr and /lib. */
export const DEFAULT_HOST_PREFIX = '/opt/knawd';

/**
 * Which host prefixes are accepted, by the constructs, the chart's values.schema.json and the installer alike:
 * absolute, a directory of its own at least two levels deep (never `/` or `/opt`, which remove would try to
 * delete), plain characters only (it is written into TOML files and a shell wrapper), no part starting with `.`
 * (so no `.` or `..`). No lookaround: Helm checks the schema with Go's RE2.
 */
export const HOST_PREFIX_PATTERN = /^(\/[A-Za-z0-9_-][A-Za-z0-9._-]*){2,}$/;
/**
 * The longest prefix: every shipped ELF names its loader and libraries by absolute path (PT_INTERP, RUNPATH:
 * crun re-executes itself from a memfd, where $ORIGIN means nothing), built as the default prefix padded with
 * "/" to this length; the installer rewrites those bytes to the chosen prefix padded the same way, so a longer
 * prefix cannot fit. Equal to HOST_PREFIX_PADDED_LENGTH in runtime-artifacts/image.env.
 */
export const HOST_PREFIX_MAX_LENGTH = 64;
export const HOST_PREFIX_RULE = `an absolute directory at least two levels deep and at most ${HOST_PREFIX_MAX_LENGTH} characters long, of letters, digits, ".", "_" and "-" (no part starting with "."), such as /opt/knawd`;

/** RuntimeClass handlers are DNS labels (Kubernetes requires it; it also keeps them bare TOML keys). */
export const HANDLER_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_HANDLER_LENGTH = 63;
export const HANDLER_RULE = `a DNS label of 1-${MAX_HANDLER_LENGTH} lower-case letters, digits or "-", starting and ending with a letter or digit, such as crun-wasm`;

export function isHostPrefix(value: string): boolean {
  return value.length <= HOST_PREFIX_MAX_LENGTH && HOST_PREFIX_PATTERN.test(value);
}

export function isHandlerName(value: string): boolean {
  return value.length <= MAX_HANDLER_LENGTH && HANDLER_PATTERN.test(value);
}

/**
 * Default CRI handler name. Not `crun`: since CRI-O 1.31 the default runtime is named `crun`, and k3s
 * auto-registers a `crun` handler when it finds crun on its PATH.
 */
export const DEFAULT_HANDLER = 'crun-wasm';

/** Default RuntimeClass name, as the original. */
export const DEFAULT_RUNTIME_CLASS = 'crun';

/**
 * The node's install state, kept by the installer: `pending` (waiting or installing), `installed` (configured
 * and the runtime verified to serve the handler), `failed` (the reason is in an Event on the Node). The
 * RuntimeClass selects `installed` only; `remove` takes the label away before anything else.
 */
export const NODE_STATE_LABEL = 'knawd.dev/crun-wasm';
export const NODE_STATES = ['pending', 'installed', 'failed'] as const;
export type NodeState = (typeof NODE_STATES)[number];

/** The one value the RuntimeClass schedules on. */
export const INSTALLED_LABEL = { key: NODE_STATE_LABEL, value: 'installed' } as const satisfies { key: string; value: NodeState };

/** Where the installer records Events about its node: `default`, as the kubelet's own node events. */
export const NODE_EVENT_NAMESPACE = 'default';

/**
 * Set on a node before the installer's first write to its host, removed by `remove` only once the host is
 * restored (configs byte for byte, our files gone, the runtime restarted and verified). The uninstall waits
 * until no node carries it: "not schedulable" and "restored" are different facts with different signals.
 */
export const HOST_CHANGED_LABEL = { key: 'knawd.dev/crun-wasm-host', value: 'changed' } as const;

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
