import { Construct } from 'constructs';
import * as k8s from '../imports/k8s';
import { SecurityContextConstraints } from '../imports/security.openshift.io';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface OpenShiftSccProps {
  /** Settings the objects are named and scoped from. */
  readonly settings: DeployerSettings;
  /** Name of the ServiceAccount allowed to use the SCC. */
  readonly serviceAccountName: string;
}

export const SCC_NAME = 'knawd-installer';

/**
 * On OpenShift a privileged, hostPID, hostPath pod is admitted only under a SecurityContextConstraints that
 * allows it; a Role grants the installer's ServiceAccount `use` of exactly this SCC.
 */
export class OpenShiftScc extends Construct {
  constructor(scope: Construct, id: string, props: OpenShiftSccProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels('rbac', s.version);

    // Every field the CRD marks required is set: kubectl's validation rejects an SCC without, e.g., priority.
    new SecurityContextConstraints(this, 'Resource', {
      metadata: { name: SCC_NAME, labels },
      allowHostDirVolumePlugin: true,
      allowHostIpc: false,
      allowHostNetwork: false,
      allowHostPid: true,
      allowHostPorts: false,
      allowPrivilegedContainer: true,
      allowPrivilegeEscalation: true,
      allowedCapabilities: [],
      defaultAddCapabilities: [],
      requiredDropCapabilities: [],
      priority: 0,
      readOnlyRootFilesystem: false,
      runAsUser: { type: 'RunAsAny' },
      seLinuxContext: { type: 'RunAsAny' },
      fsGroup: { type: 'RunAsAny' },
      supplementalGroups: { type: 'RunAsAny' },
      seccompProfiles: ['*'],
      // The node's root (hostPath), the ServiceAccount token (projected) and the readiness marker's tmpfs
      // (emptyDir): nothing else is mounted.
      volumes: ['emptyDir', 'hostPath', 'projected'],
      users: [],
      groups: [],
    });

    const role = new k8s.KubeRole(this, 'Role', {
      metadata: { name: 'knawd-installer-scc', namespace: s.namespace, labels },
      rules: [
        {
          apiGroups: ['security.openshift.io'],
          resources: ['securitycontextconstraints'],
          resourceNames: [SCC_NAME],
          verbs: ['use'],
        },
      ],
    });
    new k8s.KubeRoleBinding(this, 'Binding', {
      metadata: { name: 'knawd-installer-scc', namespace: s.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: props.serviceAccountName, namespace: s.namespace }],
    });
  }
}
