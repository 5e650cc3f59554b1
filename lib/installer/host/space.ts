/**
 * Room on the node's file systems for what a run will write: free bytes and free inodes (statfs) on each file
 * system a planned write lands on, against what the writes need there. Asked before the first write, so that a
 * full /opt or /var is a refusal that changed nothing, not an install that stops half-way.
 *
 * What a write needs: its new size rounded up to whole blocks plus one block (extent / indirect blocks; the
 * replaced file stays allocated until the rename, so a replace needs its full new size), one inode; a new
 * directory one block and one inode. Free bytes are those available to unprivileged users (f_bavail): the
 * installer runs as root and could dig into the reserved blocks, but a node's daemons need them more. A file
 * system that reports no inode limit (f_files 0: btrfs) is not checked for inodes. Quotas are not visible in
 * statfs; EDQUOT is reported when it happens (host/errors.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from '../errors';
import { formatBytes, nearestExisting } from './errors';
import { HostFs } from './fs';

/** A file the run writes (atomically: temp file, then rename) and its new size. */
export interface PlannedWrite {
  readonly path: string;
  readonly bytes: number;
}

export interface PlannedWrites {
  readonly files: readonly PlannedWrite[];
  /** Directories the run creates. */
  readonly dirs: readonly string[];
}

interface FileSystemNeed {
  /** A host path on this file system, for the message. */
  readonly where: string;
  readonly local: string;
  readonly bsize: number;
  bytes: number;
  inodes: number;
  files: number;
  dirs: number;
}

/** Throws, naming the file system's paths, what the run needs there and what is free, when it does not fit. */
export function checkSpace(host: HostFs, writes: PlannedWrites): void {
  const needs = new Map<number, FileSystemNeed>();
  const on = (hostDir: string): FileSystemNeed => {
    const local = nearestExisting(host.local(hostDir));
    const dev = fs.statSync(local).dev;
    let need = needs.get(dev);
    if (!need) {
      need = { where: hostDir, local, bsize: fs.statfsSync(local).bsize || 4096, bytes: 0, inodes: 0, files: 0, dirs: 0 };
      needs.set(dev, need);
    }
    return need;
  };
  // A path written twice (the state: intent, then the record) needs room for its largest version once.
  const largest = new Map<string, number>();
  for (const w of writes.files) largest.set(w.path, Math.max(largest.get(w.path) ?? 0, w.bytes));
  for (const [file, bytes] of largest) {
    const need = on(path.posix.dirname(file));
    need.bytes += (Math.ceil(bytes / need.bsize) + 1) * need.bsize;
    need.inodes += 1;
    need.files += 1;
  }
  for (const dir of writes.dirs) {
    const need = on(path.posix.dirname(dir));
    need.bytes += need.bsize;
    need.inodes += 1;
    need.dirs += 1;
  }
  for (const need of needs.values()) {
    const st = fs.statfsSync(need.local);
    const freeBytes = st.bavail * st.bsize;
    const inodesLimited = st.files > 0;
    const short = need.bytes > freeBytes ? 'space' : inodesLimited && need.inodes > st.ffree ? 'inodes' : undefined;
    if (!short) continue;
    const what = `${count(need.files, 'file')}${need.dirs > 0 ? ` and ${count(need.dirs, 'directory', 'directories')}` : ''}`;
    throw new InstallerError(
      `not enough ${short === 'space' ? 'free space' : 'free inodes'} on the file system of ${need.where}: this run writes ${what} there, needing ${formatBytes(need.bytes)} and ${count(need.inodes, 'inode')}; ${formatBytes(freeBytes)} and ${inodesLimited ? count(st.ffree, 'inode') : 'unlimited inodes'} are free; nothing was changed`,
      `free ${short === 'space' ? 'space' : 'inodes'} there (df -${short === 'space' ? 'h' : 'i'} ${need.where} on the node), or choose a --prefix on another file system, then run again`,
    );
  }
}

function count(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
