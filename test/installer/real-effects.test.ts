/** The thin real implementations: the CRI socket wait against a real unix socket, the child-process runner. */
import * as net from 'net';
import * as path from 'path';
import { waitForSocket } from '../../lib/installer/runtime/socket';
import { ChildProcessRunner } from '../../lib/installer/host/commands';
import { connectCluster } from '../../lib/installer/kube/cluster';
import { tempDir } from './support';

describe('waitForSocket', () => {
  test('resolves true once a server listens, false at the deadline', async () => {
    const socket = path.join(tempDir('knawd-sock-'), 'cri.sock');
    const started = Date.now();
    expect(await waitForSocket(socket, 600)).toBe(false);
    expect(Date.now() - started).toBeLessThan(3000);
    const server = net.createServer((c) => c.end());
    setTimeout(() => server.listen(socket), 300);
    try {
      expect(await waitForSocket(socket, 5000)).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe('ChildProcessRunner', () => {
  test('returns exit status and output; a command past its timeout is killed', async () => {
    const runner = new ChildProcessRunner();
    expect(await runner.run(['sh', '-c', 'echo out; echo err >&2; exit 3'], 5000)).toEqual({ code: 3, stdout: 'out\n', stderr: 'err\n' });
    const slow = await runner.run(['sleep', '5'], 200);
    expect(slow.code).toBe(-1);
    expect(slow.stderr).toMatch(/timed out/);
    expect((await runner.run(['/nonexistent/cmd'], 1000)).code).toBe(-1);
  });
});

describe('connectCluster', () => {
  test('outside a cluster and without a kubeconfig there is no API client', () => {
    expect(connectCluster(undefined, {})).toBeUndefined();
  });
  test('an unreadable kubeconfig is a clear error', () => {
    expect(() => connectCluster('/nonexistent/kubeconfig', {})).toThrow(/cannot read kubeconfig \/nonexistent\/kubeconfig/);
  });
});
