/**
 * Whether this image can install anything on this node at all, decided from the process and the image alone
 * (before the node lock, so a refused run touches nothing on the host): a node of an architecture without a
 * crun build (the index's refusing image: lib/catalog/architectures.ts), or an image without the requested
 * ociType's build (each per-engine image carries one), is refused with one line naming what it needs.
 */
import { BUILT_ARCHITECTURES, RuntimeSpec } from '../catalog';
import { readManifest, runtimeRefusal } from './artifacts';
import { Effects } from './effects';
import { NoBuildForNode } from './errors';
import { ociArchitecture } from './installer-image';

const BUILT: readonly string[] = BUILT_ARCHITECTURES;

/** The refusal of a node of `architecture` (OCI name), or undefined when this image builds for it. */
export function architectureRefusal(architecture: string): NoBuildForNode | undefined {
  if (BUILT.includes(architecture)) return undefined;
  const built = BUILT.map((a) => `linux/${a}`).join(', ');
  return new NoBuildForNode(
    `no crun build for linux/${architecture}; knawd-deployer is built for ${built}; nothing was changed`,
    `WebAssembly workloads run on the ${built} nodes only; uninstalling (or remove) takes this node's label off`,
  );
}

/**
 * The refusal of this node by this image: its architecture first, then (with a runtime) the image's builds.
 * A missing or damaged artifacts.json is not a refusal here: locating the artifacts reports it as ever.
 */
export function nodeRefusal(artifactsRoot: string, runtime: RuntimeSpec | undefined, architecture: string): NoBuildForNode | undefined {
  const byArchitecture = architectureRefusal(architecture);
  if (byArchitecture || !runtime) return byArchitecture;
  let read: ReturnType<typeof readManifest>;
  try {
    read = readManifest(artifactsRoot, '');
  } catch {
    return undefined;
  }
  return runtimeRefusal(read.manifest, read.manifestPath, runtime.name);
}

/** The node's architecture: as the effects give it, else this process's. */
export function architectureOf(effects: Pick<Effects, 'architecture'>): string {
  return effects.architecture ?? ociArchitecture();
}
