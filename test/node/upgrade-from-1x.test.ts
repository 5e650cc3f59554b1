/**
 * The upgrade from the original knawd-deployer (1.x) on a real single-node cluster (containerd 1.7): the
 * original chart v1.3.0 (../shared/original, unchanged but for `imagePullPolicy: Always`, turned into `Never`
 * by a post-renderer: no registry is reachable here) installs its DaemonSet, which runs the original's manager
 * (built by `npm run tools`) in a stand-in of its image: /app/manager, nsenter, and /vendor/ubuntu_20_04 with
 * a stand-in crun-wasmtime (the original's crun 1.8 builds are not to be had: this one hands the container to
 * the node's runc, as crun does for a plain container) and engine library. A pod runs under its RuntimeClass,
 * that is under its handler `crun`. Then `helm upgrade` to dist/charts/knawd-deployer: the release is deployed,
 * the old pod keeps running and the node waits (pending); once the old pod is deleted the installer takes the
 * original's entry and files off the node with one containerd restart, a WASI pod runs under our handler, and
 * `helm uninstall` restores the node's config as it was before the original.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { INSTALLED_LABEL, NODE_STATE_LABEL } from '../../lib/catalog';
import { listPodSandboxes } from '../../lib/installer/runtime/cri-status';
import { IMAGES, NODE_NAME, NodeCluster } from '../../demo/cluster/cluster';
import { buildOciImage, ImageFile } from '../../demo/cluster/images/oci-image';
import { chartFlags, helmUninstall, NAMESPACE, nodeLabels, RELEASE, restartsOf, runWasmPod, waitFor } from '../../demo/cluster/product';
import { WASM_LINE } from '../../demo/cluster/images/test-images';
import { CHART } from '../support/cluster/objects';
import { ClusterSteps } from '../support/node/steps';
import { REPO, toolPath } from '../support/tools';
import { tempDir } from '../installer/support';

jest.setTimeout(10 * 60_000);

const ORIGINAL_CHART = path.join(REPO, '..', 'shared', 'original', 'charts', 'knawd-deployer');
const ORIGINAL_IMAGE = 'quay.io/knawd/deployer:v1.3.0';
const CRUN = 'usr/local/sbin/crun';

/** A host binary and every shared library ldd names, as image files at the same paths. */
function withLibraries(binary: string, at: string): ImageFile[] {
  const files: ImageFile[] = [{ path: at, from: binary }];
  const ldd = execFileSync('ldd', [binary], { encoding: 'utf8' });
  for (const m of ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) files.push({ path: m[1], from: m[1], mode: 0o755 });
  return files;
}

function standInImage(work: string) {
  const runc = execFileSync('sh', ['-c', 'command -v runc'], { encoding: 'utf8' }).trim();
  const files: ImageFile[] = [
    ...withLibraries(toolPath('original-manager'), '/app/manager'),
    ...withLibraries(execFileSync('sh', ['-c', 'command -v nsenter'], { encoding: 'utf8' }).trim(), '/usr/bin/nsenter'),
    { path: '/vendor/ubuntu_20_04/crun-wasmtime', content: `#!/bin/sh\n# stand-in for the original's crun 1.8 built with wasmtime (NEEDED libwasmtime.so)\nexec ${runc} "$@"\n` },
    { path: '/vendor/ubuntu_20_04/libwasmtime.so', content: 'stand-in wasmtime 5.0.0 C API\n', mode: 0o644 },
  ];
  return buildOciImage({ name: ORIGINAL_IMAGE, files, entrypoint: ['/app/manager'] }, work);
}

/** A Pod under the original's RuntimeClass: a plain container, which a crun runs as runc does. */
function oldPod(): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'old-wasm', namespace: 'default' },
    spec: { runtimeClassName: 'crun', containers: [{ name: 'app', image: IMAGES.busybox, imagePullPolicy: 'Never', command: ['sleep', '3600'] }], terminationGracePeriodSeconds: 0 },
  };
}

