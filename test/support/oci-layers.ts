/**
 * The layers of the one image in an OCI archive, as a node pulls them: each layer's digest, compressed size and
 * the paths it holds (directories end in "/"), for the image tests' checks of what each layer carries.
 */
import { execFileSync } from 'node:child_process';

export interface OciLayer {
  readonly digest: string;
  readonly size: number;
  readonly entries: readonly string[];
}

/** The manifest (and config) of the one image in `archive`. */
export function manifestOf(archive: string): { readonly digest: string; readonly size: number; readonly config: { digest: string; size: number }; readonly layers: ReadonlyArray<{ digest: string; size: number }> } {
  const member = (name: string): Buffer => execFileSync('tar', ['-xOf', archive, name], { maxBuffer: 1 << 30 });
  const index = JSON.parse(member('index.json').toString('utf8')) as { manifests: Array<{ digest: string; size: number }> };
  if (index.manifests.length !== 1) throw new Error(`${archive}: expected one manifest, found ${index.manifests.length}`);
  const [{ digest, size }] = index.manifests;
  const manifest = JSON.parse(member(`blobs/sha256/${digest.replace(/^sha256:/, '')}`).toString('utf8')) as { config: { digest: string; size: number }; layers: Array<{ digest: string; size: number }> };
  return { digest, size, config: manifest.config, layers: manifest.layers };
}

export function layersOf(archive: string): OciLayer[] {
  return manifestOf(archive).layers.map(({ digest, size }) => {
    const list = execFileSync('sh', ['-c', 'tar -xOf "$0" "$1" | tar -tzf -', archive, `blobs/sha256/${digest.replace(/^sha256:/, '')}`], { encoding: 'utf8', maxBuffer: 1 << 28 });
    return { digest, size, entries: list.split('\n').filter(Boolean) };
  });
}
