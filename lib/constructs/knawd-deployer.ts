import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { includePart } from './conditions';
import { InstallerRbac, INSTALLER_SERVICE_ACCOUNT } from './installer-rbac';
import { KnativeRbac } from './knative-rbac';
import { NodeRestrictionPolicy } from './node-restriction-policy';
import { NodeAgentDaemonSet } from './node-agent-daemonset';
import { OpenShiftScc } from './openshift-scc';
import { PrivilegedNamespace } from './privileged-namespace';
import { RestartSlots } from './restart-slots';
import { KnawdDeployerProps } from './props';
import { DeployerSettings, resolveSettings } from './settings';
import { UninstallWaitJob } from './uninstall-wait-job';
import { WasmRuntimeClass } from './wasm-runtime-class';

export const INSTALLER_DAEMONSET = 'knawd-installer';
export const REMOVER_DAEMONSET = 'knawd-remover';

/**
 * Everything that puts crun with a WebAssembly handler onto the nodes: namespace, identity and least-privilege
 * RBAC, the restart budget's Leases, the OpenShift SCC where needed, the Knative RBAC with `patchKnative: true`, the node-restriction
 * policy with `nodeRestrictionPolicy: true`, the installer DaemonSet and the RuntimeClass `crun`.
 */
export class KnawdDeployer extends Construct {
  /** The props with defaults applied and checked. */
  public readonly settings: DeployerSettings;

  constructor(scope: Construct, id: string, props: KnawdDeployerProps = {}) {
    super(scope, id);
    const s = resolveSettings(props);
    this.settings = s;

    if (s.createNamespace) new PrivilegedNamespace(this, 'Namespace', { settings: s });
    const rbac = new InstallerRbac(this, 'Rbac', { settings: s });
    new RestartSlots(this, 'RestartSlots', { settings: s });
    includePart(s.openshift, () => new OpenShiftScc(this, 'OpenShift', { settings: s, serviceAccountName: INSTALLER_SERVICE_ACCOUNT }));
    includePart(s.knativeRbac, () => new KnativeRbac(this, 'Knative', { settings: s }));
    includePart(s.nodeRestriction, () => new NodeRestrictionPolicy(this, 'NodeRestriction', { settings: s }));
    new NodeAgentDaemonSet(this, 'Installer', {
      settings: s,
      name: INSTALLER_DAEMONSET,
      component: 'installer',
      args: ['install'],
      agent: true,
      serviceAccount: rbac.serviceAccount,
    });
    new WasmRuntimeClass(this, 'RuntimeClass', { settings: s });
  }
}

/**
 * The uninstall path: a DaemonSet that runs the installer's `remove` on every node (with the ServiceAccount and
 * RBAC of {@link KnawdDeployer}), and a Job, with an identity of its own that may only watch nodes, that
 * completes once no node is labelled as installed.
 */
export class KnawdUninstaller extends Construct {
  public readonly settings: DeployerSettings;

  constructor(scope: Construct, id: string, props: KnawdDeployerProps = {}) {
    super(scope, id);
    const s = resolveSettings(props);
    this.settings = s;
    new NodeAgentDaemonSet(this, 'Remover', {
      settings: s,
      name: REMOVER_DAEMONSET,
      component: 'remover',
      args: ['remove', '--stay', '--pods-timeout-seconds', s.uninstallPodsTimeoutSeconds],
      serviceAccount: kplus.ServiceAccount.fromServiceAccountName(this, 'ServiceAccount', INSTALLER_SERVICE_ACCOUNT),
    });
    new UninstallWaitJob(this, 'Wait', { settings: s });
  }
}
