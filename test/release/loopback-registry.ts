/**
 * Debian's docker-registry (distribution 2.8) for a test, on 127.0.0.1 only: TLS with a CA made for the test
 * (openssl), or plain HTTP, or read-only (a registry that refuses every push). `contents()` lists what its
 * storage holds, with each file's content hash and mtime, so a test can tell that a run wrote nothing.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { openssl } from '../../demo/cluster/openssl';

export interface LoopbackRegistry {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  /** The CA's certificate (PEM), when TLS. */
  readonly caFile?: string;
  readonly dir: string;
  contents(): string[];
  stop(): void;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => {
      socket.destroy();
      resolve(true);
    });
  });
}

function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=knawd release test CA']);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'san.ext']);
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server.key') };
}

export async function startRegistry(options: { tls: boolean; readOnly?: boolean }): Promise<LoopbackRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'knawd-release-registry-'));
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  const certs = options.tls ? makeCertificates(dir) : undefined;
  const data = join(dir, 'data');
  const config = [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${data}`,
    ...(options.readOnly ? ['  maintenance:', '    readonly:', '      enabled: true'] : []),
    'http:',
    `  addr: ${address}`,
    ...(certs ? ['  tls:', `    certificate: ${certs.cert}`, `    key: ${certs.key}`] : []),
  ];
  writeFileSync(join(dir, 'config.yml'), `${config.join('\n')}\n`);
  const child: ChildProcess = spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: 'ignore' });
  const exited = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`docker-registry exited ${code} at start-up (apt-get install docker-registry: npm run tools does)`))));
  const deadline = Date.now() + 20_000;
  while (!(await Promise.race([answers(port), exited]))) {
    if (Date.now() > deadline) throw new Error(`docker-registry did not listen on ${address} within 20 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const contents = (): string[] => {
    const out: string[] = [];
    const walk = (d: string): void => {
      let entries: string[] = [];
      try {
        entries = readdirSync(d);
      } catch {
        return;
      }
      for (const e of entries.sort()) {
        const p = join(d, e);
        const s = statSync(p);
        if (s.isDirectory()) walk(p);
        else out.push(`${relative(data, p)} ${createHash('sha256').update(readFileSync(p)).digest('hex').slice(0, 16)} ${s.mtimeMs}`);
      }
    };
    walk(data);
    return out;
  };
  return {
    address,
    caFile: certs?.ca,
    dir,
    contents,
    stop: () => {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
