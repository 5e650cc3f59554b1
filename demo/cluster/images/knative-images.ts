/**
 * Knative Serving's five images, made here from the static binaries `npm run tools` builds from knative.dev/serving
 * (`.tools/knative-serving/release/bin`): each is FROM scratch plus its binary, as `ko` publishes them (entrypoint
 * the binary, a numeric non-root user: Knative's Deployments and its queue-proxy set `runAsNonRoot`). Built once per
 * release and per content of the builders, kept in the tools cache (`<cache>/knative-images/<key>/`); the archives
 * are reproducible (oci-image.ts: fixed mtimes, sorted entries, deterministic gzip). Entries unused for a week are
 * pruned.
 */
import { cachedEntry } from './cache-entry';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { buildOciImage, SingleLayerImage } from './oci-image';
import { CACHE } from './built-image';
import { REPO } from '../process';

/** The components, by the `ko://knative.dev/serving/cmd/<name>` their manifests name. */
export const KNATIVE_COMPONENTS = ['controller', 'webhook', 'activator', 'autoscaler', 'queue'] as const;
export type KnativeComponent = (typeof KNATIVE_COMPONENTS)[number];

/** What `npm run tools` leaves for Knative Serving: binaries, config/core, the module versions. */
export interface KnativeRelease {
  readonly dir: string;
  /** knative.dev/serving, e.g. v0.47.1. */
  readonly serving: string;
  readonly networking: string;
  readonly caching: string;
  /** config/core as the release has it (with the networking and caching files its symlinks name). */
  readonly configCore: string;
}

export interface KnativeImages {
  readonly release: KnativeRelease;
  readonly images: Readonly<Record<KnativeComponent, SingleLayerImage>>;
}

/** Knative's images run as this user, the one ko's default base image (distroless static) names `nonroot`. */
export const KNATIVE_USER = '65532';

const SOURCES = ['demo/cluster/images/knative-images.ts', 'demo/cluster/images/oci-image.ts'];

export function knativeRelease(): KnativeRelease {
  const link = path.join(REPO, '.tools', 'knative-serving', 'release');
  if (!fs.existsSync(path.join(link, 'modules.json'))) {
    throw new Error(`${link} is missing: \`npm run tools\` builds Knative Serving (KNATIVE_SERVING_VERSION in tools/versions.env)`);
  }
  const dir = fs.realpathSync(link);
  const modules = JSON.parse(fs.readFileSync(path.join(dir, 'modules.json'), 'utf8')) as { serving: string; networking: string; caching: string };
  return { dir, ...modules, configCore: path.join(dir, 'config', 'core') };
}

export function imageName(component: KnativeComponent, release: KnativeRelease): string {
  return `knawd.test/knative/${component}:${release.serving}`;
}

function inputsKey(release: KnativeRelease): string {
  const hash = createHash('sha256').update(JSON.stringify(release));
  for (const s of SOURCES) hash.update(fs.readFileSync(path.join(REPO, s)));
  for (const c of KNATIVE_COMPONENTS) {
    const st = fs.statSync(path.join(release.dir, 'bin', c));
    hash.update(`${c} ${st.size} ${st.mtimeMs}`);
  }
  return `${release.serving}-${hash.digest('hex').slice(0, 12)}`;
}

/** The five images, built on first use and then read from the cache. */
export function knativeImages(): KnativeImages {
  const release = knativeRelease();
  const { dir, index: stored } = cachedEntry(path.join(CACHE, 'knative-images'), inputsKey(release), (partial) =>
    Object.fromEntries(
      KNATIVE_COMPONENTS.map((c) => {
        const image = buildOciImage({ name: imageName(c, release), files: [{ path: `/ko-app/${c}`, from: path.join(release.dir, 'bin', c) }], entrypoint: [`/ko-app/${c}`], user: KNATIVE_USER }, partial);
        return [c, { ...image, archive: path.relative(partial, image.archive) }];
      }),
    ) as Record<KnativeComponent, SingleLayerImage>,
  );
  const images = Object.fromEntries(KNATIVE_COMPONENTS.map((c) => [c, { ...stored[c], archive: path.join(dir, stored[c].archive) }])) as Record<KnativeComponent, SingleLayerImage>;
  return { release, images };
}
