import { Construct } from 'constructs';
import { InvalidVariantError } from '../catalog';
import { KnativeRbac } from './knative-rbac';
import { KnawdDeployerProps } from './props';
import { DeployerSettings, resolveSettings } from './settings';

/**
 * The installer's permission on Knative Serving, for a {@link KnawdDeployer} with `patchKnative: "auto"` (the
 * default), which leaves it out because a synth cannot see whether the cluster runs Knative. Add it, with the
 * same props, where Knative Serving is installed (its RoleBindings live in Knative's namespace); the installer
 * pods pick it up when they next start (`kubectl rollout restart daemonset/knawd-installer`).
 */
export class KnawdKnativeAccess extends Construct {
  /** The props with defaults applied and checked. */
  public readonly settings: DeployerSettings;

  constructor(scope: Construct, id: string, props: KnawdDeployerProps = {}) {
    super(scope, id);
    if (props.patchKnative === false) {
      throw new InvalidVariantError('KnawdKnativeAccess with patchKnative false grants nothing the installer uses; use patchKnative "auto" or true');
    }
    this.settings = resolveSettings(props);
    new KnativeRbac(this, 'Rbac', { settings: this.settings });
  }
}
