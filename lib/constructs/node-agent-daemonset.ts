import { ApiObject, Duration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { INSTALLER_ENTRYPOINT, INSTALLER_ENV, INSTALLER_GRACE_SECONDS, INSTALLER_TERMINATION_GRACE_SECONDS, NODE_ROOT_MOUNT } from '../catalog';
import * as k8s from '../imports/k8s';
import { ResourceRequirements, UpdateStrategy } from './k8s-types';
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
  /** ServiceAccount the pods run as. */
  readonly serviceAccount: kplus.IServiceAccount;
}

/**
 * A privileged DaemonSet running the installer image on every selected node, with the host's `/` mounted and
 * the host PID namespace shared so the agent can `nsenter` into the host to restart the container runtime.
 */
export class NodeAgentDaemonSet extends Construct {
  public readonly daemonSet: kplus.DaemonSet;

  constructor(scope: Construct, id: string, props: NodeAgentDaemonSetProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels(props.component, s.version);

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
          command: [...INSTALLER_ENTRYPOINT],
          args: props.args,
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
            [INSTALLER_ENV.graceSeconds]: kplus.EnvValue.fromValue(String(INSTALLER_GRACE_SECONDS)),
          },
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

    const api = ApiObject.of(this.daemonSet);
    // The pod address label is derived from the construct path, which differs between apps that render the same
    // objects; selection uses the fixed app.kubernetes.io labels instead.
    api.addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    // Fields the cdk8s-plus DaemonSet does not offer. Patches apply to the L1 props form (hostPid), which the
    // generated converter then turns into Kubernetes JSON.
    api.addJsonPatch(
      JsonPatch.add('/spec/template/spec/hostPid', true),
      JsonPatch.add('/spec/template/spec/priorityClassName', s.priorityClassName),
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
