/**
 * The installer images a release publishes, one per ociType: `<repository>:<tag>-<ociType>`. The constructs and
 * the chart default to them, and the installer names the one a refused node needs, from here.
 */
import { version } from '../../package.json';

export const DEFAULT_IMAGE_REPOSITORY = 'quay.io/knawd/deployer';
export const DEFAULT_IMAGE_TAG = `v${version}`;

/** The installer image that carries `ociType`'s build. */
export function installerImageName(ociType: string, repository: string = DEFAULT_IMAGE_REPOSITORY, tag: string = DEFAULT_IMAGE_TAG): string {
  return `${repository}:${tag}-${ociType}`;
}
