/**
 * The host's file system as seen through the node-root mount. Every path given to it is a HOST path
 * (`/etc/containerd/config.toml`); symlinks are followed inside the node root (an absolute link target is
 * taken relative to the node root, `..` never leaves it), so nothing outside the host's tree is ever touched.
 *
 * Writes are atomic: a temp file in the same directory, written, fsync'ed, given the mode and owner of the
 * file it replaces, renamed over it, then the directory fsync'ed. Every mutation goes through {@link step},
 * which counts it and lets tests inject a crash before or after it.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from './errors';

export interface HostStat {
  readonly kind: 'file' | 'dir' | 'other';
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

/** A mutation about to happen or just done; tests throw from the hook to simulate a crash. */
export interface FsEvent {
  /** 0-based count of mutations in this HostFs's life. */
  readonly index: number;
  readonly phase: 'before' | 'after';
  readonly op: 'write' | 'mkdir' | 'remove' | 'rmdir';
  readonly path: string;
}

export type FsHook = (event: FsEvent) => void;

export interface FsCounters {
  bytesWritten: number;
  filesWritten: number;
  mutations: number;
}

export class HostFs {
  readonly counters: FsCounters = { bytesWritten: 0, filesWritten: 0, mutations: 0 };

  constructor(
    /** Where the host's `/` is mounted in this process's file system. */
    readonly nodeRoot: string,
    private readonly hook?: FsHook,
  ) {}

  /** The path in this process's file system that `hostPath` stands for, symlinks resolved inside the node root. */
  local(hostPath: string, followLast = true): string {
    const queue = splitHost(hostPath);
    const done: string[] = [];
    let hops = 0;
    while (queue.length > 0) {
      const part = queue.shift() as string;
      if (part === '..') {
        done.pop();
        continue;
      }
      done.push(part);
      if (!followLast && queue.length === 0) break;
      const candidate = path.join(this.nodeRoot, ...done);
      let isLink = false;
      try {
        isLink = fs.lstatSync(candidate).isSymbolicLink();
      } catch {
        // Missing: the rest of the path cannot hold links either.
      }
      if (!isLink) continue;
      if (++hops > 40) {
        throw new InstallerError(`too many symbolic links resolving ${hostPath} on the node`, 'check the symlinks along that path on the node');
      }
      const target = fs.readlinkSync(candidate);
      done.pop();
      if (target.startsWith('/')) done.length = 0;
      queue.unshift(...splitHost(target));
    }
    return path.join(this.nodeRoot, ...done);
  }

  stat(hostPath: string): HostStat | undefined {
    try {
      const st = fs.statSync(this.local(hostPath));
      return { kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid };
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  exists(hostPath: string): boolean {
    return this.stat(hostPath) !== undefined;
  }

  /** The file's bytes, or undefined when it does not exist. A directory in its place is an error. */
  read(hostPath: string): Buffer | undefined {
    const st = this.stat(hostPath);
    if (st === undefined) return undefined;
    if (st.kind !== 'file') {
      throw new InstallerError(`${hostPath} on the node is not a regular file`, `move it away or check the target; expected a file at ${hostPath}`);
    }
    return fs.readFileSync(this.local(hostPath));
  }

  /** Names in a directory, sorted; undefined when it does not exist. */
  list(hostDir: string): string[] | undefined {
    try {
      return fs.readdirSync(this.local(hostDir)).sort();
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /** Replaces (or creates) the file atomically. `mode` defaults to the replaced file's mode, else 0644. */
  writeFile(hostPath: string, data: Buffer, mode?: number): void {
    this.step('write', hostPath, () => {
      const target = this.local(hostPath);
      const dir = path.dirname(target);
      const tmp = path.join(dir, `.${path.basename(target)}.knawd-tmp`);
      let existing: fs.Stats | undefined;
      try {
        existing = fs.statSync(target);
      } catch (error) {
        if (!isMissing(error)) throw error;
      }
      const fileMode = mode ?? (existing ? existing.mode & 0o7777 : 0o644);
      const fd = fs.openSync(tmp, 'w', fileMode);
      try {
        let offset = 0;
        while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset);
        fs.fchmodSync(fd, fileMode);
        if (existing && (existing.uid !== process.getuid?.() || existing.gid !== process.getgid?.())) {
          fs.fchownSync(fd, existing.uid, existing.gid);
        }
        fs.fsyncSync(fd);
      } catch (error) {
        fs.closeSync(fd);
        fs.rmSync(tmp, { force: true });
        throw error;
      }
      fs.closeSync(fd);
      fs.renameSync(tmp, target);
      syncDir(dir);
      this.counters.bytesWritten += data.length;
      this.counters.filesWritten += 1;
    });
  }

  /** Creates one directory (its parent must exist); no-op when it exists. */
  mkdir(hostPath: string, mode = 0o755): void {
    if (this.stat(hostPath)?.kind === 'dir') return;
    this.step('mkdir', hostPath, () => {
      const target = this.local(hostPath);
      fs.mkdirSync(target, { mode });
      fs.chmodSync(target, mode);
      syncDir(path.dirname(target));
    });
  }

  /** Removes a file (not following a final symlink); no-op when missing. */
  removeFile(hostPath: string): void {
    const target = this.local(hostPath, false);
    if (!lexists(target)) return;
    this.step('remove', hostPath, () => {
      fs.rmSync(target, { force: true });
      syncDir(path.dirname(target));
    });
  }

  /** Removes an empty directory; returns false (and leaves it) when it is not empty; true when gone. */
  removeDir(hostPath: string): boolean {
    const target = this.local(hostPath, false);
    if (!lexists(target)) return true;
    if (fs.readdirSync(target).length > 0) return false;
    this.step('rmdir', hostPath, () => {
      fs.rmdirSync(target);
      syncDir(path.dirname(target));
    });
    return true;
  }

  private step(op: FsEvent['op'], hostPath: string, action: () => void): void {
    const index = this.counters.mutations++;
    this.hook?.({ index, phase: 'before', op, path: hostPath });
    action();
    this.hook?.({ index, phase: 'after', op, path: hostPath });
  }
}

function splitHost(p: string): string[] {
  return p.split('/').filter((part) => part !== '' && part !== '.');
}

function lexists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch (error) {
    if (isMissing(error)) return false;
    throw error;
  }
}

function isMissing(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
