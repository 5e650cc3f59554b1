/**
 * Everything one installer run is configured with, after the command line and the environment have been
 * parsed and checked (see cli.ts). Every path here is a host path unless its name says otherwise.
 */
import type { AUTO_TARGET, RuntimeSpec, TargetSpec, LogLevel, PatchKnativeMode, StartupTaint } from '../catalog';
import { InstallerError } from './errors';

export const COMMANDS = ['plan', 'install', 'remove', 'status', 'wait-removed'] as const;
export type Command = (typeof COMMANDS)[number];

/** How the container runtime is restarted after its configuration changed. */
export type RestartMode = 'auto' | 'none';

/** How commands reach the host: PID 1's mount namespace (a node), or a chroot into the node root (an image). */
export type HostExec = 'nsenter' | 'chroot';

export interface Settings {
  /** The subcommand. */
  readonly command: Command;
  /** Directory (in the installer's own file system) where the host's `/` is mounted. @default /mnt/node-root */
  readonly nodeRoot: string;
  /**
   * The target, from the catalog, or `auto`: decided per node at the start of the run (runtime/detect-target.ts).
   * @default auto for plan and install; remove and status take it from the state file when not given.
   */
  readonly target?: TargetSpec | typeof AUTO_TARGET;
  /** The crun build, from the catalog; optional like `target`. */
  readonly runtime?: RuntimeSpec;
  /** Root of the artifacts in the installer image (artifacts.json, SHA256SUMS, the builds). @default /vendor */
  readonly artifacts: string;
  /** Host directory everything is installed under; the state file lives there too. @default /opt/knawd */
  readonly prefix: string;
  /** CRI runtime handler name that the RuntimeClass refers to. @default crun-wasm */
  readonly handler: string;
  /** Whether to restart the container runtime when its configuration changed. @default auto */
  readonly restart: RestartMode;
  /**
   * Restart the runtime after a config change even when it was not running before the run (its socket did not
   * answer): that starts it. Without it such a runtime is left stopped; it reads the new config when started.
   * @default false
   */
  readonly startStoppedRuntime: boolean;
  /**
   * After SIGTERM/SIGINT, how long the step in progress may still take before the process exits (set below the
   * pod's terminationGracePeriodSeconds). @default 60
   */
  readonly graceSeconds: number;
  /** How host commands (systemctl, the runtime's own binary, chcon) are run. @default nsenter */
  readonly hostExec: HostExec;
  /**
   * Whether to wire Knative Serving up: `true` expects it, `auto` tries and takes its absence as normal, `false`
   * leaves Knative alone. @default auto
   */
  readonly patchKnative: PatchKnativeMode;
  /** Name of the RuntimeClass that refers to the handler (for Knative's runtime-class-name). @default crun */
  readonly runtimeClassName: string;
  /**
   * Revision labels that make Knative give new revisions the RuntimeClass (config-deployment's
   * runtime-class-name). @default none: config-deployment is left alone
   */
  readonly knativeRuntimeClassSelector?: Readonly<Record<string, string>>;
  /** Least severe log level printed. @default info */
  readonly logLevel: LogLevel;
  /** Name of this node, for the installed label; from NODE_NAME in the DaemonSet. @default none: no label */
  readonly nodeName?: string;
  /** kubeconfig file for the API steps; without it the in-cluster config is used when present. */
  readonly kubeconfig?: string;
  /** Stay idle after success until SIGTERM (the DaemonSet's mode). @default false */
  readonly stay: boolean;
  /** Bound for `wait-removed`. @default 240 */
  readonly timeoutSeconds: number;
  /** Bound for the wait until the CRI socket answers after a restart. @default 60 */
  readonly socketTimeoutSeconds: number;
  /** remove: bound for the wait until no pod on this node runs with our handler. @default 120 */
  readonly podsTimeoutSeconds: number;
  /** install/remove: bound for the wait until another run on this node releases the node lock. @default 300 */
  readonly lockTimeoutSeconds: number;
  /** Label selector `wait-removed` polls for. @default knawd.dev/crun-wasm-host=changed */
  readonly label: string;
  /** The installer's namespace, where the restart budget's Leases are. @default knawd */
  readonly namespace: string;
  /**
   * How many nodes may restart their runtime at once (the Leases `knawd-restart-0 … K-1`). @default none: this
   * run's restarts are not coordinated with other nodes'
   */
  readonly maxConcurrentRestarts?: number;
  /** How long a restart slot stays taken after its holder's last renewal. @default 15 */
  readonly restartLeaseSeconds: number;
  /** File (in the installer's own file system) that exists exactly while the node is installed and verified. @default none */
  readonly readyFile?: string;
  /** A taint removed from the node once it is installed. @default none */
  readonly startupTaint?: StartupTaint;
  /** install: the staying installer's periodic check; changes nothing unless the node drifted. @default false */
  readonly driftCheck: boolean;
  /** status: one line per node of the cluster instead of this node's files. @default false */
  readonly cluster: boolean;
}

/** The target choice and runtime of a command that needs both (plan, install). */
export function requireVariant(settings: Settings): { target: TargetSpec | typeof AUTO_TARGET; runtime: NonNullable<Settings['runtime']> } {
  if (!settings.target || !settings.runtime) throw new InstallerError('--target and --runtime are required', 'pass --target and --runtime (or VENDOR and OCI_TYPE)', 2);
  return { target: settings.target, runtime: settings.runtime };
}
