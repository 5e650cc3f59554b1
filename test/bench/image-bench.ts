/**
 * The installer image's size, as `npm run image` builds it: compressed and uncompressed, what one node pulls,
 * how much the one-store /vendor saves against a layout with one copy of each build per target (as the
 * original image had, /vendor/<target>/...), what the crun-wasm-nodejs build adds (issue 28) and what the
 * installer's own Node.js shares with it; and per architecture and ociType what one node pulls from the image
 * index (issue 29): its architecture's manifest, config and layers.
 */
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import { RUNTIME_NAMES, type VendorManifest } from '../../lib/catalog';
import { builtImage } from '../../demo/cluster/images/built-image';
import { BenchResult } from './measure';

const MiB = 1024 * 1024;
const mib = (bytes: number): number => Number((bytes / MiB).toFixed(1));

export function benchImage(): BenchResult[] {
  const image = builtImage();
  const manifest = JSON.parse(readFileSync(join(image.vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
  const size = (rel: string): number => statSync(join(image.vendor, rel)).size;
  const listed = readFileSync(join(image.vendor, 'SHA256SUMS'), 'utf8').trim().split('\n').map((l) => l.split(/\s+\*?/)[1]);
  const distinct = listed.reduce((n, rel) => n + size(rel), 0) + size('SHA256SUMS');
  const buildSize = (name: string): number => manifest.builds[name].files.reduce((n, f) => n + size(f.path), 0);
  const perTarget = Object.values(manifest.targets).reduce((n, runtimes) => n + Object.values(runtimes).reduce((m, b) => m + buildSize(b), 0), 0);
  const ratio = distinct / perTarget;
  // Files of crun-wasm-nodejs no other build has: what its build adds to /vendor, and to a pull (gzip -6, as the layer).
  const others = new Set(Object.entries(manifest.builds).filter(([n]) => n !== 'crun-wasm-nodejs').flatMap(([, b]) => b.files.map((f) => f.path)));
  const nodeOnly = manifest.builds['crun-wasm-nodejs'].files.map((f) => f.path).filter((p) => !others.has(p));
  const nodeOnlyGzip = nodeOnly.reduce((n, rel) => n + gzipSync(readFileSync(join(image.vendor, rel)), { level: 6 }).length, 0);
  // The image's own userland links into /vendor for what both use: bytes stored once instead of twice.
  const libDir = join(image.rootfs, 'usr/lib/x86_64-linux-gnu');
  const shared = readdirSync(libDir)
    .filter((n) => lstatSync(join(libDir, n)).isSymbolicLink() && resolve(libDir, readlinkSync(join(libDir, n))).startsWith(join(image.rootfs, 'vendor') + '/'))
    .reduce((n, name) => n + statSync(join(libDir, name)).size, 0);
  // A node pulls its architecture's manifest from the index, all of it whatever its ociType: one image per
  // architecture carries every engine today. Goal (issue 29): <= 50 MiB for a wasmtime node.
  const architectures = image.record.architectures ?? { amd64: image.record };
  const pulls: BenchResult[] = Object.entries(architectures).flatMap(([arch, r]) =>
    RUNTIME_NAMES.map((ociType) => {
      const value = mib(r.image.compressedBytes);
      const goal = ociType === 'crun-wasmtime' ? { target: 50, pass: value <= 50 } : {};
      return { name: `bytes one node pulls (${arch}, ${ociType}, MiB)`, value, unit: 'MiB', ...goal };
    }),
  );
  return [
    ...pulls,
    { name: 'image size compressed (MiB)', value: mib(image.compressedBytes), unit: 'MiB' },
    { name: 'image size uncompressed (MiB)', value: mib(image.uncompressedBytes), unit: 'MiB' },
    { name: 'sum of distinct vendor files (MiB)', value: mib(distinct), unit: 'MiB' },
    { name: 'one-copy-per-target layout (MiB)', value: mib(perTarget), unit: 'MiB' },
    { name: 'crun-wasm-nodejs adds to /vendor, files no other build has (MiB)', value: mib(nodeOnly.reduce((n, rel) => n + size(rel), 0)), unit: 'MiB' },
    { name: 'crun-wasm-nodejs adds to a node\'s pull, those files gzip -6 (MiB)', value: mib(nodeOnlyGzip), unit: 'MiB' },
    { name: 'libraries the installer\'s Node.js shares with /vendor, stored once (MiB)', value: mib(shared), unit: 'MiB' },
    {
      name: 'sum of distinct vendor files / one-copy-per-target layout (target <= 1/3)',
      value: Number(ratio.toFixed(3)),
      unit: 'x',
      target: Number((1 / 3).toFixed(3)),
      pass: ratio <= 1 / 3,
    },
  ];
}
