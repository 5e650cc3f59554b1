import { KnawdDeployerProps } from '../../constructs/props';
import { valueRef } from '../../constructs/value-ref';

/** The props the chart renders the constructs with: every chart value is a reference. */
export function chartProps(): KnawdDeployerProps {
  return {
    target: valueRef('target'),
    ociType: valueRef('ociType'),
    image: { reference: valueRef('image'), pullPolicy: valueRef('pullPolicy') },
    logLevel: valueRef('logLevel'),
    autoRestart: valueRef('autoRestart'),
    patchKnative: valueRef('patchKnative'),
    nodeRestrictionPolicy: valueRef('nodeRestrictionPolicy'),
    knative: { runtimeClassName: { selector: valueRef('knativeRuntimeClassSelector') } },
    namespace: valueRef('namespace'),
    createNamespace: false,
    nodeSelector: valueRef('nodeSelector'),
    tolerations: valueRef('tolerations'),
    resources: valueRef('resources'),
    priorityClassName: valueRef('priorityClassName'),
    imagePullSecrets: valueRef('imagePullSecrets'),
    updateStrategy: valueRef('updateStrategy'),
    runtimeClassName: valueRef('runtimeClassName'),
    handler: valueRef('handler'),
    hostPrefix: valueRef('hostPrefix'),
    maxConcurrentRestarts: valueRef('maxConcurrentRestarts'),
    driftCheckSeconds: valueRef('driftCheckSeconds'),
    uninstallPodsTimeoutSeconds: valueRef('uninstallPodsTimeoutSeconds'),
    startupTaint: valueRef('startupTaint'),
  };
}
