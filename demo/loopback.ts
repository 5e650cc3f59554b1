/**
 * The API server on the machine's loopback. It listens only inside the node's network namespace (which has no
 * route out, and no way in); the demo's listening socket on 127.0.0.1:<port> is made in the machine's namespace
 * and handed as fd 3 to a small forwarder started inside the node's namespace: each connection it accepts there
 * it pipes to the API server's address. Traffic only ever goes to loopback and to the node's own namespace.
 *
 * The forwarder runs under `setpriv --pdeathsig KILL`: it goes with the demo process, whatever ends it.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import { NetworkNamespace, NODE_ADDRESS } from './cluster/netns';

const API_PORT = 6443;

const FORWARDER = `
const net = require('net');
net.createServer((client) => {
  const upstream = net.connect(${API_PORT}, '${NODE_ADDRESS}');
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
}).listen({ fd: 3 });
`;

export interface Forwarder {
  readonly port: number;
  readonly pid: number;
  /** Stops the forwarder; resolves once it is gone. */
  stop(): Promise<void>;
}

/** Starts the forwarder on `listener` (this process then no longer listens itself). */
export function forwardApiServer(listener: net.Server, netns: NetworkNamespace, log: string): Forwarder {
  const port = (listener.address() as net.AddressInfo).port;
  const out = fs.openSync(log, 'a');
  const argv = ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--', ...netns.enter([process.execPath, '-e', FORWARDER])];
  // The listening socket's handle as fd 3 of the child: the one way to hand Node a socket of another namespace.
  const handle = (listener as unknown as { _handle: unknown })._handle;
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out, handle as never], detached: true });
  fs.closeSync(out);
  listener.close();
  const gone = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  return {
    port,
    pid: child.pid ?? -1,
    async stop() {
      child.kill('SIGKILL');
      await gone;
    },
  };
}

/** A kubeconfig for `kubectl`/`helm` on this machine: the admin user, the API server through the forwarder. */
export function loopbackKubeconfig(port: number, caFile: string, token: string): string {
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'knawd-demo', cluster: { server: `https://127.0.0.1:${port}`, 'certificate-authority-data': fs.readFileSync(caFile).toString('base64') } }],
      users: [{ name: 'knawd-demo-admin', user: { token } }],
      contexts: [{ name: 'knawd-demo', context: { cluster: 'knawd-demo', user: 'knawd-demo-admin' } }],
      'current-context': 'knawd-demo',
      preferences: {},
    },
    null,
    2,
  );
}
