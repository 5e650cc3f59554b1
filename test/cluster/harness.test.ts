/**
 * The cluster harness itself: it comes up on 127.0.0.1 only with the admission and authorization we rely on,
 * a server that cannot start is a failure that says why (never a skip), and stop() leaves nothing behind.
 */
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';

jest.setTimeout(120_000);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port, timeout: 2000 });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

describe('cluster harness', () => {
  let cluster: Cluster;

  beforeAll(async () => {
    cluster = await startCluster();
  }, 120_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  it('serves the API on 127.0.0.1 only, to the per-run admin token', async () => {
    const url = new URL(cluster.server);
    expect(url.hostname).toBe('127.0.0.1');
    expect(await connects('127.0.0.1', Number(url.port))).toBe(true);
    const external = Object.values(os.networkInterfaces())
      .flat()
      .filter((i): i is os.NetworkInterfaceInfo => !!i && !i.internal && i.family === 'IPv4')
      .map((i) => i.address);
    for (const address of external) expect(await connects(address, Number(url.port))).toBe(false);
    expect((await cluster.kubectlOk(['auth', 'whoami', '-o', 'jsonpath={.status.userInfo.username}'])).trim()).toBe('knawd-test-admin');
    // Anonymous requests get nothing (RBAC only).
    const anonymous = cluster.writeKubeconfig('anonymous', 'not-a-token');
    expect((await cluster.kubectl(['get', 'namespaces'], { kubeconfig: anonymous })).code).not.toBe(0);
  });

  it('enforces RBAC and PodSecurity, and defaults ServiceAccounts on pods', async () => {
    expect((await cluster.kubectl(['auth', 'can-i', 'get', 'secrets', '--as', 'someone'])).stdout.trim()).toBe('no');
    await cluster.kubectlOk(['create', 'namespace', 'harness-restricted']);
    await cluster.kubectlOk(['label', 'namespace', 'harness-restricted', 'pod-security.kubernetes.io/enforce=restricted']);
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'harness-restricted' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } };
    // No ServiceAccount "default" (no controller-manager): the ServiceAccount admission plugin refuses first.
    const noSa = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
    expect(noSa.stderr).toMatch(/serviceaccount/i);
    await cluster.kubectlOk(['-n', 'harness-restricted', 'create', 'serviceaccount', 'default']);
    const r = await cluster.kubectl(['create', '--dry-run=server', '-f', '-'], { input: JSON.stringify(pod) });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/violates PodSecurity "restricted:latest"/);
  });

  it('fails, saying why and quoting the log, when kube-apiserver cannot start (a failure, never a skip)', async () => {
    let message = '';
    try {
      const broken = await startCluster({ apiServerArgs: ['--authorization-mode=NoSuchMode'], readyTimeoutMs: 30_000 });
      await broken.stop();
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/kube-apiserver exited with status 1 before the API server became ready/);
    expect(message).toMatch(/last \d+ lines of the kube-apiserver log/);
    expect(message).toContain('NoSuchMode');
  });

  it('stop() kills both servers and removes the temp directory', async () => {
    const other = await startCluster();
    const { etcd, kubeApiserver } = other.pids;
    expect(alive(etcd) && alive(kubeApiserver)).toBe(true);
    expect(fs.existsSync(other.dir)).toBe(true);
    await other.stop();
    expect(alive(etcd)).toBe(false);
    expect(alive(kubeApiserver)).toBe(false);
    expect(fs.existsSync(other.dir)).toBe(process.env.KNAWD_KEEP_CLUSTER === '1');
    await other.stop(); // idempotent
  });
});
