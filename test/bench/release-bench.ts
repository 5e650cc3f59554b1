/**
 * `npm run release` into an empty docker-registry on loopback (plain HTTP, no key): the time from the command's
 * start to the chart in the registry (the images already built: `npm run image` is warm), and what the registry
 * stores then.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';
import { release } from '../../release/main';
import { startRegistry } from '../release/loopback-registry';
import { BenchResult } from './measure';

export async function benchRelease(): Promise<BenchResult[]> {
  builtImage();
  const registry = await startRegistry({ tls: false });
  try {
    const started = Date.now();
    await release({ registry: `${registry.address}/knawd`, plainHttp: true });
    const seconds = (Date.now() - started) / 1000;
    const bytes = registry.contents().reduce((n, line) => n + statSync(join(registry.dir, 'data', line.split(' ')[0])).size, 0);
    return [{ name: 'release: push to an empty registry (s, MiB)', value: `${seconds.toFixed(1)} s, ${(bytes / 1024 / 1024).toFixed(1)} MiB`, unit: '' }];
  } finally {
    registry.stop();
  }
}
