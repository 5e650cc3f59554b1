/**
 * Target auto with Node objects in a real kube-apiserver: for each distribution of test/installer/distributions.ts
 * a Node object as its kubelet reports it (status.nodeInfo, the distribution's labels) and a node root shaped
 * like it (the containerd nodes with the real containerd binary where their packages put it, which loads the
 * candidate config), the installer CLI (lib/installer/run.ts) as the installer's own ServiceAccount with the RBAC
 * of dist/manifests/auto: `plan` says what it found, `install` configures the node for the target it found and
 * labels it, `remove` restores it. Then every contradicting explicit target: refused before any write, the node
 * root unchanged and no host command run, the node labelled failed with a Warning Event naming what was found.
 */
import * as fs from 'fs';
import * as path from 'path';
import { HOST_CHANGED_LABEL, INSTALLED_LABEL, NODE_STATE_LABEL } from '../../lib/catalog';
import { run } from '../../lib/installer/run';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { manifestPath } from '../support/cluster/objects';
import { createNode, nodeEvents, nodeLabels, serviceAccountKubeconfig } from '../support/cluster/node';
import { ChrootRunner, installHostBinary } from '../support/chroot-runner';
import { containerdBinary } from '../support/containerd-binaries';
import { Distribution, distribution, DISTRIBUTIONS } from '../installer/distributions';
import { handlersOnNodeRoot, makeArtifacts, makeRoot, snapshot } from '../installer/support';

jest.setTimeout(120_000);

const RUNTIME = 'crun-wasmtime';

/** The node root of a distribution; a containerd node also gets its real containerd where its packages put it. */
function nodeRoot(d: Distribution): string {
  const root = makeRoot(d.files);
  for (const [link, target] of Object.entries(d.links ?? {})) {
    fs.mkdirSync(path.dirname(path.join(root, link)), { recursive: true });
    fs.symlinkSync(target, path.join(root, link));
  }
  if (d.target === 'containerd' && d.containerdMajor) {
    installHostBinary(root, d.containerdMajor === 1 ? '/usr/bin/containerd' : '/usr/local/bin/containerd', containerdBinary(d.containerdMajor));
  }
  return root;
}

const nodeName = (d: Distribution): string => `auto-${DISTRIBUTIONS.indexOf(d)}`;

