/**
 * The files this run installs, as SHA256SUMS lists them ({@link locateArtifacts}), and the check that the
 * ones about to be copied hash to their entries ({@link verifyArtifacts}), done before anything on the host
 * is written. A re-install whose installed copies already match SHA256SUMS copies nothing and so hashes
 * nothing of the image's 40 MB (each pod restart on each node).
 *
 * Artifacts are never held in memory: they are hashed through one reused 1 MiB buffer ({@link hashFile}),
 * and copied onto the node the same way (HostFs.copyFile, which hashes again what it writes and refuses a
 * copy that does not match the SHA256SUMS digest, so an artifact changed after the check is never installed).
 *
 * Layout: `<artifacts>/<target.artifactDir>/<runtime.name>` (crun), `.../<runtime.library>` (the engine crun
 * dlopen()s), `.../SHA256SUMS` in `sha256sum` format (`<hex>  <name>` or `<hex> *<name>`).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { RuntimeSpec, TargetSpec } from '../catalog';
import { InstallerError } from './errors';

export interface Artifact {
  /** File name, as listed in SHA256SUMS and installed. */
  readonly name: string;
  /** Where the verified file is, in this process's file system (the installer image). */
  readonly file: string;
  /** Size in bytes. */
  readonly size: number;
  /** sha256 of the file as its SHA256SUMS entry gives it; {@link verifyArtifacts} checks the file against it. */
  readonly sha256: string;
}

/** The one buffer every streamed hash and copy reads through: memory stays flat whatever the artifact size. */
const CHUNK = 1024 * 1024;
let chunk: Buffer | undefined;

/** The shared 1 MiB I/O buffer. Callers are synchronous and never nest, so one buffer is enough. */
export function ioBuffer(): Buffer {
  chunk ??= Buffer.allocUnsafe(CHUNK);
  return chunk;
}

/** sha256 and size of what is read from `fd` (from its current offset to the end), through the shared buffer. */
export function hashFd(fd: number): { sha256: string; size: number } {
  const hash = createHash('sha256');
  const buf = ioBuffer();
  let size = 0;
  for (;;) {
    const n = fs.readSync(fd, buf, 0, buf.length, null);
    if (n === 0) break;
    hash.update(buf.subarray(0, n));
    size += n;
  }
  return { sha256: hash.digest('hex'), size };
}

/** sha256 and size of a file, streamed. */
export function hashFile(file: string): { sha256: string; size: number } {
  const fd = fs.openSync(file, 'r');
  try {
    return hashFd(fd);
  } finally {
    fs.closeSync(fd);
  }
}

export interface Artifacts {
  /** The crun binary. */
  readonly binary: Artifact;
  /** The engine library. */
  readonly library: Artifact;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Parses `sha256sum` output into name → hex digest; malformed lines are an error. */
export function parseSha256Sums(text: string, source: string): Map<string, string> {
  const sums = new Map<string, string>();
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) return;
    const match = /^([0-9a-fA-F]{64}) [ *](.+)$/.exec(line);
    if (!match) {
      throw new InstallerError(`${source} line ${i + 1} is not in sha256sum format`, 'rebuild the installer image; its artifacts are damaged');
    }
    sums.set(match[2].replace(/^\.\//, ''), match[1].toLowerCase());
  });
  return sums;
}

/**
 * The binary and library for (target, runtime): present, regular files, listed in SHA256SUMS. Not hashed:
 * see {@link verifyArtifacts}.
 */
export function locateArtifacts(root: string, target: TargetSpec, runtime: RuntimeSpec): Artifacts {
  const dir = path.join(root, target.artifactDir);
  const sumsPath = path.join(dir, 'SHA256SUMS');
  const fix = `use an installer image that ships ${target.artifactDir}/${runtime.name}, or point --artifacts at a directory that has it`;
  const sumsText = readOrFail(sumsPath, `checksum list ${sumsPath} is missing`, fix);
  const sums = parseSha256Sums(sumsText.toString('utf8'), sumsPath);
  const locate = (name: string): Artifact => {
    const file = path.join(dir, name);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new InstallerError(`artifact ${file} is missing`, fix);
    }
    if (!stat.isFile()) throw new InstallerError(`artifact ${file} is not a regular file`, fix);
    const expected = sums.get(name);
    if (expected === undefined) throw new InstallerError(`${sumsPath} has no checksum for ${name}`, fix);
    return { name, file, size: stat.size, sha256: expected };
  };
  return { binary: locate(runtime.name), library: locate(runtime.library) };
}

/** Hashes each artifact and throws on the first that does not match its SHA256SUMS entry. */
export function verifyArtifacts(artifacts: readonly Artifact[]): void {
  for (const artifact of artifacts) {
    let actual: { sha256: string; size: number };
    try {
      actual = hashFile(artifact.file);
    } catch (error) {
      throw new InstallerError(`artifact ${artifact.file} cannot be read: ${error instanceof Error ? error.message : String(error)}`, 'the installer image is damaged: pull it again or rebuild it');
    }
    if (actual.sha256 !== artifact.sha256) {
      throw new InstallerError(
        `checksum mismatch for ${artifact.file}: SHA256SUMS says ${artifact.sha256}, the file is ${actual.sha256}; nothing was changed`,
        'the installer image is damaged or was tampered with: pull it again or rebuild it',
      );
    }
  }
}

/** {@link locateArtifacts} and {@link verifyArtifacts} of both: for `status`, which must not trust a listing. */
export function loadArtifacts(root: string, target: TargetSpec, runtime: RuntimeSpec): Artifacts {
  const artifacts = locateArtifacts(root, target, runtime);
  verifyArtifacts([artifacts.binary, artifacts.library]);
  return artifacts;
}

function readOrFail(file: string, message: string, fix: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new InstallerError(message, fix);
  }
}
