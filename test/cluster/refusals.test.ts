/**
 * The installer's refusals of a node it has no build for, on the Kubernetes side (issue 29 item 4; the installer
 * from source through its CLI entry, node roots in temp directories): a node of an architecture without a crun
 * build (the node's architecture as the effects give it) and an image without the requested ociType's build (a
 * per-engine image of another engine). Each: exit 1, the Node labelled failed, the reason as a Warning Event,
 * the node root byte-identical, and the uninstall Job's `wait-removed` not held up by it; `remove` then takes the
 * label off. The refusing images themselves, on their own architecture's Node.js: test/image/unbuilt.test.ts.
 */
import { NODE_STATE_LABEL } from '../../lib/catalog';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { run } from '../../lib/installer/run';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { version } from '../../package.json';
import { fixture, makeArtifacts, makeRoot, snapshot } from '../installer/support';
import { createNode, nodeEvents, nodeLabels } from '../support/cluster/node';

jest.setTimeout(120_000);

const TARGET = 'ubuntu_22_04';

let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 180_000);

afterAll(async () => {
  await cluster?.stop();
});

async function installer(args: string[], architecture: string): Promise<{ code: number; stderr: string[] }> {
  const stderr: string[] = [];
  const runner = new RecordingRunner();
  const code = await run([...args, '--kubeconfig', cluster.kubeconfig], {}, { stdout: () => undefined, stderr: (l) => stderr.push(l) }, {
    architecture,
    runner,
    probeSocket: async () => true,
    waitForSocket: async () => true,
    readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: [] }),
  });
  expect(runner.calls).toEqual([]);
  return { code, stderr };
}

it.each([
  ['a linux/s390x node', 's390x', [] as string[], 'no crun build for linux/s390x; knawd-deployer is built for linux/amd64, linux/arm64; nothing was changed'],
  ['an image of another engine', 'amd64', ['crun-wasmedge'], `carries crun-wasmedge only; ociType crun-wasmtime needs image quay.io/knawd/deployer:v${version}-crun-wasmtime; nothing was changed`],
])('%s: install refuses, the Node is labelled failed with the reason in an Event; remove takes the label off', async (_, arch, runtimes, reason) => {
  const node = `refused-${arch}`;
  await createNode(cluster, node, 'containerd://1.7.24', { 'kubernetes.io/arch': arch });
  const root = makeRoot({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml'), '/opt/other/keep': 'not ours\n' });
  const artifacts = makeArtifacts(TARGET, { runtimes });
  const before = snapshot(root);
  const common = ['--target', TARGET, '--node-root', root, '--artifacts', artifacts, '--node-name', node];

  const install = await installer(['install', '--runtime', 'crun-wasmtime', ...common], arch);
  expect(install.code).toBe(1);
  expect(install.stderr).toEqual([expect.stringContaining(reason)]);
  expect(await nodeLabels(cluster, node)).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
  const events = await nodeEvents(cluster, node);
  expect(events).toHaveLength(1);
  expect(events[0]).toEqual(['Warning', 'InstallFailed', expect.stringContaining(reason)]);
  expect(snapshot(root)).toEqual(before);
  // The uninstall Job's wait does not wait for it: the refused node's host was never changed.
  const wait = await installer(['wait-removed', '--timeout-seconds', '10'], arch);
  expect(wait).toEqual({ code: 0, stderr: [] });

  const remove = await installer(['remove', ...common], arch);
  expect(remove).toEqual({ code: 0, stderr: [] });
  expect(await nodeLabels(cluster, node)).not.toHaveProperty(NODE_STATE_LABEL);
  expect(snapshot(root)).toEqual(before);
});
