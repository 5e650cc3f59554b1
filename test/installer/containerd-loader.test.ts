/**
 * The configs install writes, read by the real containerd 2.x loader (`containerd config dump`), when the
 * pinned build (.tools, built by `npm run tools`); a missing binary fails the test.
 */
import { spawnSync } from 'child_process';
import * as path from 'path';
import { install } from '../../lib/installer/installer';
import { containerdBinary } from '../support/containerd-binaries';
import { effectsFor, FakeCluster, fixture, makeArtifacts, makeRoot, settingsFor } from './support';

function dump(file: string): string {
  const result = spawnSync(containerdBinary(2), ['--config', file, 'config', 'dump'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`containerd rejected ${file}: ${result.stderr}`);
  return result.stdout;
}

describe('containerd 2.x loads what install writes', () => {
  test.each([
    ['its own default config (version 3)', { '/etc/containerd/config.toml': fixture('containerd-v3-default.toml') }, undefined],
    ['a containerd 1.x config (version 2, migrated on load)', { '/etc/containerd/config.toml': fixture('containerd-v2.toml') }, 'containerd://2.0.2'],
    ['no config file on a containerd 2 node', {}, 'containerd://2.1.0'],
  ])('%s', async (_name, files, version) => {
    const root = makeRoot(files);
    const cluster = version ? new FakeCluster().addNode('n', version) : undefined;
    const args = ['install', '--node-root', root, '--target', 'containerd', '--runtime', 'crun-wasmtime', '--artifacts', makeArtifacts('containerd'), '--node-name', 'n'];
    await install(settingsFor(args), effectsFor(root, { cluster }));
    const out = dump(path.join(root, 'etc/containerd/config.toml'));
    expect(out).toMatch(/\[plugins\.'io\.containerd\.cri\.v1\.runtime'\.containerd\.runtimes\.crun-wasm\]/);
    expect(out).toContain("BinaryName = '/opt/knawd/bin/crun-wasmtime'");
    expect(out).toContain("'module.wasm.image/variant'");
  });
});
