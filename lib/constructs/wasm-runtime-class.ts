import { Construct } from 'constructs';
import { INSTALLED_LABEL } from '../catalog';
import * as k8s from '../imports/k8s';
import { standardLabels } from './labels';
import { DeployerSettings } from './settings';

export interface WasmRuntimeClassProps {
  /** Settings the RuntimeClass is named from. */
  readonly settings: DeployerSettings;
}

/**
 * The RuntimeClass WASM workloads name. Its scheduling selects only nodes the installer has labelled after a
 * successful install, so a WASM pod never lands on a node that cannot run it.
 */
export class WasmRuntimeClass extends Construct {
  constructor(scope: Construct, id: string, props: WasmRuntimeClassProps) {
    super(scope, id);
    const s = props.settings;
    new k8s.KubeRuntimeClass(this, 'Resource', {
      metadata: { name: s.runtimeClassName, labels: standardLabels('runtime-class', s.version) },
      handler: s.handler,
      scheduling: { nodeSelector: { [INSTALLED_LABEL.key]: INSTALLED_LABEL.value } },
    });
  }
}
