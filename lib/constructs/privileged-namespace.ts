import { Construct } from 'constructs';
import * as k8s from '../imports/k8s';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface PrivilegedNamespaceProps {
  /** Settings the namespace is named from. */
  readonly settings: DeployerSettings;
}

/**
 * The installer's namespace, labelled for PodSecurity `privileged`: the agent cannot run under `baseline`.
 * Nothing else belongs in it.
 */
export class PrivilegedNamespace extends Construct {
  constructor(scope: Construct, id: string, props: PrivilegedNamespaceProps) {
    super(scope, id);
    const s = props.settings;
    new k8s.KubeNamespace(this, 'Resource', {
      metadata: {
        name: s.namespace,
        labels: {
          ...standardLabels('namespace', s.version),
          'pod-security.kubernetes.io/enforce': 'privileged',
          'pod-security.kubernetes.io/audit': 'privileged',
          'pod-security.kubernetes.io/warn': 'privileged',
        },
      },
    });
  }
}
