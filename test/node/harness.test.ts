/**
 * The single-node harness itself (demo/cluster), before any product step: a real node registers and turns
 * Ready on containerd 1.7 and 2.x (the newest Kubernetes release's kubelet; on 2.x the oldest's too), on this
 * machine's cgroup v1, the machine is not written to (the overlays' upper dirs stay empty), the node's network
 * has no way out, the systemctl shim works, can delay a restart and is recorded, a component
 * that dies fails the harness with its log, and teardown leaves nothing.
 */
import * as fs from 'fs';
import { NODE_NAME, NodeCluster, startNodeCluster } from '../../demo/cluster/cluster';
import { NODE_ADDRESS } from '../../demo/cluster/netns';
import { exec } from '../../demo/cluster/process';
import { releaseVersions } from '../support/cluster/releases';

jest.setTimeout(10 * 60_000);

// The oldest supported Kubernetes release once (kubelet 1.35 on this machine's cgroup v1, containerd 2.x); every
// product suite runs on the newest.
describe.each([
  [1, 'newest'],
  [2, 'newest'],
  [2, 'oldest'],
] as const)('single-node harness on containerd %d.x, %s Kubernetes', (major, release) => {
  let c: NodeCluster | undefined;
  const need = (): NodeCluster => {
    if (!c) throw new Error('the cluster did not start (see the beforeAll error)');
    return c;
  };

  beforeAll(async () => {
    c = await startNodeCluster(major, { kubernetes: release });
  }, 8 * 60_000);

  afterAll(async () => {
    await c?.stop();
  });

  test('the node registers with its containerd and turns Ready', async () => {
    const h = need();
    const node = JSON.parse(await h.kubectlOk(['get', 'node', NODE_NAME, '-o', 'json']));
    expect(node.status.nodeInfo.containerRuntimeVersion).toMatch(new RegExp(`^containerd://${major}\\.`));
    // On cgroup v1, which kubelets from 1.35 refuse unless failCgroupV1 is false (demo/cluster/node.ts).
    expect(node.status.nodeInfo.kubeletVersion).toBe(releaseVersions(release).kubernetes);
    expect(fs.existsSync('/sys/fs/cgroup/cgroup.controllers')).toBe(false);
    expect(node.status.addresses).toContainEqual({ type: 'InternalIP', address: NODE_ADDRESS });
    expect(node.status.conditions.find((x: { type: string }) => x.type === 'Ready').status).toBe('True');
    expect((await h.node.supervisor.status()).map((u) => [u.name, u.state, u.starts])).toEqual([
      ['containerd', 'active', 1],
      ['kubelet', 'active', 1],
      ['kube-proxy', 'active', 1],
    ]);
    console.log(`containerd ${major}.x, ${release} Kubernetes: node Ready ${h.readyMs} ms after the node started`);
  });

  test('nothing has been written to the node\'s /etc, /opt, /var or /usr yet', () => {
    expect([...need().node.upper().keys()]).toEqual([]);
  });

  test('the node network has no route out', () => {
    const h = need();
    const routes = exec('nsenter', [`--net=${h.netns.file}`, '--', 'ip', '-o', 'route', 'get', '1.1.1.1']);
    expect(routes.code).not.toBe(0);
    expect(routes.stderr).toMatch(/unreachable/i);
  });

  test('systemctl on the node reaches PID 1, which records the call', async () => {
    const h = need();
    const pid1 = h.node.pid1();
    expect(pid1).toBeDefined();
    const r = exec('nsenter', ['-t', String(pid1), '-m', '--', 'systemctl', 'is-active', 'containerd']);
    expect([r.code, r.stdout.trim()]).toEqual([0, 'active']);
    const unknown = exec('nsenter', ['-t', String(pid1), '-m', '--', 'systemctl', 'cat', 'k3s']);
    expect(unknown.code).toBe(1);
    expect(h.node.supervisor.calls().map((x) => [x.args, x.code])).toEqual([
      [['is-active', 'containerd'], 0],
      [['cat', 'k3s'], 1],
    ]);
  });

  test('a delayed restart through the shim waits for containerd to come back, and is recorded with its delay', async () => {
    const h = need();
    await h.node.supervisor.delayRestarts('containerd', 1500);
    const r = exec('nsenter', ['-t', String(h.node.pid1()), '-m', '--', 'systemctl', 'restart', 'containerd.service']);
    expect(r.code).toBe(0);
    expect(r.ms).toBeGreaterThanOrEqual(1500);
    const last = h.node.supervisor.calls().pop();
    expect([last?.args, last?.code, last?.delayMs]).toEqual([['restart', 'containerd.service'], 0, 1500]);
    expect((await h.node.supervisor.status()).find((u) => u.name === 'containerd')).toMatchObject({ state: 'active', starts: 2 });
    await h.node.supervisor.delayRestarts('containerd', 0);
    // Pods keep working across the restart: the node stays Ready.
    await h.kubectlOk(['wait', '--for=condition=Ready', `node/${NODE_NAME}`, '--timeout=60s']);
  });

  test('a component that dies fails the harness with its log tail', async () => {
    const h = need();
    const pid = await h.node.hostPid('kube-proxy');
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')).toContain('kube-proxy');
    process.kill(pid, 'SIGKILL');
    let failure = '';
    for (let i = 0; i < 50 && !failure; i++) {
      failure = await h.node.checkHealthy().then(() => '', (error: Error) => error.message);
      if (!failure) await new Promise((r) => setTimeout(r, 100));
    }
    expect(failure).toContain('kube-proxy failed (killed by signal 9)');
    expect(failure).toContain("last 30 lines of the node's kube-proxy log");
    expect(failure).toContain('Caches are synced');
  });

  test('teardown leaves no process, mount or cgroup behind, and the machine has none of the node\'s links or rules', async () => {
    const h = need();
    expect(await h.stop()).toEqual([]);
    // The pod bridge, the pods' veths and kube-proxy's rules lived in the node's network namespace only.
    const ours = /knawd0|10\.244\.0\.|10\.200\.0\.1|KUBE-SVC/;
    expect(exec('ip', ['-o', 'link']).stdout.split('\n').filter((l) => ours.test(l))).toEqual([]);
    expect(exec('iptables-save', []).stdout.split('\n').filter((l) => ours.test(l))).toEqual([]);
  });
});
