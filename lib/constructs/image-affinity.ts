import { BUILT_ARCHITECTURES, ImageArchitecture, UNBUILT_ARCHITECTURES } from '../catalog';

/** The node label the kubelet sets to its GOARCH, which is the OCI architecture an index's manifests name. */
const ARCH_LABEL = 'kubernetes.io/arch';

function onArchitectures(architectures: readonly ImageArchitecture[]) {
  return {
    nodeAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: {
        nodeSelectorTerms: [{ matchExpressions: [{ key: ARCH_LABEL, operator: 'In', values: [...architectures] }] }],
      },
    },
  };
}

/**
 * The installer DaemonSets' nodes: every architecture the installer image's index carries an image for (on an
 * unbuilt one the installer refuses and labels its node failed); a node of any other architecture could pull
 * nothing, so it gets no pod.
 */
export function nodeAgentAffinity() {
  return onArchitectures([...BUILT_ARCHITECTURES, ...UNBUILT_ARCHITECTURES]);
}

/** A pod that runs the installer and may run on any one node: only where the image is a real build. */
export function builtImageAffinity() {
  return onArchitectures(BUILT_ARCHITECTURES);
}
