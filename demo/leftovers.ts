/**
 * What a demo run could leave on the machine, looked for after its teardown: its directories, mounts under
 * them, its cgroups, processes in its network namespace, its forwarder, and changes to the machine's own
 * iptables rules (the node's rules live in its namespace and go with it).
 */
import * as fs from 'fs';
import { NetworkNamespaceId, processesInNetworkNamespace } from './cluster/netns';
import { cgroupHierarchies } from './cluster/node';
import { exec, mounts } from './cluster/process';

/** What a run made, as the runner prints it (`demo run: …` line) for the test to check independently. */
export interface RunFootprint {
  /** The node harness's directory (`<tmp>/knawd-node-…`) and the control plane's (`<tmp>/knawd-cluster-…`). */
  readonly dirs: readonly string[];
  /** The node's cgroup root, `/knawd-node-…`, in every hierarchy. */
  readonly cgroup: string;
  /** The node's network namespace (its inode number alone may name another one by the time this is read). */
  readonly netns: NetworkNamespaceId;
  /** Processes the run started outside the cluster (the loopback forwarder). */
  readonly pids: readonly number[];
}

const FOOTPRINT_PREFIX = 'demo run: ';

export function footprintLine(f: RunFootprint): string {
  return `${FOOTPRINT_PREFIX}${JSON.stringify(f)}`;
}

export function parseFootprint(output: string): RunFootprint {
  const line = output.split('\n').map((l) => l.trim()).find((l) => l.startsWith(FOOTPRINT_PREFIX));
  if (!line) throw new Error(`no "${FOOTPRINT_PREFIX}" line in the demo's output`);
  return JSON.parse(line.slice(FOOTPRINT_PREFIX.length)) as RunFootprint;
}

/** The machine's iptables rules without counters (what the demo must not change). */
export function iptablesRules(): string {
  const r = exec('iptables-save', []);
  if (r.code !== 0) return `(iptables-save failed: ${r.stderr.trim()})`;
  return r.stdout
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/\[\d+:\d+\]/g, ''))
    .join('\n');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** What of `f` is still on the machine, and whether the iptables rules differ from `rulesBefore`. Empty when clean. */
export function leftBehind(f: RunFootprint, rulesBefore: string): string[] {
  const found: string[] = [];
  for (const d of f.dirs) {
    if (fs.existsSync(d)) found.push(`directory ${d}`);
    for (const m of mounts()) if (m.mountPoint === d || m.mountPoint.startsWith(`${d}/`)) found.push(`mount ${m.mountPoint} (${m.fsType})`);
  }
  for (const h of cgroupHierarchies()) if (fs.existsSync(`${h}${f.cgroup}`)) found.push(`cgroup ${h}${f.cgroup}`);
  for (const p of processesInNetworkNamespace(f.netns)) found.push(`process ${p.pid} in the node's network namespace: ${p.cmdline}`);
  for (const pid of f.pids) if (alive(pid)) found.push(`process ${pid} (the loopback forwarder)`);
  if (iptablesRules() !== rulesBefore) found.push("the machine's iptables rules changed");
  return found;
}
