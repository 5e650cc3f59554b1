/**
 * Makes the host's cgroup layout one that crun accepts (1.21 checks as 1.8.1 did, src/libcrun/cgroup.c).
 *
 * Why: this machine mounts cgroup v1 hierarchies under /sys/fs/cgroup (a tmpfs) and a cgroup2 hierarchy at
 * /sys/fs/cgroup/unified — "hybrid" mode — and leaves the `hugetlb` controller on the cgroup2 side. crun
 * refuses to create any container on such a host ("cgroups in hybrid mode not supported, drop all controllers
 * from cgroupv2"), and `--cgroup-manager=disabled` does not avoid the check. A controller leaves the cgroup2
 * hierarchy as soon as it is mounted as a v1 hierarchy of its own, so for each controller still listed in
 * <cgroup2>/cgroup.controllers we do
 *   mkdir -p /sys/fs/cgroup/<c> && mount -t cgroup -o <c> <c> /sys/fs/cgroup/<c>
 * exactly like runtime-artifacts/local/smoke-test.sh. An already usable layout (pure v2, pure v1, or hybrid
 * with an empty cgroup2 controller list — e.g. hugetlb already moved by an earlier run) is left alone. The
 * mounts stay after the test: they are what a correctly configured hybrid host looks like, and other users
 * of crun on this machine rely on them.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { describe as describeRun, exec, mounts } from './process';

export interface CgroupReport {
  /** One line for the test log. */
  readonly summary: string;
  /** Controllers this call moved to v1 hierarchies. */
  readonly moved: readonly string[];
}

function cgroup2Controllers(mountPoint: string): string[] {
  const file = `${mountPoint}/cgroup.controllers`;
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
}

/** Throws (failing the test) when the layout is unusable and cannot be fixed. */
export function ensureCrunCgroupLayout(): CgroupReport {
  const all = mounts();
  const root = all.filter((m) => m.mountPoint === '/sys/fs/cgroup').pop();
  if (!root) throw new Error('cgroups unusable: nothing is mounted at /sys/fs/cgroup, crun cannot create containers');
  if (root.fsType === 'cgroup2') return { summary: 'cgroups: unified (v2) only — nothing to do', moved: [] };
  const v2 = all.filter((m) => m.fsType === 'cgroup2').pop();
  if (!v2) return { summary: 'cgroups: legacy v1 only — nothing to do', moved: [] };
  const before = cgroup2Controllers(v2.mountPoint);
  if (before.length === 0) return { summary: `cgroups: hybrid, cgroup2 at ${v2.mountPoint} holds no controllers — nothing to do`, moved: [] };
  if (process.getuid?.() !== 0) {
    throw new Error(`cgroups unusable for crun: hybrid host whose cgroup2 (${v2.mountPoint}) still holds [${before.join(' ')}], and moving them needs root`);
  }
  for (const c of before) {
    const target = `/sys/fs/cgroup/${c}`;
    mkdirSync(target, { recursive: true });
    const r = exec('mount', ['-t', 'cgroup', '-o', c, c, target]);
    if (r.code !== 0) throw new Error(`cgroups unusable for crun: could not move controller ${c} from cgroup2 to a v1 hierarchy: ${describeRun(r)}`);
  }
  const after = cgroup2Controllers(v2.mountPoint);
  if (after.length > 0) throw new Error(`cgroups unusable for crun: cgroup2 at ${v2.mountPoint} still holds [${after.join(' ')}] after mounting v1 hierarchies`);
  return { summary: `cgroups: hybrid; moved [${before.join(' ')}] from cgroup2 (${v2.mountPoint}) to v1 hierarchies under /sys/fs/cgroup`, moved: before };
}

/**
 * Removes the cgroup `relative` (e.g. `/knawd-e2e-ab12`, the pods' cgroup_parent) and its children from every
 * mounted cgroup hierarchy, deepest first. A cgroup that still has processes cannot be removed (rmdir fails);
 * that is reported, never forced. Returns what could not be removed.
 */
export function removeCgroupTree(relative: string): string[] {
  if (!/^\/[A-Za-z0-9._-]+$/.test(relative)) throw new Error(`refusing to remove cgroup ${relative}: expected one path component of our own`);
  const problems: string[] = [];
  const hierarchies = [...new Set(mounts().filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2').map((m) => m.mountPoint))];
  for (const h of hierarchies) {
    const top = `${h}${relative}`;
    if (!existsSync(top)) continue;
    const dirs: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(`${d}/${e.name}`);
      dirs.push(d);
    };
    try {
      walk(top);
      for (const d of dirs) rmdirSync(d);
    } catch (e) {
      problems.push(`removing cgroup ${top}: ${String(e)}`);
    }
  }
  return problems;
}
