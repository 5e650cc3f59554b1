import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { KNATIVE_FEATURE, NODE_EVENT_NAMESPACE } from '../catalog';
import * as k8s from '../imports/k8s';
import { includePart } from './conditions';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export const INSTALLER_SERVICE_ACCOUNT = 'knawd-installer';

export interface InstallerRbacProps {
  /** Settings the objects are named and scoped from. */
  readonly settings: DeployerSettings;
}

/**
 * The installer's identity and the least it may do: read, list and label nodes (the state and host-changed
 * labels, and the uninstall wait), create Events about its node (in `default`, where node events live), list
 * RuntimeClasses and pods (remove waits for the pods of its node that use the handler), and — only with
 * patchKnative — read and patch the one Knative ConfigMap it changes, in Knative's namespace only.
 * No delete verbs, no Secrets.
 */
export class InstallerRbac extends Construct {
  public readonly serviceAccount: kplus.ServiceAccount;

  constructor(scope: Construct, id: string, props: InstallerRbacProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels('rbac', s.version);
    const subject = { kind: 'ServiceAccount', name: INSTALLER_SERVICE_ACCOUNT, namespace: s.namespace };

    this.serviceAccount = new kplus.ServiceAccount(this, 'ServiceAccount', {
      metadata: { name: INSTALLER_SERVICE_ACCOUNT, namespace: s.namespace, labels },
      automountToken: true,
    });

    const nodes = new k8s.KubeClusterRole(this, 'NodesRole', {
      metadata: { name: 'knawd-installer-nodes', labels },
      rules: [
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'patch'] },
        // remove refuses while pods on its node still run with the handler (they would be stuck Terminating):
        // it finds the RuntimeClasses of the handler and lists the pods of its node (field selector).
        { apiGroups: ['node.k8s.io'], resources: ['runtimeclasses'], verbs: ['list'] },
        { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
      ],
    });
    new k8s.KubeClusterRoleBinding(this, 'NodesBinding', {
      metadata: { name: 'knawd-installer-nodes', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: nodes.name },
      subjects: [subject],
    });

    // The node's state transitions and failures are Events on the Node; node events live in `default`, as the
    // kubelet's do. create for the installer, list for the uninstall wait (it quotes the removers' reasons).
    const events = new k8s.KubeRole(this, 'EventsRole', {
      metadata: { name: 'knawd-installer-node-events', namespace: NODE_EVENT_NAMESPACE, labels },
      rules: [{ apiGroups: [''], resources: ['events'], verbs: ['create', 'list'] }],
    });
    new k8s.KubeRoleBinding(this, 'EventsBinding', {
      metadata: { name: 'knawd-installer-node-events', namespace: NODE_EVENT_NAMESPACE, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: events.name },
      subjects: [subject],
    });

    const knative = includePart(s.knative, () => new Construct(this, 'Knative'));
    if (knative) {
      const role = new k8s.KubeClusterRole(knative, 'Role', {
        metadata: { name: 'knawd-installer-knative-features', labels },
        rules: [
          {
            apiGroups: [''],
            resources: ['configmaps'],
            resourceNames: [KNATIVE_FEATURE.configMap],
            verbs: ['get', 'patch'],
          },
        ],
      });
      // A RoleBinding, not a ClusterRoleBinding: bound cluster-wide, the rule would also cover a ConfigMap named
      // config-features in every other namespace. The price: Knative's namespace must exist at install time.
      new k8s.KubeRoleBinding(knative, 'Binding', {
        metadata: { name: 'knawd-installer-knative-features', namespace: KNATIVE_FEATURE.namespace, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.name },
        subjects: [subject],
      });
    }
  }
}
