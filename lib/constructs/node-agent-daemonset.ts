import { ApiObject, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { AGENT_PATH, INSTALLER_ENTRYPOINT, INSTALLER_ENV, INSTALLER_GRACE_SECONDS, INSTALLER_TERMINATION_GRACE_SECONDS, NODE_ROOT_MOUNT, READY_DIR, READY_FILE } from '../catalog';
import * as k8s from '../imports/k8s';
import { ResourceRequirements, UpdateStrategy } from './k8s-types';
import { nodeAgentAffinity } from './image-affinity';
import { Component, selectorLabels, standardLabels } from './labels';
import { DeployerSettings } from './settings';
import { setValueField } from './value-ref';

export interface NodeAgentDaemonSetProps {
  /** Settings the pod is configured from. */
  readonly settings: DeployerSettings;
  /** Name of the DaemonSet. */
  readonly name: string;
  /** Which agent this is: the installer or the remover. */
  readonly component: Extract<Component, 'installer' | 'remover'>;
  /** Installer subcommand and flags. */
  readonly args: string[];
  /**
   * Run the installer under the image's agent (runtime-artifacts/agent): the pod is Ready only once its node is
   * installed and verified, the installer runs again every `driftCheckSeconds` to repair drift, and in between
   * only the agent stays resident.
   * @default false - the container runs the installer with `args` directly
   */
  readonly agent?: boolean;
  /** ServiceAccount the pods run as. */
  readonly serviceAccount: kplus.IServiceAccount;
}

/**
 * A privileged DaemonSet running the installer image on every selected node, with the host's `/` mounted and
 * the host PID namespace shared so the agent can `nsenter` into the host to restart the container runtime.
 * With `agent`, its readiness probe asks the agent whether the readiness marker (in an emptyDir of its own:
 * the root file system stays read-only) is there.
 */
export class NodeAgentDaemonSet extends Construct {
  public readonly daemonSet: kplus.DaemonSet;

  constructor(scope: Construct, id: string, props: NodeAgentDaemonSetProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels(props.component, s.version);
    // Under the agent, the installer's command line follows the agent's own flags.
    const command = props.agent ? [AGENT_PATH] : [...INSTALLER_ENTRYPOINT];
    const args = props.agent ? ['run', '--ready-file', READY_FILE, '--check-every', s.driftCheckSeconds, '--', ...INSTALLER_ENTRYPOINT, ...props.args] : props.args;

    this.daemonSet = new kplus.DaemonSet(this, 'Resource', {
      metadata: { name: props.name, namespace: s.namespace, labels },
      podMetadata: { labels },
      select: false,
      serviceAccount: props.serviceAccount,
      automountServiceAccountToken: true,
      // cdk8s-plus defaults to non-root; the agent edits root-owned host files and must run as root.
      securityContext: { ensureNonRoot: false },
      // A rollout's SIGTERM mid-install: the installer finishes or rolls back its step within its own grace.
      terminationGracePeriod: Duration.seconds(INSTALLER_TERMINATION_GRACE_SECONDS),
      containers: [
        {
          name: props.component,
          image: s.image,
          imagePullPolicy: s.imagePullPolicy as kplus.ImagePullPolicy,
          command,
          args,
          envVariables: {
            [INSTALLER_ENV.target]: kplus.EnvValue.fromValue(s.target),
            [INSTALLER_ENV.runtime]: kplus.EnvValue.fromValue(s.ociType),
            [INSTALLER_ENV.nodeRoot]: kplus.EnvValue.fromValue(NODE_ROOT_MOUNT),
            [INSTALLER_ENV.autoRestart]: kplus.EnvValue.fromValue(s.autoRestart),
            [INSTALLER_ENV.logLevel]: kplus.EnvValue.fromValue(s.logLevel),
            [INSTALLER_ENV.patchKnative]: kplus.EnvValue.fromValue(s.patchKnative),
            [INSTALLER_ENV.prefix]: kplus.EnvValue.fromValue(s.hostPrefix),
            [INSTALLER_ENV.handler]: kplus.EnvValue.fromValue(s.handler),
            [INSTALLER_ENV.runtimeClass]: kplus.EnvValue.fromValue(s.runtimeClassName),
            [INSTALLER_ENV.knativeRuntimeClassSelector]: kplus.EnvValue.fromValue(s.knativeRuntimeClassSelector),
            [INSTALLER_ENV.nodeName]: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.NODE_NAME),
            [INSTALLER_ENV.namespace]: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
            [INSTALLER_ENV.maxConcurrentRestarts]: kplus.EnvValue.fromValue(String(s.maxConcurrentRestarts)),
            [INSTALLER_ENV.startupTaint]: kplus.EnvValue.fromValue(s.startupTaint),
            [INSTALLER_ENV.graceSeconds]: kplus.EnvValue.fromValue(String(INSTALLER_GRACE_SECONDS)),
          },
          // The probe execs the static agent (the image has no shell), which only stats the marker. Every 10 s: a
          // rollout moves on soon after a node is done, a drifted node turns unready within one period, and the
          // execs cost the idle pod ~0.4m of CPU (npm run bench).
          readiness: props.agent ? kplus.Probe.fromCommand([AGENT_PATH, 'ready', READY_FILE], { periodSeconds: Duration.seconds(10), failureThreshold: 1 }) : undefined,
          // privileged=true is rejected together with allowPrivilegeEscalation=false, cdk8s-plus's default.
          securityContext: {
            privileged: true,
            allowPrivilegeEscalation: true,
            ensureNonRoot: false,
            user: 0,
            group: 0,
            readOnlyRootFilesystem: true,
          },
        },
      ],
    });
    this.daemonSet.select(kplus.LabelSelector.of({ labels: selectorLabels(props.component) }));
    const nodeRoot = kplus.Volume.fromHostPath(this, 'NodeRoot', 'node-root', { path: '/' });
    this.daemonSet.containers[0].mount(NODE_ROOT_MOUNT, nodeRoot);
    if (props.agent) {
      const ready = kplus.Volume.fromEmptyDir(this, 'Ready', 'ready', { medium: kplus.EmptyDirMedium.MEMORY, sizeLimit: Size.mebibytes(1) });
      this.daemonSet.containers[0].mount(READY_DIR, ready);
    }

    const api = ApiObject.of(this.daemonSet);
    // The pod address label is derived from the construct path, which differs between apps that render the same
    // objects; selection uses the fixed app.kubernetes.io labels instead.
    api.addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    // Fields the cdk8s-plus DaemonSet does not offer. Patches apply to the L1 props form (hostPid), which the
    // generated converter then turns into Kubernetes JSON.
    api.addJsonPatch(
      JsonPatch.add('/spec/template/spec/hostPid', true),
      JsonPatch.add('/spec/template/spec/priorityClassName', s.priorityClassName),
      JsonPatch.add('/spec/template/spec/affinity', nodeAgentAffinity()),
    );
    setValueField(api, '/spec/template/spec/containers/0/resources', s.resources, resourcesProps);
    setValueField(api, '/spec/template/spec/tolerations', s.tolerations);
    setValueField(api, '/spec/updateStrategy', s.updateStrategy, updateStrategyProps);
    setValueField(api, '/spec/template/spec/nodeSelector', s.nodeSelector);
    setValueField(api, '/spec/template/spec/imagePullSecrets', s.imagePullSecrets);
  }
}

function quantities(map: Record<string, string> | undefined): Record<string, k8s.Quantity> | undefined {
  return map && Object.fromEntries(Object.entries(map).map(([k, v]) => [k, k8s.Quantity.fromString(String(v))]));
}

function resourcesProps(r: ResourceRequirements): k8s.ResourceRequirements {
  return { requests: quantities(r.requests), limits: quantities(r.limits) };
}

function intOrString(v: number | string | undefined): k8s.IntOrString | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'number' ? k8s.IntOrString.fromNumber(v) : k8s.IntOrString.fromString(v);
}

function updateStrategyProps(u: UpdateStrategy): k8s.DaemonSetUpdateStrategy {
  const rolling = u.rollingUpdate;
  return {
    type: u.type,
    rollingUpdate: rolling && { maxUnavailable: intOrString(rolling.maxUnavailable), maxSurge: intOrString(rolling.maxSurge) },
  };
}
