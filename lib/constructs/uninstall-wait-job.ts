import { Construct } from 'constructs';
import { HOST_CHANGED_LABEL, INSTALLER_ENTRYPOINT, NODE_EVENT_NAMESPACE } from '../catalog';
import * as k8s from '../imports/k8s';
import { includePart } from './conditions';
import { builtImageAffinity } from './image-affinity';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';
import { setValueField } from './value-ref';

export interface UninstallWaitJobProps {
  /** Settings the Job is configured from (its bound follows the remover's wait for pods). */
  readonly settings: DeployerSettings;
}

export const UNINSTALL_WAIT_JOB = 'knawd-uninstall-wait';
/** The Job's own identity: it only watches nodes, so it carries none of the installer's permissions. */
export const UNINSTALL_WAIT_SERVICE_ACCOUNT = 'knawd-uninstall-wait';
/**
 * OpenShift's built-in SCCs that admit a fixed non-root user (restricted-v2 assigns one from the namespace's
 * range instead): nonroot-v2 since OpenShift 4.11, nonroot before.
 */
export const NONROOT_SCCS = ['nonroot-v2', 'nonroot'];

/**
 * A Job that completes once no node carries the host-changed label, i.e. once the remover has restored every
 * node (config byte for byte, files gone, runtime restarted and verified) — not merely stopped scheduling there.
 * Helm waits for Job hooks (not for DaemonSets), so this is what makes an uninstall wait for the nodes; when it
 * times out the hook fails and Helm keeps the release. It runs as its own ServiceAccount, which may only get,
 * list and watch nodes, and list node events (to quote the removers' reasons when it times out).
 */
export class UninstallWaitJob extends Construct {
  constructor(scope: Construct, id: string, props: UninstallWaitJobProps) {
    super(scope, id);
    const s = props.settings;
    const labels = standardLabels('uninstall-wait', s.version);
    const subject = { kind: 'ServiceAccount', name: UNINSTALL_WAIT_SERVICE_ACCOUNT, namespace: s.namespace };
    new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: { name: UNINSTALL_WAIT_SERVICE_ACCOUNT, namespace: s.namespace, labels } });
    const role = new k8s.KubeClusterRole(this, 'Role', {
      metadata: { name: UNINSTALL_WAIT_SERVICE_ACCOUNT, labels },
      rules: [{ apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] }],
    });
    new k8s.KubeClusterRoleBinding(this, 'Binding', {
      metadata: { name: UNINSTALL_WAIT_SERVICE_ACCOUNT, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role.name },
      subjects: [subject],
    });
    // The removers' reasons (their Warning Events on the nodes) for the message when the wait times out.
    const events = new k8s.KubeRole(this, 'EventsRole', {
      metadata: { name: `${UNINSTALL_WAIT_SERVICE_ACCOUNT}-node-events`, namespace: NODE_EVENT_NAMESPACE, labels },
      rules: [{ apiGroups: [''], resources: ['events'], verbs: ['list'] }],
    });
    new k8s.KubeRoleBinding(this, 'EventsBinding', {
      metadata: { name: `${UNINSTALL_WAIT_SERVICE_ACCOUNT}-node-events`, namespace: NODE_EVENT_NAMESPACE, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: events.name },
      subjects: [subject],
    });
    includePart(s.openshift, () => {
      const part = new Construct(this, 'OpenShift');
      const scc = new k8s.KubeRole(part, 'Role', {
        metadata: { name: `${UNINSTALL_WAIT_SERVICE_ACCOUNT}-scc`, namespace: s.namespace, labels },
        rules: [{ apiGroups: ['security.openshift.io'], resources: ['securitycontextconstraints'], resourceNames: NONROOT_SCCS, verbs: ['use'] }],
      });
      new k8s.KubeRoleBinding(part, 'Binding', {
        metadata: { name: `${UNINSTALL_WAIT_SERVICE_ACCOUNT}-scc`, namespace: s.namespace, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: scc.name },
        subjects: [subject],
      });
      return part;
    });
    const job = new k8s.KubeJob(this, 'Resource', {
      metadata: { name: UNINSTALL_WAIT_JOB, namespace: s.namespace, labels },
      spec: {
        backoffLimit: 0,
        activeDeadlineSeconds: s.uninstallWaitDeadlineSeconds,
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: UNINSTALL_WAIT_SERVICE_ACCOUNT,
            restartPolicy: 'Never',
            affinity: builtImageAffinity(),
            // The installer image runs as root by default: a fixed non-root user (and its group) instead.
            securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'wait',
                image: s.image,
                imagePullPolicy: s.imagePullPolicy,
                command: [...INSTALLER_ENTRYPOINT],
                args: ['wait-removed', '--timeout-seconds', s.uninstallWaitSeconds, '--label', `${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`],
                resources: {
                  requests: { 'cpu': k8s.Quantity.fromString('10m'), 'memory': k8s.Quantity.fromString('64Mi'), 'ephemeral-storage': k8s.Quantity.fromString('1Mi') },
                  limits: { 'cpu': k8s.Quantity.fromString('100m'), 'memory': k8s.Quantity.fromString('128Mi'), 'ephemeral-storage': k8s.Quantity.fromString('16Mi') },
                },
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { drop: ['ALL'] },
                },
              },
            ],
          },
        },
      },
    });
    setValueField(job, '/spec/template/spec/imagePullSecrets', s.imagePullSecrets);
  }
}
