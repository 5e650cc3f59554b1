import { Construct } from 'constructs';
import { NodeRestrictionPolicy } from './node-restriction-policy';
import { KnawdDeployerProps } from './props';
import { DeployerSettings, resolveSettings } from './settings';

/**
 * The admission policy that lets the installer change only its own Node and there only the node contract's
 * labels, its status annotation and (when `startupTaint` is set) that taint, by removing it; for a {@link KnawdDeployer} with `nodeRestrictionPolicy: "auto"` (the default), which leaves it out because
 * a synth cannot see whether the cluster serves ValidatingAdmissionPolicy (Kubernetes 1.30+). Add it, with the
 * same props, where it does.
 */
export class KnawdNodeRestriction extends Construct {
  /** The props with defaults applied and checked. */
  public readonly settings: DeployerSettings;

  constructor(scope: Construct, id: string, props: KnawdDeployerProps = {}) {
    super(scope, id);
    this.settings = resolveSettings(props);
    new NodeRestrictionPolicy(this, 'Policy', { settings: this.settings });
  }
}
