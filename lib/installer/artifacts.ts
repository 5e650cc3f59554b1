/**
 * The files this run installs, read from the installer image's artifacts and checked against SHA256SUMS
 * before anything on the host is touched.
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
  readonly data: Buffer;
  readonly sha256: string;
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

/** Reads and verifies the binary and library for (target, runtime); throws before returning anything partial. */
export function loadArtifacts(root: string, target: TargetSpec, runtime: RuntimeSpec): Artifacts {
  const dir = path.join(root, target.artifactDir);
  const sumsPath = path.join(dir, 'SHA256SUMS');
  const fix = `use an installer image that ships ${target.artifactDir}/${runtime.name}, or point --artifacts at a directory that has it`;
  const sumsText = readOrFail(sumsPath, `checksum list ${sumsPath} is missing`, fix);
  const sums = parseSha256Sums(sumsText.toString('utf8'), sumsPath);
  const load = (name: string): Artifact => {
    const file = path.join(dir, name);
    const data = readOrFail(file, `artifact ${file} is missing`, fix);
    const expected = sums.get(name);
    if (expected === undefined) throw new InstallerError(`${sumsPath} has no checksum for ${name}`, fix);
    const actual = sha256(data);
    if (actual !== expected) {
      throw new InstallerError(
        `checksum mismatch for ${file}: SHA256SUMS says ${expected}, the file is ${actual}; nothing was changed`,
        'the installer image is damaged or was tampered with: pull it again or rebuild it',
      );
    }
    return { name, data, sha256: actual };
  };
  return { binary: load(runtime.name), library: load(runtime.library) };
}

function readOrFail(file: string, message: string, fix: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new InstallerError(message, fix);
  }
}
