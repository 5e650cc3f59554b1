/**
 * The node's network: a network namespace of its own, bound to a file (`unshare --net=FILE`), holding only `lo`
 * with the node address on it and the service range routed to it. It has no interface to anywhere else, so
 * nothing started in it (control plane, kubelet, pods) can send a packet off this machine, or even to the
 * machine's own addresses: the test's NETWORK RULE holds by construction.
 *
 * Processes join it with `nsenter --net=FILE` (not `ip netns exec`, which would also give each process a mount
 * namespace of its own and hide the kubelet's mounts from containerd).
 */
import * as fs from 'fs';
import * as path from 'path';
import { exec, must } from './process';

/** The node's address, on `lo` of the namespace: the API server's advertise address and the node's InternalIP. */
export const NODE_ADDRESS = '10.200.0.1';
/** Service ClusterIPs (the API server's `kubernetes` Service is the first, 10.0.0.1). */
export const SERVICE_CIDR = '10.0.0.0/24';
/** Pod addresses, on the CNI bridge inside the namespace. */
export const POD_CIDR = '10.244.0.0/24';

/**
 * Which network namespace this is. The kernel hands a freed namespace's inode number to the next namespace
 * created on the machine (any pod sandbox of any cluster here), so the inode alone names this one only while
 * it lives; the marker, the alias of its `lo`, tells it from a later one with the same number.
 */
export interface NetworkNamespaceId {
  /** `/proc/PID/ns/net` of a process in it reads `net:[inode]`. */
  readonly inode: number;
  /** The alias of its `lo` (`knawd:<harness directory name>`). */
  readonly marker: string;
}

export interface NetworkNamespace extends NetworkNamespaceId {
  /** The bound namespace file, for `nsenter --net=FILE`. */
  readonly file: string;
  /** argv run inside the namespace. */
  enter(argv: readonly string[]): string[];
  /** Unbinds the namespace (it goes once its last process has exited). Never throws; returns what failed. */
  remove(): string[];
}

/** Creates the namespace under `dir` (which must exist) and sets up its addresses and routes. */
export function createNetworkNamespace(dir: string): NetworkNamespace {
  const mountDir = path.join(dir, 'netns');
  const file = path.join(mountDir, 'net');
  const marker = `knawd:${path.basename(dir)}`;
  fs.mkdirSync(mountDir);
  // unshare can bind the namespace only below a private mount.
  must('mount', ['--bind', mountDir, mountDir]);
  must('mount', ['--make-private', mountDir]);
  fs.writeFileSync(file, '');
  const remove = (): string[] => {
    const problems: string[] = [];
    for (const target of [file, mountDir]) {
      const r = exec('umount', [target]);
      if (r.code !== 0 && !/not mounted/.test(r.stderr)) problems.push(`umount ${target}: ${r.stderr.trim()}`);
    }
    return problems;
  };
  try {
    must('unshare', [`--net=${file}`, 'true']);
    const ip = (...args: string[]): void => void must('nsenter', [`--net=${file}`, '--', 'ip', ...args]);
    ip('link', 'set', 'lo', 'up', 'alias', marker);
    ip('addr', 'add', `${NODE_ADDRESS}/32`, 'dev', 'lo');
    // ClusterIPs need a route before kube-proxy's DNAT rewrites them (locally originated traffic: OUTPUT chain).
    ip('route', 'add', SERVICE_CIDR, 'dev', 'lo');
    const routes = must('nsenter', [`--net=${file}`, '--', 'ip', '-o', 'route', 'show', 'table', 'all']).stdout;
    if (/^default /m.test(routes)) throw new Error(`the node's network namespace has a default route:\n${routes}`);
  } catch (error) {
    remove();
    throw error;
  }
  return { file, inode: fs.statSync(file).ino, marker, enter: (argv) => ['/usr/bin/nsenter', `--net=${file}`, '--', ...argv], remove };
}

/**
 * Processes in the network namespace `id`, with their command lines: those whose namespace has its inode
 * number, if that namespace is still `id` (its `lo` has `id`'s marker) and not a later one given the number.
 */
export function processesInNetworkNamespace(id: NetworkNamespaceId): Array<{ pid: number; cmdline: string }> {
  const ns = `net:[${id.inode}]`;
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/net`) !== ns) continue;
      found.push({ pid: Number(entry), cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  // One namespace has the number at a time: the first process still in it says which.
  for (const p of found) {
    const marker = loopbackAlias(p.pid);
    if (marker === undefined) continue;
    return marker === id.marker ? found : [];
  }
  return [];
}

/** The alias of `lo` in the network namespace of `pid` ('' for none); undefined once `pid` is gone. */
function loopbackAlias(pid: number): string | undefined {
  const r = exec('nsenter', [`--net=/proc/${pid}/ns/net`, '--', 'ip', '-j', 'link', 'show', 'dev', 'lo']);
  if (r.code !== 0) return undefined;
  try {
    const [lo] = JSON.parse(r.stdout) as Array<{ ifalias?: string }>;
    return lo?.ifalias ?? '';
  } catch {
    return undefined;
  }
}
