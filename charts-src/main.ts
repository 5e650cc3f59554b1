/**
 * The cdk8s app that renders dist/: for every shipped (target, ociType) pair, and for target auto with and
 * without the OpenShift SCC, an install and an uninstall manifest; and the installer's Knative permission as a
 * file of its own (patchKnative "auto" leaves it out of the install manifests, so that they apply on a cluster
 * without Knative). Output is written fresh each time, so a file for a pair that is no longer shipped disappears.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { manifestVariants, renderInstallManifest, renderKnativeManifest, renderNodeRestrictionManifest, renderUninstallManifest } from '../lib/render/manifests';
import { synthChart } from './chart';
import { knativeManifestHeader, manifestHeader, nodeRestrictionManifestHeader } from './manifest-header';
import { pinnedVersions, SUPPORT_MATRIX_PAGE, withSupportMatrix } from './support-matrix';

/** For synth.mjs's line saying what it wrote. */
export { SUPPORT_MATRIX_PAGE };

/** Writes everything under `dist`; `chartStatic` holds the chart's hand-written parts. */
export function synthAll(dist: string, chartStatic = join(__dirname, 'chart')): void {
  synthManifests(dist);
  synthChart(dist, chartStatic);
}

/** Brings the generated support matrix of {@link SUPPORT_MATRIX_PAGE} under `repo` up to date; true when it changed. */
export function synthSupportMatrix(repo: string): boolean {
  const pagePath = join(repo, SUPPORT_MATRIX_PAGE);
  const page = readFileSync(pagePath, 'utf8');
  const updated = withSupportMatrix(page, pinnedVersions(repo));
  if (updated !== page) writeFileSync(pagePath, updated);
  return updated !== page;
}

export function synthManifests(dist: string): void {
  const root = join(dist, 'manifests');
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  writeFileSync(join(root, 'knative.yaml'), knativeManifestHeader() + renderKnativeManifest({}));
  writeFileSync(join(root, 'node-restriction.yaml'), nodeRestrictionManifestHeader() + renderNodeRestrictionManifest({}));
  for (const variant of manifestVariants()) {
    const { props } = variant;
    const dir = join(root, variant.dir);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${props.ociType}.yaml`), manifestHeader('install', variant) + renderInstallManifest(props));
    writeFileSync(join(dir, `${props.ociType}.uninstall.yaml`), manifestHeader('uninstall', variant) + renderUninstallManifest(props));
  }
}

if (require.main === module) {
  synthAll(join(__dirname, '..', 'dist'));
  synthSupportMatrix(join(__dirname, '..'));
}
