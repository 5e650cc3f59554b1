/**
 * What the demo checks before it changes anything, each failing with one line: root, user/mount/network
 * namespaces, a cgroup layout the node can use, free disk, and the loopback port of the API server's forwarder
 * (held from here on: {@link Preflight.listener} is handed to the forwarder, so nothing can take it meanwhile).
 */
import * as fs from 'fs';
import * as net from 'net';
import { exec, mounts } from './cluster/process';

const GiB = 1024 ** 3;
/** Free space the node needs under the temp directory (containerd's content and snapshots, logs, etcd). */
export const RUN_BYTES = 3 * GiB;
/** Free space a cold build needs (Go and Cargo build caches, the tools and image cache). */
export const BUILD_BYTES = 25 * GiB;

export class Refusal extends Error {}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new Refusal('needs root: it starts a throwaway node on this machine (namespaces, mounts, cgroups); run it as root');
  }
}

export function requireNamespaces(): void {
  const r = exec('unshare', ['--user', '--mount', '--net', '--fork', 'true'], { timeoutMs: 20_000 });
  if (r.code !== 0) {
    throw new Refusal(`this machine gives no user, mount and network namespaces (unshare --user --mount --net: ${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}); the demo's node needs them`);
  }
}

/** Controllers the kubelet (cgroupfs driver) cannot do without. */
const NEEDED_CONTROLLERS = ['cpu', 'memory', 'pids'];

export function requireCgroups(): void {
  const all = mounts();
  const root = all.filter((m) => m.mountPoint === '/sys/fs/cgroup').pop();
  if (!root) throw new Refusal('a cgroup layout the demo cannot use: nothing is mounted at /sys/fs/cgroup');
  const available = new Set<string>();
  for (const m of all) {
    if (m.fsType === 'cgroup2') {
      try {
        for (const c of fs.readFileSync(`${m.mountPoint}/cgroup.controllers`, 'utf8').split(/\s+/)) if (c) available.add(c);
      } catch {
        // no controllers file: an empty unified hierarchy
      }
    } else if (m.fsType === 'cgroup') {
      for (const c of m.mountPoint.split('/').pop()?.split(',') ?? []) available.add(c);
    }
  }
  const missing = NEEDED_CONTROLLERS.filter((c) => !available.has(c));
  if (missing.length > 0) throw new Refusal(`a cgroup layout the demo cannot use: no ${missing.join(', ')} controller mounted (under /sys/fs/cgroup), which the node's kubelet needs`);
}

export function requireDisk(paths: ReadonlyArray<{ path: string; bytes: number; why: string }>): void {
  for (const { path: p, bytes, why } of paths) {
    const st = fs.statfsSync(p);
    const free = st.bavail * st.bsize;
    if (free < bytes) throw new Refusal(`too little disk: ${why} needs ${(bytes / GiB).toFixed(0)} GiB free on the file system of ${p}, which has ${(free / GiB).toFixed(1)} GiB`);
  }
}

/** Listens on 127.0.0.1:port, or refuses naming who would need it. */
export function holdPort(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new Refusal(`port 127.0.0.1:${port} is taken: the demo forwards its API server there; free it or pick another with --port <n>`) : error),
    );
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => resolve(server));
  });
}
