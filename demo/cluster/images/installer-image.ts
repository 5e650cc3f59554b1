/**
 * The installer image the node tests import: the one `npm run image` builds (demo/cluster/images/built-image.ts), with the
 * project's WASI test image that `helm test` runs by default. This is the one place that says which image that is.
 */
import { builtImage } from './built-image';

export interface InstallerImage {
  /** Image reference, as `image.repository:tag` of the chart. */
  readonly repository: string;
  readonly tag: string;
  /** Manifest digest, for `image.digest`. */
  readonly digest: string;
  /** OCI archive for `ctr images import`. */
  readonly archive: string;
  /** The WASI test image's archive (the chart's default `test.image`), name and manifest digest. */
  readonly wasiArchive: string;
  readonly wasiName: string;
  readonly wasiDigest: string;
  /** The WASM HTTP service image's archive, name and manifest digest. */
  readonly serviceArchive: string;
  readonly serviceName: string;
  readonly serviceDigest: string;
  /** One line for test output. */
  readonly description: string;
}

export function installerImage(): InstallerImage {
  const image = builtImage();
  const colon = image.name.lastIndexOf(':');
  return {
    repository: image.name.slice(0, colon),
    tag: image.name.slice(colon + 1),
    digest: image.digest,
    archive: image.archive,
    wasiArchive: image.wasi.archive,
    wasiName: image.wasi.name,
    wasiDigest: image.wasi.digest,
    serviceArchive: image.service.archive,
    serviceName: image.service.name,
    serviceDigest: image.service.digest,
    description: `installer image ${image.name} (${image.digest}, built by npm run image)`,
  };
}
