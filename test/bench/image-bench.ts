/**
 * The installer images' sizes, as `npm run image` builds them (one per ociType and architecture, two layers:
 * layer 1 shared by the three, layer 2 the engine's build): what one node pulls per architecture and ociType
 * (issue 29: its architecture's manifest of its engine's index, that manifest's config and every layer), what a
 * registry stores for the three, each image's size, how much the one-store /vendor saves against a layout with one
 * copy of each build per target (as the original image had, /vendor/<target>/...), what the crun-wasm-nodejs build
 * adds (issue 28) and what the installer's own Node.js shares with it.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RUNTIME_NAMES, type VendorBuild, type VendorManifest } from '../../lib/catalog';
import { builtImage, IMAGE_OUT } from '../../demo/cluster/images/built-image';
import { BenchResult } from './measure';

const MiB = 1024 * 1024;
const mib = (bytes: number): number => Number((bytes / MiB).toFixed(1));
/** Issue 29's goal for a wasmtime node's pull. */
const WASMTIME_PULL_GOAL_MIB = 50;

interface Descriptor {
  readonly digest: string;
  readonly size: number;
  readonly platform?: { readonly architecture: string };
}

/** Per architecture the blobs a node of it pulls from the index archive: the manifest, its config and every layer. */
function pulledBlobs(archive: string): Record<string, Descriptor[]> {
  const blob = (d: string): Buffer => execFileSync('tar', ['-xOf', archive, `blobs/sha256/${d.replace(/^sha256:/, '')}`], { maxBuffer: 1 << 30 });
  const [top] = (JSON.parse(execFileSync('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' })) as { manifests: Descriptor[] }).manifests;
  const index = JSON.parse(blob(top.digest).toString('utf8')) as { manifests: Descriptor[] };
  return Object.fromEntries(
    index.manifests.map((m) => {
      const manifest = JSON.parse(blob(m.digest).toString('utf8')) as { config: Descriptor; layers: Descriptor[] };
      return [m.platform?.architecture ?? '?', [m, manifest.config, ...manifest.layers]];
    }),
  );
}

export function benchImage(): BenchResult[] {
  const image = builtImage();
  const indexes = image.record.index.installerImages;
  const pulled = Object.fromEntries(RUNTIME_NAMES.map((t) => [t, pulledBlobs(join(IMAGE_OUT, 'index', indexes[t].archive))]));
  const arches = Object.keys(image.record.architectures);
  const sum = (blobs: readonly Descriptor[]): number => blobs.reduce((n, b) => n + b.size, 0);
  const pulls: BenchResult[] = arches.flatMap((arch) =>
    RUNTIME_NAMES.map((ociType) => {
      const value = mib(sum(pulled[ociType][arch]));
      const goal = ociType === 'crun-wasmtime' ? { target: WASMTIME_PULL_GOAL_MIB, pass: value <= WASMTIME_PULL_GOAL_MIB } : {};
      return { name: `bytes one node pulls (${arch}, ${ociType}, MiB)`, value, unit: 'MiB', ...goal };
    }),
  );
  // A registry stores a blob once: layer 1 is shared by the three images of an architecture.
  const stored: BenchResult[] = arches.map((arch) => {
    const distinct = new Map(RUNTIME_NAMES.flatMap((t) => pulled[t][arch].map((b) => [b.digest, b.size] as const)));
    return { name: `bytes a registry stores for the three installer images (${arch}, MiB)`, value: mib([...distinct.values()].reduce((n, s) => n + s, 0)), unit: 'MiB' };
  });
  const sizes: BenchResult[] = RUNTIME_NAMES.flatMap((t) => [
    { name: `image size compressed (amd64, ${t}, MiB)`, value: mib(image.installers[t].compressedBytes), unit: 'MiB' },
    { name: `image size uncompressed (amd64, ${t}, MiB)`, value: mib(image.installers[t].uncompressedBytes), unit: 'MiB' },
  ]);

  // The builds of the three images together: each image's /vendor holds its own (the same file under the same path in each).
  const builds: Record<string, { build: VendorBuild; vendor: string }> = {};
  const targets: Record<string, Record<string, string>> = {};
  for (const t of RUNTIME_NAMES) {
    const { vendor } = image.installers[t];
    const manifest = JSON.parse(readFileSync(join(vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
    for (const [name, build] of Object.entries(manifest.builds)) builds[name] = { build, vendor };
    for (const [target, runtimes] of Object.entries(manifest.targets)) targets[target] = { ...targets[target], ...runtimes };
  }
  const fileSizes = new Map<string, number>();
  for (const { build, vendor } of Object.values(builds)) for (const f of build.files) fileSizes.set(f.path, statSync(join(vendor, f.path)).size);
  const distinct = [...fileSizes.values()].reduce((n, s) => n + s, 0);
  const buildSize = (name: string): number => builds[name].build.files.reduce((n, f) => n + (fileSizes.get(f.path) ?? 0), 0);
  const perTarget = Object.values(targets).reduce((n, runtimes) => n + Object.values(runtimes).reduce((m, b) => m + buildSize(b), 0), 0);
  const ratio = distinct / perTarget;
  // Files of crun-wasm-nodejs no other build has: what its build adds, and to a pull (gzip -6).
  const others = new Set(Object.entries(builds).filter(([n]) => n !== 'crun-wasm-nodejs').flatMap(([, b]) => b.build.files.map((f) => f.path)));
  const node = builds['crun-wasm-nodejs'];
  const nodeOnly = node.build.files.map((f) => f.path).filter((p) => !others.has(p));
  const nodeOnlyGzip = nodeOnly.reduce((n, rel) => n + gzipSync(readFileSync(join(node.vendor, rel)), { level: 6 }).length, 0);
  // The image's own userland links into /vendor for what both use: bytes stored once instead of twice.
  const rootfs = image.installers['crun-wasm-nodejs'].rootfs;
  const libDir = join(rootfs, 'usr/lib/x86_64-linux-gnu');
  const shared = readdirSync(libDir)
    .filter((n) => lstatSync(join(libDir, n)).isSymbolicLink() && resolve(libDir, readlinkSync(join(libDir, n))).startsWith(join(rootfs, 'vendor') + '/'))
    .reduce((n, name) => n + statSync(join(libDir, name)).size, 0);
  return [
    ...pulls,
    ...stored,
    ...sizes,
    { name: 'sum of distinct vendor files (MiB)', value: mib(distinct), unit: 'MiB' },
    { name: 'one-copy-per-target layout (MiB)', value: mib(perTarget), unit: 'MiB' },
    { name: 'crun-wasm-nodejs adds to /vendor, files no other build has (MiB)', value: mib(nodeOnly.reduce((n, rel) => n + (fileSizes.get(rel) ?? 0), 0)), unit: 'MiB' },
    { name: "crun-wasm-nodejs adds to a node's pull, those files gzip -6 (MiB)", value: mib(nodeOnlyGzip), unit: 'MiB' },
    { name: "libraries the installer's Node.js shares with /vendor, stored once (MiB)", value: mib(shared), unit: 'MiB' },
    {
      name: 'sum of distinct vendor files / one-copy-per-target layout (target <= 1/3)',
      value: Number(ratio.toFixed(3)),
      unit: 'x',
      target: Number((1 / 3).toFixed(3)),
      pass: ratio <= 1 / 3,
    },
  ];
}