describe('target auto against Node objects in a real API server', () => {
  let cluster: Cluster;
  let kubeconfig: string;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath('auto', RUNTIME)]);
    kubeconfig = await serviceAccountKubeconfig(cluster, 'knawd', 'knawd-installer');
    for (const d of DISTRIBUTIONS) {
      const { containerRuntimeVersion, ...nodeInfo } = d.nodeInfo;
      await createNode(cluster, nodeName(d), containerRuntimeVersion, d.labels ?? {}, undefined, nodeInfo);
    }
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  /** The installer CLI in this process; systemctl is recorded (no systemd on a node root), the rest runs chrooted. */
  async function cli(command: string, node: string, root: string, target: string) {
    const out: string[] = [];
    const err: string[] = [];
    const runner = new ChrootRunner(root, (argv) => (argv.includes('systemctl') ? { code: 0 } : undefined));
    const code = await run(
      [command, '--target', target, '--runtime', RUNTIME, '--node-root', root, '--artifacts', makeArtifacts('containerd'), '--node-name', node, '--kubeconfig', kubeconfig, '--host-exec', 'chroot'],
      {},
      { stdout: (l) => out.push(l), stderr: (l) => err.push(l) },
      // No runtime behind the node root's socket: CRI Status answers what the node root's configs define.
      { runner, probeSocket: async () => true, waitForSocket: async () => true, readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) },
    );
    return { code, out: out.join('\n'), err: err.join('\n'), runner };
  }

  describe.each(DISTRIBUTIONS)('$name', (d) => {
    it(`plan and install choose ${d.target} from the Node object and the files; remove restores the node`, async () => {
      const node = nodeName(d);
      const root = nodeRoot(d);
      const before = snapshot(root);

      const planned = await cli('plan', node, root, 'auto');
      expect({ code: planned.code, err: planned.err.split('\n').filter((l) => /"level":"error"/.test(l)) }).toEqual({ code: 0, err: [] });
      expect(planned.out).toContain(`detected: node object: runtime ${d.nodeInfo.containerRuntimeVersion}, kubelet ${d.nodeInfo.kubeletVersion}, OS ${d.nodeInfo.osImage}`);
      expect(planned.out).toMatch(new RegExp(`^detected: target ${d.target}: `, 'm'));
      expect(planned.out).toContain(`detected: config: ${d.edited}`);
      expect(planned.out).toMatch(new RegExp(`^detected: restart unit: ${d.unit.replace(/\./g, '\\.')} \\(`, 'm'));
      if (d.containerdMajor) expect(planned.out).toMatch(new RegExp(`^detected: runtime: containerd ${d.containerdMajor}\\.\\d+\\.\\d+ \\(as reported by the node object\\)$`, 'm'));
      expect(snapshot(root)).toEqual(before);

      const installed = await cli('install', node, root, 'auto');
      expect({ code: installed.code, err: installed.err }).toEqual({ code: 0, err: '' });
      expect(installed.out).toContain(`"msg":"target ${d.target} (auto)"`);
      expect(installed.runner.calls.filter((c) => c.includes('systemctl'))).toEqual([['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', d.unit]]);
      if (d.target === 'containerd') {
        const loads = d.edited === '/etc/containerd/config.toml' ? 'the new /etc/containerd/config.toml' : `/etc/containerd/config.toml with the new drop-in ${d.edited}`;
        expect(installed.out).toMatch(new RegExp(`"msg":"pre-flight: /usr(/local)?/bin/containerd loads ${loads.replace(/\./g, '\\.')} and sees handler crun-wasm`));
      }
      expect(fs.readFileSync(path.join(root, d.edited), 'utf8')).toContain(`/opt/knawd/bin/${RUNTIME}`);
      expect(await nodeLabels(cluster, node)).toMatchObject({ [INSTALLED_LABEL.key]: INSTALLED_LABEL.value, [HOST_CHANGED_LABEL.key]: HOST_CHANGED_LABEL.value });
      expect((await nodeEvents(cluster, node)).slice(-2)).toEqual([
        ['Normal', 'Installing', `installing ${RUNTIME} as handler crun-wasm for target ${d.target}`],
        ['Normal', 'Installed', expect.stringContaining(`target ${d.target})`)],
      ]);

      const removed = await cli('remove', node, root, 'auto');
      expect({ code: removed.code, err: removed.err }).toEqual({ code: 0, err: '' });
      expect(snapshot(root)).toEqual(before);
      expect(await nodeLabels(cluster, node)).not.toHaveProperty([NODE_STATE_LABEL]);
      expect(await nodeLabels(cluster, node)).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    });
  });

  it.each<[string, string, RegExp]>([
    ['ubuntu_22_04', 'OpenShift worker', /the kubelet talks to cri-o:\/\/1\.29\.9-5\.rhaos4\.16\.git7a0f0f9\.el9, not to containerd .*target auto would choose rhel8/],
    ['crio', 'kubeadm on Ubuntu', /the kubelet talks to containerd:\/\/1\.7\.22, not to CRI-O .*target auto would choose containerd/],
    ['microk8s', 'kubeadm on Debian 12, containerd 2.x', /\/var\/snap\/microk8s\/current\/args\/containerd-template\.toml does not exist, which every microk8s node has/],
    ['containerd', 'k3s agent', /the node is k3s \(\/var\/lib\/rancher\/k3s\/agent\/etc\/containerd exists and the kubelet is v1\.32\.3\+k3s1\): its containerd reads the config it renders into /],
    ['k3s', 'rke2 server', /the kubelet is v1\.31\.5\+rke2r1, not k3s's \(\+k3s…\).*target auto would choose rke2/],
  ])('install --target %s on the %s node: refused before any write, the node failed with an Event saying what was found', async (target, dist, message) => {
    const d = distribution(dist);
    const node = `${nodeName(d)}-x`;
    const { containerRuntimeVersion, ...nodeInfo } = d.nodeInfo;
    await createNode(cluster, node, containerRuntimeVersion, d.labels ?? {}, undefined, nodeInfo);
    const root = nodeRoot(d);
    const before = snapshot(root);

    const refused = await cli('install', node, root, target);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(new RegExp(`^knawd-installer install: error: target ${target} does not fit node ${node}: `));
    expect(refused.err).toMatch(message);
    expect(snapshot(root)).toEqual(before);
    expect(refused.runner.calls).toEqual([]);
    expect(await nodeLabels(cluster, node)).toMatchObject({ [NODE_STATE_LABEL]: 'failed' });
    expect(await nodeLabels(cluster, node)).not.toHaveProperty([HOST_CHANGED_LABEL.key]);
    const events = await nodeEvents(cluster, node);
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual(['Warning', 'InstallFailed', expect.stringMatching(new RegExp(`^target ${target} does not fit node ${node}: .*\\(node object: runtime ${containerRuntimeVersion.replace(/[.+]/g, '\\$&')}, kubelet `))]);
  });
});
