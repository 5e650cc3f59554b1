/**
 * KubeHttp on answers a real API server does not give but a node's network can (a proxy's HTML error page, a
 * stalled connection, an endless body), from a local HTTPS server with a throwaway certificate. What a real
 * kube-apiserver answers is covered in test/cluster/installer-kube-client.test.ts.
 */
import * as fs from 'fs';
import * as https from 'https';
import * as path from 'path';
import { KubeHttp } from '../../lib/installer/kube/http';
import { openssl } from '../../demo/cluster/openssl';
import { tempDir } from './support';

type Handler = (req: { method?: string; url?: string; headers: Record<string, unknown>; body: string }, res: import('http').ServerResponse) => void;

describe('KubeHttp against a misbehaving server', () => {
  let server: https.Server;
  let handler: Handler;
  let ca: string;
  let base: string;

  beforeAll(async () => {
    const dir = tempDir('knawd-https-');
    openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'key.pem', '-out', 'cert.pem', '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1']);
    ca = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert: ca }, (req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString('utf8')));
      req.on('end', () => handler({ method: req.method, url: req.url, headers: req.headers, body }, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `https://127.0.0.1:${(server.address() as { port: number }).port}`;
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
  });

  const client = (options: ConstructorParameters<typeof KubeHttp>[1] = {}) => new KubeHttp({ server: base, ca: { data: ca }, token: { data: ' secret\n' } }, options);

  test('sends the method, encoded query, bearer token, JSON body and content type it is given', async () => {
    let seen: Parameters<Handler>[0] | undefined;
    handler = (req, res) => {
      seen = req;
      res.end('{"ok":true}');
    };
    const answer = await client().request({ method: 'PATCH', path: '/api/v1/nodes/n1', query: { fieldSelector: 'spec.nodeName=n1,status.phase!=Failed', skipped: undefined }, body: { a: null }, contentType: 'application/merge-patch+json' });
    expect(answer).toEqual({ ok: true });
    expect(seen).toMatchObject({ method: 'PATCH', url: '/api/v1/nodes/n1?fieldSelector=spec.nodeName%3Dn1%2Cstatus.phase%21%3DFailed', body: '{"a":null}' });
    expect(seen?.headers).toMatchObject({ authorization: 'Bearer secret', 'content-type': 'application/merge-patch+json', accept: 'application/json', 'user-agent': 'knawd-installer' });
  });

  test("an error page that is not a Kubernetes Status is quoted, shortened", async () => {
    handler = (_, res) => {
      res.statusCode = 502;
      res.end(`<html>Bad Gateway${'.'.repeat(500)}</html>`);
    };
    const error = await client().request({ method: 'GET', path: '/api/v1/nodes' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ status: 502, message: `<html>Bad Gateway${'.'.repeat(183)}` });
  });

  test('a 200 answer that is not JSON is an error, not a crash', async () => {
    handler = (_, res) => res.end('<html>login portal</html>');
    await expect(client().request({ method: 'GET', path: '/api/v1/nodes' })).rejects.toThrow("the API server's answer to GET /api/v1/nodes is not JSON");
  });

  test('a server that never answers is given up on at the timeout', async () => {
    handler = () => undefined;
    const started = Date.now();
    await expect(client({ timeoutMs: 300 }).request({ method: 'GET', path: '/api/v1/nodes' })).rejects.toThrow(/^127\.0\.0\.1:\d+: no answer within 0\.3 s$/);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('an answer larger than the bound is refused instead of held in memory', async () => {
    handler = (_, res) => {
      res.write('[');
      const chunk = '0,'.repeat(32 * 1024);
      const pump = (): void => {
        while (res.write(chunk));
        res.once('drain', pump);
      };
      res.on('close', () => res.removeAllListeners('drain'));
      pump();
    };
    await expect(client({ maxResponseBytes: 1024 * 1024 }).request({ method: 'GET', path: '/api/v1/nodes' })).rejects.toThrow("the API server's answer is larger than 1048576 bytes");
  });

  test('an unreadable credential file is named', async () => {
    const http = new KubeHttp({ server: base, token: { file: '/nonexistent/token' } });
    await expect(http.request({ method: 'GET', path: '/' })).rejects.toThrow(/^cannot read \/nonexistent\/token: .*ENOENT: no such file or directory/);
  });

  describe('a stream (a watch)', () => {
    test('hands over complete lines, however the answer is cut into chunks, and resolves when the server ends it', async () => {
      let seen: string | undefined;
      handler = (req, res) => {
        seen = req.url;
        res.write('{"a":1}\n{"b"');
        setTimeout(() => res.write(':2}\n\n{"c":3}'), 50);
        setTimeout(() => res.end('\n'), 100);
      };
      const lines: string[] = [];
      const stream = client().stream({ method: 'GET', path: '/apis/coordination.k8s.io/v1/namespaces/knawd/leases', query: { watch: '1' } }, (l) => lines.push(l), { idleMs: 5000 });
      await stream.done;
      expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
      expect(seen).toBe('/apis/coordination.k8s.io/v1/namespaces/knawd/leases?watch=1');
    });

    test('an answer other than 200 rejects with its Status message and hands over no line', async () => {
      handler = (_, res) => {
        res.statusCode = 410;
        res.end('{"kind":"Status","message":"too old resource version: 5 (9)"}\n');
      };
      const lines: string[] = [];
      await expect(client().stream({ method: 'GET', path: '/w' }, (l) => lines.push(l), { idleMs: 5000 }).done).rejects.toMatchObject({ status: 410, message: 'too old resource version: 5 (9)' });
      expect(lines).toEqual([]);
    });

    test('a stream quiet for longer than its idle bound is given up on; stop() ends one quietly', async () => {
      handler = (_, res) => res.write('{"a":1}\n');
      const lines: string[] = [];
      await expect(client().stream({ method: 'GET', path: '/w' }, (l) => lines.push(l), { idleMs: 300 }).done).rejects.toThrow(/^127\.0\.0\.1:\d+: nothing from the API server for 0\.3 s$/);
      expect(lines).toEqual(['{"a":1}']);
      const open = client().stream({ method: 'GET', path: '/w' }, () => undefined, { idleMs: 5000 });
      await new Promise((r) => setTimeout(r, 100));
      open.stop();
      await expect(open.done).resolves.toBeUndefined();
    });

    test('a connection cut mid-stream rejects', async () => {
      handler = (_, res) => {
        res.write('{"a":1}\n');
        setTimeout(() => res.socket?.destroy(), 50);
      };
      await expect(client().stream({ method: 'GET', path: '/w' }, () => undefined, { idleMs: 5000 }).done).rejects.toMatchObject({ status: undefined });
    });
  });
});
