import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { allVariants, AUTO_TARGET, RuntimeName, runtimesForAuto, TargetChoice, TargetName } from '../catalog';
import { KnawdDeployer, KnawdDeployerProps, KnawdKnativeAccess, KnawdNodeRestriction, KnawdUninstaller } from '../constructs';

/** The construct id every renderer uses, so objects come out the same wherever they are rendered. */
export const CHART_ID = 'knawd-deployer';

/** An app with one chart holding what `build` adds. */
function appWith(build: (chart: Chart) => Construct): { app: App; chart: Chart } {
  const app = new App();
  const chart = new Chart(app, CHART_ID);
  build(chart);
  return { app, chart };
}

const deployer = (props: KnawdDeployerProps) => (chart: Chart) => new KnawdDeployer(chart, 'Deployer', props);
const uninstaller = (props: KnawdDeployerProps) => (chart: Chart) => new KnawdUninstaller(chart, 'Uninstaller', props);
const knativeAccess = (props: KnawdDeployerProps) => (chart: Chart) => new KnawdKnativeAccess(chart, 'Knative', props);
const nodeRestriction = (props: KnawdDeployerProps) => (chart: Chart) => new KnawdNodeRestriction(chart, 'NodeRestriction', props);

/** The Kubernetes objects of a {@link KnawdDeployer}, as plain JSON. */
export function installObjects(props: KnawdDeployerProps): any[] {
  return appWith(deployer(props)).chart.toJson();
}

/** The Kubernetes objects of a {@link KnawdUninstaller}, as plain JSON. */
export function uninstallObjects(props: KnawdDeployerProps): any[] {
  return appWith(uninstaller(props)).chart.toJson();
}

/** The Kubernetes objects of a {@link KnawdKnativeAccess}, as plain JSON. */
export function knativeObjects(props: KnawdDeployerProps): any[] {
  return appWith(knativeAccess(props)).chart.toJson();
}

export function renderInstallManifest(props: KnawdDeployerProps): string {
  return appWith(deployer(props)).app.synthYaml();
}

export function renderUninstallManifest(props: KnawdDeployerProps): string {
  return appWith(uninstaller(props)).app.synthYaml();
}

export function renderKnativeManifest(props: KnawdDeployerProps): string {
  return appWith(knativeAccess(props)).app.synthYaml();
}

/** The Kubernetes objects of a {@link KnawdNodeRestriction}, as plain JSON. */
export function nodeRestrictionObjects(props: KnawdDeployerProps): any[] {
  return appWith(nodeRestriction(props)).chart.toJson();
}

export function renderNodeRestrictionManifest(props: KnawdDeployerProps): string {
  return appWith(nodeRestriction(props)).app.synthYaml();
}

/** One pair of raw manifests (install, uninstall): the directory under dist/manifests and the props it renders. */
export interface ManifestVariant {
  readonly dir: string;
  readonly props: { readonly target: TargetChoice; readonly ociType: RuntimeName; readonly openshift?: boolean };
}

/**
 * Every raw manifest pair: one per shipped (target, ociType), and for `auto` (which a synth cannot tell an
 * OpenShift cluster for) one without the SCC (`auto/`) and one with it (`auto-openshift/`).
 */
export function manifestVariants(): ManifestVariant[] {
  const auto = runtimesForAuto().flatMap((r): ManifestVariant[] => [
    { dir: AUTO_TARGET, props: { target: AUTO_TARGET, ociType: r.name as RuntimeName } },
    { dir: `${AUTO_TARGET}-openshift`, props: { target: AUTO_TARGET, ociType: r.name as RuntimeName, openshift: true } },
  ]);
  return [...allVariants().map(({ target, runtime }) => ({ dir: target.name, props: { target: target.name as TargetName, ociType: runtime.name as RuntimeName } })), ...auto];
}
