import { LogLevel, RuntimeName, StartupTaint, TargetChoice } from '../catalog';
import { Toleration, ResourceRequirements, ImagePullPolicy, UpdateStrategy } from './k8s-types';

/** The installer image. */
export interface InstallerImage {
  /**
   * Image repository.
   * @default "quay.io/knawd/deployer"
   */
  readonly repository?: string;
  /**
   * Image tag: the installer image of an ociType is `<repository>:<tag>-<ociType>` (each image carries only that
   * ociType's crun build); ignored for an ociType that `digests` pins.
   * @default "v" + this package's version
   */
  readonly tag?: string;
  /**
   * Image index digests (`sha256:…`) by ociType, as a release pins them: the ociType's entry pins its image
   * (`<repository>@<digest>`, one index for every architecture) and wins over `tag`.
   * @default - none, the tag is used
   */
  readonly digests?: Readonly<Partial<Record<RuntimeName, string>>>;
  /**
   * Full image reference; wins over repository, tag and digests (for mirrors, or for renderers). It must carry
   * the ociType's build: the installer refuses an image without it.
   * @default - built from repository and tag or digests
   */
  readonly reference?: string;
  /**
   * Pull policy of the installer image.
   * @default "IfNotPresent"
   */
  readonly pullPolicy?: ImagePullPolicy;
}

/** The RuntimeClass as the default for chosen Knative Services. */
export interface KnativeRuntimeClassProps {
  /**
   * Revision labels that select the RuntimeClass (set them in a Knative Service's
   * `spec.template.metadata.labels`); Knative picks the most specific matching entry of `runtime-class-name`.
   * @default {"knawd.dev/wasm": "true"}
   */
  readonly selector?: Record<string, string>;
}

/** Knative Serving settings. */
export interface KnativeProps {
  /**
   * Make the RuntimeClass the default for Knative Services whose revisions match a label selector, through
   * `knative-serving/config-deployment`'s `runtime-class-name` (Knative 1.15+): our entry is merged with the
   * others there, and uninstall takes it out again while it is still ours. Needs `patchKnative` true or "auto".
   * @default - not set
   */
  readonly runtimeClassName?: KnativeRuntimeClassProps;
}

/** Props of {@link KnawdDeployer} and {@link KnawdUninstaller}: how the runtime is put on the nodes. */
export interface KnawdDeployerProps {
  /**
   * Kind of node to configure (see the support matrix); the original's names are accepted. `"auto"`: the
   * installer finds out on each node (from its Node object and its files) which target it is, so one install
   * serves a mixed cluster; a given target that a node contradicts is refused there before anything is written.
   * @default "auto"
   */
  readonly target?: TargetChoice;
  /**
   * Include the SecurityContextConstraints that admits the privileged installer on OpenShift (and the uninstall
   * wait Job's SCC Role). With target `"auto"` a synth cannot see whether the cluster is OpenShift: set true there
   * (the chart decides by itself, from the APIs the cluster serves).
   * @default - true for the OpenShift targets (rhel8, rhel8_plugins), false otherwise ("auto" included)
   */
  readonly openshift?: boolean;
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
   * Wire Knative Serving up: enable its `kubernetes.podspec-runtimeclassname` feature flag (restored on
   * uninstall while it is still ours) and grant the installer that, in Knative's namespace. `true` includes the
   * Knative RBAC (Knative Serving must be installed first); `"auto"` leaves it out of this construct, since a
   * synth cannot see the cluster (add {@link KnawdKnativeAccess} where Knative Serving runs; the chart decides
   * by itself), and the installer then treats a missing Knative as normal; `false` leaves Knative alone.
   * @default "auto"
   */
  readonly patchKnative?: boolean | 'auto';
  /**
   * Install the ValidatingAdmissionPolicy that lets the installer change only its own Node, and only the node
   * contract's labels (Kubernetes 1.30+). `"auto"` leaves it out of this construct, since a synth cannot see the
   * cluster's version (add {@link KnawdNodeRestriction} where it is 1.30+; the chart decides by itself).
   * @default "auto"
   */
  readonly nodeRestrictionPolicy?: boolean | 'auto';
  /**
   * Knative Serving settings beyond the feature flag.
   * @default - none: config-deployment is left alone
   */
  readonly knative?: KnativeProps;
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
   * Resources of the installer container. Requests are what an installed node's pod uses on average (a static
   * agent, the readiness probe, the periodic drift check; measured by `npm run bench`); limits are sized for an
   * install and a drift check (Node.js, and the artifacts' page cache, which counts against the memory).
   * @default - requests 2m CPU / 8Mi memory, limits 500m CPU / 256Mi memory
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
  /**
   * How many nodes may restart their container runtime at once, first install, upgrade, drift repair and
   * uninstall alike: one Lease per slot (`knawd-restart-<i>` in the namespace) that an installer holds while its
   * runtime restarts and is verified. A node waiting for a slot is labelled `pending`.
   * @default 1
   */
  readonly maxConcurrentRestarts?: number;
  /**
   * How often, in seconds, the staying installer re-checks its node (our config block, our files, the handler
   * served by the runtime) and repairs drift through the restart budget; 0 never.
   * @default 300
   */
  readonly driftCheckSeconds?: number;
  /**
   * How long, in seconds, each node's remover waits at uninstall for pods still running with the handler before it
   * refuses (the uninstall then fails and the release stays); the uninstall wait Job allows this plus the time a
   * node takes to be restored, so the remover's verdict always comes first.
   * @default 120
   */
  readonly uninstallPodsTimeoutSeconds?: number;
  /**
   * A taint to remove from each node once it is installed (a node provisioner's startup taint, such as
   * Karpenter's `startupTaints`), so WASM workloads never race the install. Only removing that taint is allowed
   * to the installer by the node-restriction policy.
   * @default - none
   */
  readonly startupTaint?: StartupTaint;
}
