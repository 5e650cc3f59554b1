/**
 * The installer images the node tests import: the ones `npm run image` builds (demo/cluster/images/built-image.ts),
 * one per ociType, with the project's WASI test image that `helm test` runs by default. This is the one place
 * that says which images those are.
 */
import { RUNTIME_NAMES, RuntimeName } from '../../../lib/catalog/runtimes';
import { join } from 'node:path';
import { builtImage, IMAGE_OUT, perOciType } from './built-image';

export interface InstallerImage {
  /** Image repository, as `image.repository` of the chart. */
  readonly repository: string;
  /** The base tag (`v2.0.0`): the chart appends `-<ociType>`, so the image of an ociType is `<repository>:<tag>-<ociType>`. */
  readonly tag: string;
  /** Each ociType's image: its full name, manifest digest (amd64) and OCI archive for `ctr images import`. */
  readonly images: Readonly<Record<RuntimeName, { readonly name: string; readonly digest: string; readonly archive: string }>>;
  /**
   * The WASI test image's OCI index archive (every architecture), name and index digest: the chart's default
   * `test.image` names it by that digest (lib/catalog/wasi-test-image.json), which a node of any architecture resolves.
   */
  readonly wasiArchive: string;
  readonly wasiName: string;
  readonly wasiDigest: string;
  /** The WASM HTTP service image's OCI index archive, name and index digest (lib/catalog/wasm-service-image.json). */
  readonly serviceArchive: string;
  readonly serviceName: string;
  readonly serviceDigest: string;
  /** One line for test output. */
  readonly description: string;
}

export function installerImage(): InstallerImage {
  const image = builtImage();
  const { wasiTestImage: wasi, wasmServiceImage: service } = image.record.index;
  const first = image.installers[RUNTIME_NAMES[0]];
  const suffix = `-${RUNTIME_NAMES[0]}`;
  if (!first.name.endsWith(suffix)) throw new Error(`installer image ${first.name} is not named <repository>:<tag>${suffix}`);
  const base = first.name.slice(0, -suffix.length);
  const colon = base.lastIndexOf(':');
  const images = perOciType((ociType) => {
    const { name, digest, archive } = image.installers[ociType];
    if (name !== `${base}-${ociType}`) throw new Error(`installer image ${name} is not ${base}-${ociType}`);
    return { name, digest, archive };
  });
  return {
    repository: base.slice(0, colon),
    tag: base.slice(colon + 1),
    images,
    wasiArchive: join(IMAGE_OUT, 'index', wasi.archive),
    wasiName: wasi.name,
    wasiDigest: wasi.digest,
    serviceArchive: join(IMAGE_OUT, 'index', service.archive),
    serviceName: service.name,
    serviceDigest: service.digest,
    description: `installer images ${base}-<ociType> (${RUNTIME_NAMES.map((t) => `${t} ${images[t].digest.slice(0, 19)}`).join(', ')}; built by npm run image)`,
  };
}
