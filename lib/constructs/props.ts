import { LogLevel, RuntimeName, TargetName } from '../catalog';
import { Toleration, ResourceRequirements, ImagePullPolicy, UpdateStrategy } from './k8s-types';

/** The installer image. */
export interface InstallerImage {
  /**
   * Image repository.
   * @default "quay.io/knawd/deployer"
   */
  readonly repository?: string;
  /**
   * Image tag; ignored when `digest` is set.
   * @default "v" + this package's version
   */
  readonly tag?: string;
  /**
   * Image digest (`sha256:…`); pins the image and wins over `tag`.
   * @default - none, the tag is used
   */
  readonly digest?: string;
  /**
   * Full image reference; wins over repository, tag and digest (for mirrors, or for renderers).
   * @default - built from repository and tag or digest
   */
  readonly reference?: string;
  /**
   * Pull policy of the installer image.
   * @default "IfNotPresent"
   */
  readonly pullPolicy?: ImagePullPolicy;
}

/** Props of {@link KnawdDeployer} and {@link KnawdUninstaller}: how the runtime is put on the nodes. */
export interface KnawdDeployerProps {
  /**
   * Kind of node to configure (see the support matrix); the original's names are accepted.
   * @default "rhel8"
   */
  readonly target?: TargetName;
  /**
   * Which crun build to install.
   * @default "crun-wasmedge"
   */
  readonly ociType?: RuntimeName;
  /**
   * The installer image.
   * @default - quay.io/knawd/deployer at this package's version
   */
  readonly image?: InstallerImage;
  /**
   * Installer log level.
   * @default "info"
   */
  readonly logLevel?: LogLevel;
  /**
   * Restart the node's container runtime after changing its config; if false a restart is left pending.
   * @default true
   */
  readonly autoRestart?: boolean;
  /**
   * Enable Knative's `kubernetes.podspec-runtimeclassname` feature flag (and grant the installer access to it).
   * @default true
   */
  readonly patchKnative?: boolean;
  /**
   * Namespace of the installer's namespaced objects.
   * @default "knawd"
   */
  readonly namespace?: string;
  /**
   * Create the Namespace object (labelled for PodSecurity `privileged`); false when it is managed elsewhere.
   * @default true
   */
  readonly createNamespace?: boolean;
  /**
   * Nodes to install on.
   * @default - every node
   */
  readonly nodeSelector?: Record<string, string>;
  /**
   * Tolerations of the installer pods.
   * @default - tolerate every taint, so no node is skipped
   */
  readonly tolerations?: Toleration[];
  /**
   * Resources of the installer container.
   * @default - requests = limits = 100m CPU, 128Mi memory (as the original)
   */
  readonly resources?: ResourceRequirements;
  /**
   * Priority class of the installer pods.
   * @default "system-node-critical"
   */
  readonly priorityClassName?: string;
  /**
   * Names of Secrets used to pull the installer image.
   * @default - none
   */
  readonly imagePullSecrets?: string[];
  /**
   * Update strategy of the installer DaemonSet.
   * @default - RollingUpdate with maxUnavailable 1
   */
  readonly updateStrategy?: UpdateStrategy;
  /**
   * Name of the RuntimeClass workloads use.
   * @default "crun"
   */
  readonly runtimeClassName?: string;
  /**
   * CRI handler name registered in containerd / CRI-O and referenced by the RuntimeClass.
   * @default "crun-wasm"
   */
  readonly handler?: string;
  /**
   * Host directory everything is installed under.
   * @default "/opt/knawd"
   */
  readonly hostPrefix?: string;
}
