import { Construct } from 'constructs';
import { KNATIVE_DEPLOYMENT, KNATIVE_FEATURE } from '../catalog';
import * as k8s from '../imports/k8s';
import { includePart } from './conditions';
import { INSTALLER_SERVICE_ACCOUNT } from './installer-rbac';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface KnativeRbacProps {
  /** Settings the objects are named and scoped from. */
  readonly settings: DeployerSettings;
}

/**
 * The installer's permission on Knative Serving: get and patch exactly the ConfigMaps it changes — the feature
 * flag's config-features, and config-deployment only when the RuntimeClass is made Knative's default — each
 * through a ClusterRole bound by a RoleBinding inside Knative's namespace. No other verb, no other ConfigMap.
 */
export class KnativeRbac extends Construct {
  constructor(scope: Construct, id: string, props: KnativeRbacProps) {
    super(scope, id);
    const s = props.settings;
    this.grant('Features', 'knawd-installer-knative-features', KNATIVE_FEATURE, s);
    includePart(s.knativeRuntimeClass, () => this.grant('Deployment', 'knawd-installer-knative-deployment', KNATIVE_DEPLOYMENT, s));
  }

  private grant(id: string, name: string, target: { namespace: string; configMap: string }, s: DeployerSettings): Construct {
    const part = new Construct(this, id);
    const labels = standardLabels('rbac', s.version);
    const role = new k8s.KubeClusterRole(part, 'Role', {
      metadata: { name, labels },
      rules: [{ apiGroups: [''], resources: ['configmaps'], resourceNames: [target.configMap], verbs: ['get', 'patch'] }],
    });
    // A RoleBinding, not a ClusterRoleBinding: bound cluster-wide, the rule would also cover a ConfigMap of that
    // name in every other namespace. The price: Knative's namespace must exist when it is applied.
    new k8s.KubeRoleBinding(part, 'Binding', {
      metadata: { name, namespace: target.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: INSTALLER_SERVICE_ACCOUNT, namespace: s.namespace }],
    });
    return part;
  }
}
