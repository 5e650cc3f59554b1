import { Construct } from 'constructs';
import { WASM_TEST_IMAGE } from '../catalog';
import * as k8s from '../imports/k8s';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface WasmTestPodProps {
  /** Settings the pod is configured from (namespace, RuntimeClass). */
  readonly settings: DeployerSettings;
  /**
   * Image of the WASI program the pod runs (its entry point a `.wasm` module, its user numeric and not root).
   * @default - the project's WASI test image, pinned by digest (see lib/catalog/test-image.ts)
   */
  readonly image?: string;
}

export const WASM_TEST_POD = 'knawd-wasm-test';

/**
 * A pod that runs a WASI program through the RuntimeClass, with no annotation (the handler's crun runs a `.wasm`
 * entrypoint on its engine by itself): proof that a node really runs WebAssembly. The chart uses it as `helm test`.
 * It asks for nothing a restricted namespace refuses (PodSecurity restricted, OpenShift's restricted-v2): no
 * fixed user (the image's numeric user, or the namespace's range on OpenShift), no token, no privilege, no
 * writable root, small bounded resources.
 */
export class WasmTestPod extends Construct {
  constructor(scope: Construct, id: string, props: WasmTestPodProps) {
    super(scope, id);
    const s = props.settings;
    new k8s.KubePod(this, 'Resource', {
      metadata: {
        name: WASM_TEST_POD,
        namespace: s.namespace,
        labels: standardLabels('runtime-class', s.version),
      },
      spec: {
        runtimeClassName: s.runtimeClassName,
        restartPolicy: 'Never',
        automountServiceAccountToken: false,
        securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'wasi',
            image: props.image ?? WASM_TEST_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            resources: {
              requests: { 'cpu': k8s.Quantity.fromString('10m'), 'memory': k8s.Quantity.fromString('16Mi'), 'ephemeral-storage': k8s.Quantity.fromString('1Mi') },
              limits: { 'cpu': k8s.Quantity.fromString('100m'), 'memory': k8s.Quantity.fromString('64Mi'), 'ephemeral-storage': k8s.Quantity.fromString('16Mi') },
            },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    });
  }
}
