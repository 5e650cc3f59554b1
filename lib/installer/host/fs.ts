/**
 * The host's file system as seen through the node-root mount. Every path given to it is a HOST path
 * (`/etc/containerd/config.toml`); symlinks are followed inside the node root (an absolute link target is
 * taken relative to the node root, `..` never leaves it), so nothing outside the host's tree is ever touched.
 *
 * Writes are atomic: a temp file in the same directory, written, fsync'ed, given the mode and owner of the
 * file it replaces, renamed over it, then the directory fsync'ed. Artifact copies are staged (each written to
 * its temp file and verified as it is read: one read pass), then committed together: renamed in order, one
 * fsync per directory. A write or delete given the content it
 * expects to find is compare-and-swap: right before the rename (or unlink) the file is read again, and when
 * another writer changed it meanwhile nothing is replaced ({@link ConcurrentChange}). POSIX has no atomic
 * compare-and-rename, so a writer landing between that read and the rename (microseconds) is not caught.
 * Every mutation goes through {@link step}, which counts it, lets tests inject a crash before or after it, and
 * turns a file-system fault into one line naming the host path (host/errors.ts).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { hashFd, ioBuffer, PrefixRewrite, PrefixRewriter } from '../artifacts';
import { InstallerError } from '../errors';
import type { Fingerprint } from '../plan/state';
import { effectError, EffectContext } from './errors';

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
  /** `stage`: a copy written to its temp file; `commit`: a staged copy renamed into place. */
  readonly op: 'write' | 'stage' | 'commit' | 'mkdir' | 'remove' | 'rmdir';
  readonly path: string;
}

export type FsHook = (event: FsEvent) => void;

/** A file's sha256, hashed just now, with the fingerprint of the inode that was hashed. */
export interface FileDigest {
  readonly sha256: string;
  readonly size: number;
  /** Undefined when the file changed while it was read (then the hash is not tied to any stat). */
  readonly fingerprint?: Fingerprint;
}

/**
 * What a compare-and-swap write or delete expects to find: the bytes read when the run planned, or null when
 * the file did not exist then.
 */
export type Expected = Buffer | null;

/** An artifact whose bytes are not those its SHA256SUMS entry names (HostFs.stageCopy). */
export class ChecksumMismatch extends InstallerError {}

/** What a staged copy is made from: an artifact, its SHA256SUMS digest, the prefix rewrite to apply. */
export interface CopySource {
  readonly file: string;
  readonly sha256: string;
  readonly rewrite?: PrefixRewrite;
}

/** A copy in its temp file beside its target, verified and fsync'ed, not yet in place. */
export interface StagedCopy {
  readonly hostPath: string;
  /** sha256 of the bytes staged: the artifact's, or the rewritten copy's. */
  readonly sha256: string;
  readonly bytes: number;
  readonly tmp: string;
  readonly target: string;
}

/** A file changed by someone else between the run's read and its replace: it was left as that writer left it. */
export class ConcurrentChange extends InstallerError {}

const TEMP_SUFFIX = '.knawd-tmp';

/** The name of the temp file a write of `name` goes through; a leftover of a killed run is removed by the next. */
export function tempName(name: string): string {
  return `.${name}${TEMP_SUFFIX}`;
}

