/**
 * What a container of the node harness really uses, read from the host: its processes (found through their
 * cgroup, which carries the container's ID) with their resident memory, and its cgroup v1 counters — CPU time
 * (cpuacct.usage, which counts the readiness probe's exec too, since runc runs it in the container's cgroup)
 * and memory (usage and its peak, page cache included). Issue 17's per-node figures come from here.
 */
import * as fs from 'fs';
import * as path from 'path';

export interface ContainerCgroups {
  readonly memory: string;
  readonly cpuacct: string;
}

export interface ContainerUsage {
  /** Processes in the container's memory cgroup: pid, command line, VmRSS in KiB. */
  readonly processes: ReadonlyArray<{ pid: number; cmdline: string; rssKiB: number }>;
  readonly rssKiB: number;
  /** cpuacct.usage: CPU time of the cgroup since it was created, in ns. */
  readonly cpuNs: bigint;
  readonly memoryBytes: number;
  readonly memoryPeakBytes: number;
  /** What the kubelet counts as used: usage less inactive file pages (its `working_set`). */
  readonly workingSetBytes: number;
}

const CGROUP_ROOT = '/sys/fs/cgroup';

/** The cgroups of the container with this ID (the part after `containerd://`), from any of its processes. */
export function containerCgroups(containerId: string): ContainerCgroups {
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = fs.readFileSync(`/proc/${entry}/cgroup`, 'utf8');
    } catch {
      continue;
    }
    if (!text.includes(containerId)) continue;
    const of = (controller: string): string | undefined => {
      const line = text.split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
      return line && path.join(CGROUP_ROOT, controller, line.slice(line.indexOf(':', line.indexOf(':') + 1) + 1));
    };
    const memory = of('memory');
    const cpuacct = of('cpuacct');
    if (memory && cpuacct && fs.existsSync(memory) && fs.existsSync(cpuacct)) return { memory, cpuacct };
  }
  throw new Error(`no process of container ${containerId} found in /proc (or its cgroups are not mounted under ${CGROUP_ROOT})`);
}

function read(file: string): string {
  return fs.readFileSync(file, 'utf8').trim();
}

export function containerUsage(cg: ContainerCgroups): ContainerUsage {
  const pids = read(path.join(cg.memory, 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
  const processes = pids.flatMap((pid) => {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      return [{ pid, cmdline, rssKiB: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0) }];
    } catch {
      return [];
    }
  });
  const usage = Number(read(path.join(cg.memory, 'memory.usage_in_bytes')));
  const inactiveFile = Number(/^total_inactive_file (\d+)$/m.exec(read(path.join(cg.memory, 'memory.stat')))?.[1] ?? 0);
  return {
    processes,
    rssKiB: processes.reduce((n, p) => n + p.rssKiB, 0),
    cpuNs: BigInt(read(path.join(cg.cpuacct, 'cpuacct.usage'))),
    memoryBytes: usage,
    memoryPeakBytes: Number(read(path.join(cg.memory, 'memory.max_usage_in_bytes'))),
    workingSetBytes: Math.max(0, usage - inactiveFile),
  };
}

/** Resets the cgroup's memory peak (memory.max_usage_in_bytes), so the next peak is of what runs from now on. */
export function resetMemoryPeak(cg: ContainerCgroups): void {
  fs.writeFileSync(path.join(cg.memory, 'memory.max_usage_in_bytes'), '0');
}
