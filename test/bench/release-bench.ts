/**
 * The release path's figures: `npm run release` into an empty docker-registry on loopback (plain HTTP, no key;
 * the images already built, `npm run image` warm): the time to the chart in the registry and what the registry
 * stores then; and on the real single-node cluster (containerd 2.x, nothing imported), after a release into its
 * own registry and `helm install oci://`, the kubelet's pull of the installer image as its Pulled Event reports it.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';
import { helmInstallFromRegistry, pulledBy, releaseIntoNode, startRegistryNodeCluster } from '../../demo/cluster/registry';
import { release } from '../../release/main';
import { startRegistry } from '../release/loopback-registry';
import { BenchResult } from './measure';

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function pushToEmptyRegistry(): Promise<BenchResult> {
  const registry = await startRegistry({ tls: false });
  try {
    const started = Date.now();
    await release({ registry: `${registry.address}/knawd`, plainHttp: true });
    const seconds = (Date.now() - started) / 1000;
    const bytes = registry.contents().reduce((n, line) => n + statSync(join(registry.dir, 'data', line.split(' ')[0])).size, 0);
    return { name: 'release: push to an empty registry (s, MiB)', value: `${seconds.toFixed(1)} s, ${mib(bytes)} MiB`, unit: '' };
  } finally {
    registry.stop();
  }
}

async function kubeletPull(): Promise<BenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'knawd-bench-registry-'));
  const { h, certs, stop } = await startRegistryNodeCluster(dir);
  try {
    const { record } = releaseIntoNode(h, certs);
    await helmInstallFromRegistry(h, certs, 'crun-wasmtime');
    const installer = record.images[0];
    const pull = await pulledBy(h, `${installer.repository}@${installer.digest}`);
    return { name: 'node: installer image pull by the kubelet (s, MiB)', value: `${pull.seconds.toFixed(1)} s, ${mib(pull.bytes)} MiB`, unit: '' };
  } finally {
    const left = await stop();
    rmSync(dir, { recursive: true, force: true });
    if (left.length > 0) throw new Error(`the benchmark's cluster left: ${left.join('; ')}`);
  }
}

export async function benchRelease(): Promise<BenchResult[]> {
  builtImage();
  return [await pushToEmptyRegistry(), await kubeletPull()];
}
