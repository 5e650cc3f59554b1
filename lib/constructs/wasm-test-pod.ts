import { Construct } from 'constructs';
import * as k8s from '../imports/k8s';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

/** The WASI example the original chart's test ran. */
export const WASM_TEST_IMAGE = 'wasmedge/example-wasi:latest';

export interface WasmTestPodProps {
  /** Settings the pod is configured from (namespace, RuntimeClass). */
  readonly settings: DeployerSettings;
  /**
   * Image of the WASI example the pod runs.
   * @default "wasmedge/example-wasi:latest"
   */
  readonly image?: string;
}

/**
 * A pod that runs a WASI example through the RuntimeClass, with the annotation that makes crun pick its WASM
 * handler for `.wasm` entrypoints: proof that a node really runs WebAssembly. The chart uses it as `helm test`.
 */
export class WasmTestPod extends Construct {
  constructor(scope: Construct, id: string, props: WasmTestPodProps) {
    super(scope, id);
    const s = props.settings;
    new k8s.KubePod(this, 'Resource', {
      metadata: {
        name: 'knawd-wasm-test',
        namespace: s.namespace,
        labels: standardLabels('runtime-class', s.version),
        annotations: { 'module.wasm.image/variant': 'compat-smart' },
      },
      spec: {
        runtimeClassName: s.runtimeClassName,
        restartPolicy: 'Never',
        securityContext: { runAsNonRoot: true, runAsUser: 65534, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'wasi',
            image: props.image ?? WASM_TEST_IMAGE,
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
          },
        ],
      },
    });
  }
}
