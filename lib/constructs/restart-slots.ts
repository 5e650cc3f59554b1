import { Construct } from 'constructs';
import { restartLeaseName, restartLeaseNames } from '../catalog';
import * as k8s from '../imports/k8s';
import { INSTALLER_SERVICE_ACCOUNT } from './installer-rbac';
import { standardLabels } from './labels';
import { repeatOver } from './repeat';
import { DeployerSettings } from './settings';
import { bindValueField, isValueRef, valueRef } from './value-ref';

export interface RestartSlotsProps {
  /** Settings the objects are named and scoped from. */
  readonly settings: DeployerSettings;
}

export const RESTART_SLOTS_ROLE = 'knawd-installer-restart-slots';

/**
 * The restart budget (issue 15): one coordination.k8s.io Lease per slot of `maxConcurrentRestarts`
 * (`knawd-restart-0 … K-1`), created free, and the installer's permission on them: get and update by name, in
 * its own namespace. Waiting for a slot (issue 32) watches the namespace's Leases and queues with a ticket
 * Lease of the node's own: list, watch, create and delete Leases in that namespace, which RBAC cannot limit by
 * name (a ticket is named after its node), and which reach no Lease outside the installer's namespace (the
 * kubelets' and controllers' are elsewhere). With a value reference for K (the chart) the Lease is one object
 * the renderer repeats, and the Role's names are a reference too.
 */
export class RestartSlots extends Construct {
  constructor(scope: Construct, id: string, props: RestartSlotsProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels('rbac', s.version);
    const slots = s.maxConcurrentRestarts;

    repeatOver(slots, (index) =>
      new k8s.KubeLease(this, index === undefined ? 'Lease' : `Lease${index}`, {
        metadata: { name: index === undefined ? valueRef('restartSlotName') : restartLeaseName(index), namespace: s.namespace, labels },
        spec: {},
      }),
    );

    const role = new k8s.KubeRole(this, 'Role', {
      metadata: { name: RESTART_SLOTS_ROLE, namespace: s.namespace, labels },
      rules: [
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          verbs: ['get', 'update'],
          resourceNames: isValueRef(slots) ? undefined : restartLeaseNames(slots),
        },
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['list', 'watch', 'create', 'delete'] },
      ],
    });
    if (isValueRef(slots)) bindValueField(role, '/rules/0/resourceNames', valueRef('restartLeaseNames'));
    new k8s.KubeRoleBinding(this, 'Binding', {
      metadata: { name: RESTART_SLOTS_ROLE, namespace: s.namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: role.name },
      subjects: [{ kind: 'ServiceAccount', name: INSTALLER_SERVICE_ACCOUNT, namespace: s.namespace }],
    });
  }
}
