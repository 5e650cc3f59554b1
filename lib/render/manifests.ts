import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { KnawdDeployer, KnawdDeployerProps, KnawdUninstaller } from '../constructs';

/** The construct id every renderer uses, so objects come out the same wherever they are rendered. */
export const CHART_ID = 'knawd-deployer';

/** Synthesizes constructs built by `build` into one multi-document YAML string. */
export function synthYaml(build: (chart: Chart) => Construct): string {
  const app = new App();
  build(new Chart(app, CHART_ID));
  return app.synthYaml();
}

/** The Kubernetes objects of a {@link KnawdDeployer}, as plain JSON. */
export function installObjects(props: KnawdDeployerProps): any[] {
  return synthObjects((chart) => new KnawdDeployer(chart, 'Deployer', props));
}

/** The Kubernetes objects of a {@link KnawdUninstaller}, as plain JSON. */
export function uninstallObjects(props: KnawdDeployerProps): any[] {
  return synthObjects((chart) => new KnawdUninstaller(chart, 'Uninstaller', props));
}

function synthObjects(build: (chart: Chart) => Construct): any[] {
  const app = new App();
  const chart = new Chart(app, CHART_ID);
  build(chart);
  return chart.toJson();
}

export function renderInstallManifest(props: KnawdDeployerProps): string {
  return synthYaml((chart) => new KnawdDeployer(chart, 'Deployer', props));
}

export function renderUninstallManifest(props: KnawdDeployerProps): string {
  return synthYaml((chart) => new KnawdUninstaller(chart, 'Uninstaller', props));
}
