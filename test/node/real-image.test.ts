/**
 * Issue 13 3c and the second half of 3d on the single-node cluster (containerd 1.7), against the contract of
 * work not merged yet. PASSES ONLY AFTER:
 *   - the real installer image (issue 12: `npm run image`, demo/cluster/images/built-image.ts) replaces the stand-in in
 *     demo/cluster/images/installer-image.ts: it ships crun-wasmedge beside crun-wasmtime, and the project's own
 *     WASI test image, which the node then imports in place of the hello image built here;
 *   - the helm test pod's image as a chart value, by default the project's WASI test image pinned by digest with
 *     pullPolicy IfNotPresent (issue 14).
 * Today the stand-in has no crun-wasmedge and the chart's test pod names wasmedge/example-wasi:latest (pulled:
 * no registry here), so both steps fail, with the installer's / the test pod's own error.
 */
import { PLAIN_LINE, WASM_LINE } from '../../demo/cluster/images/test-images';
import { NodeCluster } from '../../demo/cluster/cluster';
import { helmInstall, helmTest, helmUninstall, restartsOf, runWasmPod, switchEngine } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(10 * 60_000);

const underPrefix = (h: NodeCluster): string[] => Object.keys(h.node.upperSummary()).filter((p) => p.startsWith('opt/knawd/')).sort();

describe('with the real installer image: helm test, and switching ociType wasmtime → wasmedge', () => {
  const steps = clusterForFile(1);

  test('helm install (crun-wasmtime), then helm test passes with the chart defaults for its image', async () => {
    const h = steps.need();
    await helmInstall(h, 'crun-wasmtime');
    steps.mark('install');
    expect(await helmTest(h)).toContain(WASM_LINE);
  });

  test('d. helm upgrade ociType=crun-wasmedge: the wasmtime files go, the wasmedge ones come, one more restart, WASI runs', async () => {
    const h = steps.need('install');
    expect(underPrefix(h)).toEqual(expect.arrayContaining(['opt/knawd/bin/crun-wasmtime', 'opt/knawd/lib/libwasmtime.so']));
    const report = await switchEngine(h, 'crun-wasmedge');
    expect(report).toMatchObject({ restarts: 1 });
    expect(restartsOf(h, 'containerd')).toBe(2);
    const files = underPrefix(h);
    expect(files.filter((p) => /wasmtime/.test(p))).toEqual([]);
    expect(files).toEqual(expect.arrayContaining(['opt/knawd/bin/crun-wasmedge', 'opt/knawd/lib/libwasmedge.so.0']));
    const pod = await runWasmPod(h, 'wasm-on-wasmedge');
    expect([pod.wasmLog, pod.plainLog]).toEqual([WASM_LINE, PLAIN_LINE]);
    await h.kubectlOk(['delete', 'pod', 'wasm-on-wasmedge', '--wait=true', '--timeout=60s']);
    steps.mark('upgrade');
  });

  test('helm uninstall restores the node', async () => {
    const h = steps.need('install');
    expect((await helmUninstall(h)).code).toBe(0);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