/** Whether `name` is a write temp file ({@link tempName}). */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith(TEMP_SUFFIX) && name.length > 1 + TEMP_SUFFIX.length;
}

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

  /** The stat fingerprint of a regular file (following symlinks), or undefined when it does not exist / is not a file. */
  fingerprint(hostPath: string): Fingerprint | undefined {
    try {
      const st = fs.statSync(this.local(hostPath));
      return st.isFile() ? fingerprintOf(st) : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /**
   * The file's sha256, streamed through a fixed buffer (never the whole file in memory); undefined when it
   * does not exist. The fingerprint is of the inode that was read, taken before and checked after reading.
   */
  digest(hostPath: string): FileDigest | undefined {
    const st = this.stat(hostPath);
    if (st === undefined) return undefined;
    if (st.kind !== 'file') {
      throw new InstallerError(`${hostPath} on the node is not a regular file`, `move it away or check the target; expected a file at ${hostPath}`);
    }
    const fd = this.mapped('read', hostPath, () => fs.openSync(this.local(hostPath), 'r'));
    try {
      const before = fingerprintOf(fs.fstatSync(fd));
      const { sha256, size } = hashFd(fd);
      const after = fingerprintOf(fs.fstatSync(fd));
      const stable = sameFingerprint(before, after) && after.size === size;
      return { sha256, size, ...(stable ? { fingerprint: after } : {}) };
    } finally {
      fs.closeSync(fd);
    }
  }

  exists(hostPath: string): boolean {
    return this.stat(hostPath) !== undefined;
  }

  /** The size of a regular file (a final symlink not followed), or undefined when there is none. */
  size(hostPath: string): number | undefined {
    try {
      const st = fs.lstatSync(this.local(hostPath, false));
      return st.isFile() ? st.size : undefined;
    } catch (error) {
      if (isMissing(error)) return undefined;
      throw error;
    }
  }

  /** The file's bytes, or undefined when it does not exist. A directory in its place is an error. */
  read(hostPath: string): Buffer | undefined {
    const st = this.stat(hostPath);
    if (st === undefined) return undefined;
    if (st.kind !== 'file') {
      throw new InstallerError(`${hostPath} on the node is not a regular file`, `move it away or check the target; expected a file at ${hostPath}`);
    }
    return this.mapped('read', hostPath, () => fs.readFileSync(this.local(hostPath)));
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

  /**
   * Replaces (or creates) the file atomically. `mode` defaults to the replaced file's mode, else 0644. With
   * `expected`, only while the file still holds it (compare-and-swap, see the header).
   */
  writeFile(hostPath: string, data: Buffer, mode?: number, expected?: Expected): void {
    this.step('write', hostPath, () => {
      this.atomicWrite(
        hostPath,
        mode,
        (fd) => {
          let offset = 0;
          while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset);
          return data.length;
        },
        expected,
      );
    });
  }

  /** Throws {@link ConcurrentChange} unless the file holds `expected` (null: does not exist). */
  checkUnchanged(hostPath: string, expected: Expected): void {
    const now = this.read(hostPath) ?? null;
    const same = now === null || expected === null ? now === expected : now.equals(expected);
    if (same) return;
    const what = expected === null ? 'was created by another writer' : now === null ? 'was deleted by another writer' : 'was changed by another writer';
    throw new ConcurrentChange(
      `${hostPath} ${what} while this run was going on (it is not what the run read when it planned); it was left as that writer left it`,
      'run the same command again once the other writer is done: it plans against the file as it is then',
    );
  }

  /**
   * Writes a copy of `source` (an artifact: a file in this process's file system) to the temp file beside
   * `hostPath`, verifies it against `source.sha256` and fsyncs it, in one read pass over the bytes:
   * - the artifact itself (no rewrite): the kernel copies it (copy_file_range, or a reflink where the file
   *   system shares blocks: no bytes through user space), then the temp file is hashed while its fsync runs
   *   on the thread pool, so the disk and the hash work at once; what is verified is what will be renamed;
   * - a copy whose prefix is rewritten needs the bytes: read, hashed, rewritten and written through one fixed
   *   buffer, the rewritten bytes hashed too (the copy's own digest), then fsync'ed.
   * On a mismatch (a damaged or swapped artifact) the temp file is removed and this throws
   * {@link ChecksumMismatch}. Nothing is in place until {@link commitCopies}; {@link discardCopies} takes back.
   */
  async stageCopy(hostPath: string, source: CopySource, mode?: number): Promise<StagedCopy> {
    const index = this.counters.mutations++;
    this.hook?.({ index, phase: 'before', op: 'stage', path: hostPath });
    let staged: StagedCopy;
    try {
      staged = source.rewrite ? this.stageRewritten(hostPath, source, mode) : await this.stageKernelCopy(hostPath, source, mode);
    } catch (error) {
      throw effectError(error, { op: 'stage', hostPath, nodeRoot: this.nodeRoot });
    }
    this.hook?.({ index, phase: 'after', op: 'stage', path: hostPath });
    return staged;
  }

  private async stageKernelCopy(hostPath: string, source: CopySource, mode?: number): Promise<StagedCopy> {
    const { target, tmp, fileMode, owner } = this.tempFor(hostPath, mode);
    fs.copyFileSync(source.file, tmp, fs.constants.COPYFILE_FICLONE);
    let fd: number | undefined;
    try {
      fd = fs.openSync(tmp, 'r+');
      fs.fchmodSync(fd, fileMode);
      if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
      const synced = fsyncOnPool(fd);
      let digest: { sha256: string; size: number };
      try {
        digest = hashFd(fd);
      } finally {
        await synced;
      }
      fs.closeSync(fd);
      fd = undefined;
      checkDigest(source, digest.sha256);
      return { hostPath, sha256: digest.sha256, bytes: digest.size, tmp, target };
    } catch (error) {
      if (fd !== undefined) fs.closeSync(fd);
      discard(tmp);
      throw error;
    }
  }

  private stageRewritten(hostPath: string, source: CopySource, mode?: number): StagedCopy {
    let copySha = '';
    const temp = this.writeTemp(hostPath, mode, (fd) => {
      const hash = createHash('sha256');
      const out = createHash('sha256');
      const rewriter = new PrefixRewriter(source.rewrite as PrefixRewrite);
      const buf = ioBuffer();
      const src = fs.openSync(source.file, 'r');
      let total = 0;
      const put = (data: Buffer): void => {
        out.update(data);
        let offset = 0;
        while (offset < data.length) offset += fs.writeSync(fd, data, offset, data.length - offset);
        total += data.length;
      };
      try {
        for (;;) {
          const n = fs.readSync(src, buf, 0, buf.length, null);
          if (n === 0) break;
          hash.update(buf.subarray(0, n));
          put(rewriter.push(buf.subarray(0, n)));
        }
        put(rewriter.end());
      } finally {
        fs.closeSync(src);
      }
      checkDigest(source, hash.digest('hex'));
      copySha = out.digest('hex');
      return total;
    });
    return { hostPath, sha256: copySha, bytes: temp.written, tmp: temp.tmp, target: temp.target };
  }

  /**
   * Puts staged copies in place, in order (each a rename), then fsyncs each directory once: all of them are
   * durable before this returns (before anything that refers to them, such as a runtime config, is written).
   */
  commitCopies(copies: readonly StagedCopy[]): void {
    for (const copy of copies) {
      this.step('commit', copy.hostPath, () => this.putInPlace(copy.hostPath, copy.tmp, copy.target));
      this.counters.bytesWritten += copy.bytes;
      this.counters.filesWritten += 1;
    }
    for (const dir of new Set(copies.map((c) => path.dirname(c.target)))) syncDir(dir);
  }

  /** Removes the temp files of staged copies that were not committed (best effort, see {@link discard}). */
  discardCopies(copies: readonly StagedCopy[]): void {
    for (const copy of copies) discard(copy.tmp);
  }

  /**
   * Temp file in the same directory, filled by `fill` (returns the bytes written), fsync'ed, renamed over the
   * target (after the compare-and-swap check, with `expected`). On any failure the temp file is removed.
   */
  private atomicWrite(hostPath: string, mode: number | undefined, fill: (fd: number) => number, expected?: Expected): void {
    const temp = this.writeTemp(hostPath, mode, fill);
    this.putInPlace(hostPath, temp.tmp, temp.target, expected);
    syncDir(path.dirname(temp.target));
    this.counters.bytesWritten += temp.written;
    this.counters.filesWritten += 1;
  }

  /** The temp file beside `hostPath`, and the mode and owner the file it replaces has (or 0644, ours). */
  private tempFor(hostPath: string, mode: number | undefined): { target: string; tmp: string; fileMode: number; owner?: { uid: number; gid: number } } {
    const target = this.local(hostPath);
    const tmp = path.join(path.dirname(target), tempName(path.basename(target)));
    let existing: fs.Stats | undefined;
    try {
      existing = fs.statSync(target);
    } catch (error) {
      if (!isMissing(error)) throw error;
    }
    const fileMode = mode ?? (existing ? existing.mode & 0o7777 : 0o644);
    const owner = existing && (existing.uid !== process.getuid?.() || existing.gid !== process.getgid?.()) ? { uid: existing.uid, gid: existing.gid } : undefined;
    return { target, tmp, fileMode, owner };
  }

  /** The temp file beside `hostPath`, filled, given the mode and owner of the file it replaces, fsync'ed. */
  private writeTemp(hostPath: string, mode: number | undefined, fill: (fd: number) => number): { target: string; tmp: string; written: number } {
    const { target, tmp, fileMode, owner } = this.tempFor(hostPath, mode);
    const fd = fs.openSync(tmp, 'w', fileMode);
    let written: number;
    try {
      written = fill(fd);
      fs.fchmodSync(fd, fileMode);
      if (owner) fs.fchownSync(fd, owner.uid, owner.gid);
      fs.fsyncSync(fd);
    } catch (error) {
      fs.closeSync(fd);
      discard(tmp);
      throw error;
    }
    fs.closeSync(fd);
    return { target, tmp, written };
  }

  /** Renames the temp file over the target (compare-and-swap with `expected`); on failure the temp goes. */
  private putInPlace(hostPath: string, tmp: string, target: string, expected?: Expected): void {
    try {
      if (expected !== undefined) this.checkUnchanged(hostPath, expected);
      this.mapped('rename', hostPath, () => fs.renameSync(tmp, target));
    } catch (error) {
      discard(tmp);
      throw error;
    }
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

  /** Removes a file (not following a final symlink); no-op when missing. With `expected`, compare-and-swap. */
  removeFile(hostPath: string, expected?: Buffer): void {
    const target = this.local(hostPath, false);
    if (!lexists(target)) return;
    this.step('remove', hostPath, () => {
      if (expected !== undefined) this.checkUnchanged(hostPath, expected);
      // unlink, not rm: rm retries a refused unlink as rmdir and reports ENOTDIR instead of the real cause.
      fs.unlinkSync(target);
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
    this.mapped(op, hostPath, action);
    this.hook?.({ index, phase: 'after', op, path: hostPath });
  }

  /** Runs `action`; a file-system fault it throws becomes one line about `hostPath` (host/errors.ts). */
  private mapped<T>(op: EffectContext['op'], hostPath: string, action: () => T): T {
    try {
      return action();
    } catch (error) {
      throw effectError(error, { op, hostPath, nodeRoot: this.nodeRoot });
    }
  }
}

function fingerprintOf(st: fs.Stats): Fingerprint {
  return { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode & 0o7777 };
}

/**
 * Whole-second timestamps: a file system that keeps seconds only (ext3, ext4 with small inodes, some network
 * file systems), where a file rewritten within the same second keeps its mtime and ctime. On the others
 * (nanosecond fields) a whole second is a one-in-a-billion accident, and only costs a re-hash.
 */
export function coarseTimestamps(f: Fingerprint): boolean {
  return f.mtimeMs % 1000 === 0 && f.ctimeMs % 1000 === 0;
}

/** Same size, mtime, ctime, inode and permission bits. */
export function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.mode === b.mode;
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

/** fsync on libuv's thread pool: the caller goes on (hashing) while the disk writes. */
function fsyncOnPool(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (error) => (error ? reject(error) : resolve())));
}

/** Throws {@link ChecksumMismatch} unless `actual` is the artifact's SHA256SUMS digest. */
function checkDigest(source: CopySource, actual: string): void {
  if (actual === source.sha256) return;
  throw new ChecksumMismatch(
    `checksum mismatch for ${source.file}: SHA256SUMS says ${source.sha256}, the file is ${actual}`,
    'the installer image is damaged or was tampered with: pull it again or rebuild it',
  );
}

/**
 * Removes a temp file after a failed write, best effort: on a file system that just went read-only it stays,
 * and the next run removes it (installer.ts clears leftovers); the write's own error is what gets reported.
 */
function discard(tmp: string): void {
  try {
    fs.rmSync(tmp, { force: true });
  } catch {
    // Reported by the caller's error; the leftover is cleared by the next run.
  }
}

function syncDir(dir: string): void {
  const fd = fs.openSync(dir, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
