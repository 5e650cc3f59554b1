/**
 * The installer image's size, as `npm run image` builds it: compressed and uncompressed, what one node pulls,
 * and how much the one-store /vendor saves against a layout with one copy of each build per target (as the
 * original image had, /vendor/<target>/...).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { VendorManifest } from '../../lib/catalog';
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
  return [
    { name: 'image size compressed (MiB)', value: mib(image.compressedBytes), unit: 'MiB' },
    { name: 'image size uncompressed (MiB)', value: mib(image.uncompressedBytes), unit: 'MiB' },
    // One layer, so a node pulls all of it: the manifest, the config and that layer.
    { name: 'bytes one node pulls (MiB)', value: mib(image.compressedBytes), unit: 'MiB' },
    { name: 'sum of distinct vendor files (MiB)', value: mib(distinct), unit: 'MiB' },
    { name: 'one-copy-per-target layout (MiB)', value: mib(perTarget), unit: 'MiB' },
    {
      name: 'sum of distinct vendor files / one-copy-per-target layout (target <= 1/3)',
      value: Number(ratio.toFixed(3)),
      unit: 'x',
      target: Number((1 / 3).toFixed(3)),
      pass: ratio <= 1 / 3,
    },
  ];
}
