import { Construct } from 'constructs';
import { HOST_CHANGED_LABEL, INSTALLER_ENTRYPOINT } from '../catalog';
import * as k8s from '../imports/k8s';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';
import { setValueField } from './value-ref';

export interface UninstallWaitJobProps {
  /** Settings the Job is configured from. */
  readonly settings: DeployerSettings;
  /** ServiceAccount allowed to list nodes. */
  readonly serviceAccountName: string;
  /**
   * How long to wait for every node to be restored before failing.
   * @default 240
   */
  readonly timeoutSeconds?: number;
}

export const UNINSTALL_WAIT_JOB = 'knawd-uninstall-wait';

/**
 * A Job that completes once no node carries the host-changed label, i.e. once the remover has restored every
 * node (config byte for byte, files gone, runtime restarted and verified) — not merely stopped scheduling there.
 * Helm waits for Job hooks (not for DaemonSets), so this is what makes an uninstall wait for the nodes; when it
 * times out the hook fails and Helm keeps the release.
 */
export class UninstallWaitJob extends Construct {
  constructor(scope: Construct, id: string, props: UninstallWaitJobProps) {
    super(scope, id);
    const s = props.settings;
    const timeout = props.timeoutSeconds ?? 240;
    const labels = standardLabels('uninstall-wait', s.version);
    const job = new k8s.KubeJob(this, 'Resource', {
      metadata: { name: UNINSTALL_WAIT_JOB, namespace: s.namespace, labels },
      spec: {
        backoffLimit: 0,
        // The wait itself is bounded; the deadline only guards against a hung pod.
        activeDeadlineSeconds: timeout + 60,
        template: {
          metadata: { labels },
          spec: {
            serviceAccountName: props.serviceAccountName,
            restartPolicy: 'Never',
            securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'wait',
                image: s.image,
                imagePullPolicy: s.imagePullPolicy,
                command: [...INSTALLER_ENTRYPOINT],
                args: ['wait-removed', '--timeout-seconds', String(timeout), '--label', `${HOST_CHANGED_LABEL.key}=${HOST_CHANGED_LABEL.value}`],
                resources: {
                  requests: { cpu: k8s.Quantity.fromString('10m'), memory: k8s.Quantity.fromString('64Mi') },
                  limits: { cpu: k8s.Quantity.fromString('100m'), memory: k8s.Quantity.fromString('128Mi') },
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
