/**
 * The chart as released: dist/charts/knawd-deployer with its default values pinned to the pushed images' index
 * digests (`image.digests`: every ociType's installer image; `test.image`) and its Artifact Hub metadata naming
 * them (and the signing key), packaged reproducibly (sorted entries, fixed times and owners, gzip without a name
 * or time), so that releasing one build twice pushes the same bytes.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import { installerImageName } from '../lib/render/chart/chart-files';

export interface PinnedImage {
  /** `registry/path/name` without tag or digest. */
  readonly repository: string;
  readonly digest: string;
}

/** An ociType's installer image as released. */
export interface PinnedInstaller extends PinnedImage {
  readonly ociType: string;
}

export interface ChartPins {
  /** The installer image of every ociType: all under one repository (`<registry>/deployer`). */
  readonly installers: readonly PinnedInstaller[];
  /** The WASI test image `helm test` runs. */
  readonly testImage: PinnedImage;
  /** Artifact Hub's signKey: the cosign public key's fingerprint, and where users fetch the key. */
  readonly signKey?: { readonly fingerprint: string; readonly url?: string };
}

function edit(file: string, apply: (doc: ReturnType<typeof parseDocument>) => void): void {
  const doc = parseDocument(readFileSync(file, 'utf8'));
  apply(doc);
  writeFileSync(file, doc.toString({ lineWidth: 0 }));
}

/** Copies the chart `src` to `<dir>/<name>` with the pins applied; returns that directory. */
export function pinnedChart(src: string, dir: string, name: string, pins: ChartPins): string {
  const out = join(dir, name);
  cpSync(src, out, { recursive: true });
  const repositories = [...new Set(pins.installers.map((i) => i.repository))];
  if (repositories.length !== 1) throw new Error(`the installer images must share one repository (the chart has one image.repository); got ${repositories.join(', ') || 'none'}`);
  edit(join(out, 'values.yaml'), (doc) => {
    doc.setIn(['image', 'repository'], repositories[0]);
    doc.setIn(['image', 'digests'], doc.createNode(Object.fromEntries(pins.installers.map((i) => [i.ociType, i.digest]))));
    doc.setIn(['test', 'image'], `${pins.testImage.repository}@${pins.testImage.digest}`);
  });
  const images = [
    ...pins.installers.map((i) => ({ name: installerImageName(i.repository, i.ociType), image: `${i.repository}@${i.digest}` })),
    { name: pins.testImage.repository.split('/').pop()!, image: `${pins.testImage.repository}@${pins.testImage.digest}` },
  ];
  edit(join(out, 'Chart.yaml'), (doc) => {
    doc.setIn(['annotations', 'artifacthub.io/images'], stringify(images, { lineWidth: 0 }));
    if (pins.signKey) {
      doc.setIn(['annotations', 'artifacthub.io/signKey'], stringify({ fingerprint: pins.signKey.fingerprint, ...(pins.signKey.url ? { url: pins.signKey.url } : {}) }, { lineWidth: 0 }));
    }
  });
  return out;
}

/** `<chartDir>` as a Helm chart archive: the same input gives the same bytes. */
export function packageChart(chartDir: string, archive: string): void {
  const parent = join(chartDir, '..');
  const name = chartDir.slice(parent.length + 1);
  const tar = execFileSync(
    'tar',
    ['--sort=name', '--mtime=@0', '--owner=0', '--group=0', '--numeric-owner', '--mode=u=rwX,go=rX', '--format=ustar', '-C', parent, '-cf', '-', name],
    { maxBuffer: 64 << 20 },
  );
  writeFileSync(archive, execFileSync('gzip', ['-9', '-n'], { input: tar, maxBuffer: 64 << 20 }));
}