describe('helm upgrade from the original chart on a real node (containerd 1.7)', () => {
  const steps = new ClusterSteps();
  const need = (...names: string[]): NodeCluster => steps.need(...names);
  let pristine = '';

  beforeAll(async () => {
    const h = await steps.start(1);
    pristine = h.node.nodeFile(h.node.containerdConfigPath)?.toString('utf8') ?? fs.readFileSync(h.node.seedPath(h.node.containerdConfigPath), 'utf8');
    const image = standInImage(tempDir('knawd-original-image-'));
    h.node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', image.archive]);
  }, 8 * 60_000);

  afterAll(async () => {
    await steps.stop();
  });

  const config = (h: NodeCluster): string => h.node.nodeFile(h.node.containerdConfigPath)?.toString('utf8') ?? '';
  const onNode = (h: NodeCluster, p: string): boolean => h.node.nodeFile(p) !== undefined;

  test("the original chart's DaemonSet runs its manager: handler crun in containerd's config, its crun, its library, a pod under its handler", async () => {
    const h = need();
    const postRenderer = path.join(tempDir('knawd-post-renderer-'), 'never-pull.sh');
    fs.writeFileSync(postRenderer, '#!/bin/sh\nexec sed "s/imagePullPolicy: Always/imagePullPolicy: Never/"\n', { mode: 0o755 });
    await h.kubectlOk(['create', 'namespace', NAMESPACE]);
    await h.kubectlOk(['label', 'namespace', NAMESPACE, 'pod-security.kubernetes.io/enforce=privileged']);
    const r = await h.helm(['install', RELEASE, ORIGINAL_CHART, '-n', NAMESPACE, '--set', 'target=ubuntu_20_04', '--set', 'ociType=crun-wasmtime', '--set', 'tag=v1.3.0', '--post-renderer', postRenderer], { timeoutMs: 120_000 });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    await waitFor(h, "the original's manager configured the node and restarted containerd", async () => (config(h).includes('runtimes.crun]') && onNode(h, CRUN) && restartsOf(h, 'containerd') === 1 ? true : undefined), 180_000, () => config(h).slice(0, 200));
    expect(onNode(h, `${h.node.containerdConfigPath}.bak`)).toBe(true);
    await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(oldPod()) });
    await waitFor(h, 'the pod under the original handler running', async () => (JSON.parse(await h.kubectlOk(['get', 'pod', 'old-wasm', '-o', 'json'])).status.phase === 'Running' ? true : undefined), 120_000);
    const sandboxes = await listPodSandboxes(h.node.host('run/containerd/containerd.sock'), 10_000);
    expect(sandboxes).toContainEqual({ namespace: 'default', name: 'old-wasm', runtimeHandler: 'crun', ready: true });
    steps.mark('original');
  });

  test('helm upgrade: deployed first time; the old pod keeps running, the node is pending with an Event naming it, our handler served', async () => {
    const h = need('original');
    const flags = chartFlags(h, 'crun-wasmtime', { target: 'ubuntu_20_04', driftCheckSeconds: '5' });
    // The original's values given again (with values, Helm does not reuse the install's), plus the harness's image.
    const r = await h.helm(['upgrade', RELEASE, CHART, '-n', NAMESPACE, ...flags], { timeoutMs: 300_000 });
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    const release = JSON.parse((await h.helm(['list', '-n', NAMESPACE, '-o', 'json'])).stdout);
    expect(release).toEqual([expect.objectContaining({ status: 'deployed', revision: '2' })]);
    expect(JSON.parse(await h.kubectlOk(['get', 'runtimeclass', 'crun', '-o', 'json'])).handler).toBe('crun-wasm');
    let events = '';
    await waitFor(h, 'the WaitingForOriginalPods Event', async () => {
      events = await h.kubectlOk(['-n', 'default', 'get', 'events', '--field-selector', `involvedObject.name=${NODE_NAME},reason=WaitingForOriginalPods`, '-o', 'jsonpath={.items[*].message}']);
      return events.includes('default/old-wasm') ? true : undefined;
    }, 180_000, () => events);
    expect((await nodeLabels(h))[NODE_STATE_LABEL]).toBe('pending');
    expect(JSON.parse(await h.kubectlOk(['get', 'pod', 'old-wasm', '-o', 'json'])).status.phase).toBe('Running');
    expect(config(h)).toContain('runtimes.crun]');
    expect(config(h)).toContain('runtimes.crun-wasm]');
    const handlers = (await listPodSandboxes(h.node.host('run/containerd/containerd.sock'), 10_000)).filter((s) => s.name === 'old-wasm');
    expect(handlers).toEqual([{ namespace: 'default', name: 'old-wasm', runtimeHandler: 'crun', ready: true }]);
    steps.mark('upgraded');
  });

  test("the old pod deleted: the take-over removes the original's entry and files with one restart, the node is installed, a WASI pod runs under our handler", async () => {
    const h = need('upgraded');
    const restarts = restartsOf(h, 'containerd');
    await h.kubectlOk(['delete', 'pod', 'old-wasm', '--wait=true', '--timeout=60s']);
    await waitFor(h, 'the node installed after the take-over', async () => ((await nodeLabels(h))[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? true : undefined), 180_000);
    expect(restartsOf(h, 'containerd')).toBe(restarts + 1);
    expect(config(h)).not.toContain('runtimes.crun]');
    expect([CRUN, 'usr/lib/libwasmtime.so', `${h.node.containerdConfigPath}.bak`].filter((p) => onNode(h, p))).toEqual([]);
    const r = await runWasmPod(h, 'wasm-after-upgrade');
    expect(r.wasmLog).toBe(WASM_LINE);
    await h.kubectlOk(['delete', 'pod', 'wasm-after-upgrade', '--wait=true', '--timeout=60s']);
    steps.mark('taken-over');
  });

  test('helm uninstall restores the config as it was before the original', async () => {
    const h = need('taken-over');
    const r = await helmUninstall(h);
    expect(r.code).toBe(0);
    expect(config(h)).toBe(pristine);
  });
});
