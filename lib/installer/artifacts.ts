/**
 * The files this run installs, as the image's `artifacts.json` lists them for (target, runtime) and
 * `SHA256SUMS` hashes them ({@link locateArtifacts}), and the check that files hash to their entries
 * ({@link verifyArtifacts}: for `plan` and `status`, which copy nothing). install verifies each artifact as it
 * copies it (HostFs.stageCopy: one read pass, checked before anything is put in place), so a damaged artifact is
 * never installed and nothing is changed. A re-install whose installed copies already match copies nothing and
 * so reads nothing of the image's artifacts (each pod restart on each node).
 *
 * Artifacts are never held in memory: they are hashed through one reused 1 MiB buffer ({@link hashFile}).
 *
 * Layout (lib/catalog/vendor-manifest.ts): `<artifacts>/artifacts.json`, `<artifacts>/SHA256SUMS` in `sha256sum`
 * format over every file, and the files of each build at the paths artifacts.json gives (`lib/<soname>`,
 * `<runtime>/crun`); builds that several targets share are stored once.
 *
 * The prefix: every shipped ELF names its loader and libraries by absolute path (PT_INTERP, RUNPATH), written as
 * the default prefix padded with "/" to HOST_PREFIX_MAX_LENGTH (the manifest's `placeholder`). A file marked
 * `prefixed` is copied with those bytes replaced by the chosen prefix padded the same way (see
 * {@link PrefixRewriter}); for the default prefix the copy is the artifact itself.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import type { RuntimeSpec, TargetSpec, VendorManifest, VendorRole } from '../catalog';
import { HOST_PREFIX_MAX_LENGTH, installerImageName, VENDOR_MANIFEST } from '../catalog';
import { InstallerError, NoBuildForNode } from './errors';

/** Same-length replacement of the placeholder by the chosen prefix, padded with "/". */
export interface PrefixRewrite {
  readonly from: Buffer;
  readonly to: Buffer;
}

export interface Artifact {
  /** Path under the artifacts root, as listed in SHA256SUMS and artifacts.json. */
  readonly name: string;
  /** Where the verified file is, in this process's file system (the installer image). */
  readonly file: string;
  readonly role: VendorRole;
  /** Size in bytes. */
  readonly size: number;
  /** sha256 of the file as its SHA256SUMS entry gives it; {@link verifyArtifacts} checks the file against it. */
  readonly sha256: string;
  /** Applied while copying; undefined when the copy is the file itself. */
  readonly rewrite?: PrefixRewrite;
}

/** The files of one build, crun first. */
export interface Artifacts {
  /** The build's name in artifacts.json. */
  readonly build: string;
  readonly files: readonly Artifact[];
}

/** The one buffer every streamed hash and copy reads through: memory stays flat whatever the artifact size. */
const CHUNK = 1024 * 1024;
let chunk: Buffer | undefined;

/** The shared 1 MiB I/O buffer. Callers are synchronous and never nest, so one buffer is enough. */
export function ioBuffer(): Buffer {
  chunk ??= Buffer.allocUnsafe(CHUNK);
  return chunk;
}

/**
 * Replaces every occurrence of `from` by `to` (same length) in a stream of chunks: what {@link push} returns is
 * final; the last `from.length - 1` bytes are held back, since an occurrence may straddle two chunks.
 */
export class PrefixRewriter {
  private carry = Buffer.alloc(0);

  constructor(private readonly rewrite: PrefixRewrite) {
    if (rewrite.from.length !== rewrite.to.length || rewrite.from.length === 0) throw new Error('internal error: a prefix rewrite must keep the length');
  }

  push(data: Buffer): Buffer {
    const { from, to } = this.rewrite;
    const all = Buffer.concat([this.carry, data]);
    for (let i = all.indexOf(from); i !== -1; i = all.indexOf(from, i + from.length)) to.copy(all, i);
    const keep = Math.min(all.length, from.length - 1);
    this.carry = Buffer.from(all.subarray(all.length - keep));
    return all.subarray(0, all.length - keep);
  }

  end(): Buffer {
    const rest = this.carry;
    this.carry = Buffer.alloc(0);
    return rest;
  }
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

/** The chosen prefix padded with "/" to the placeholder's length; undefined when it cannot fit. */
export function paddedPrefix(prefix: string, placeholder: string): string | undefined {
  return prefix.length > placeholder.length ? undefined : prefix.padEnd(placeholder.length, '/');
}

/**
 * The files of the build that serves (target, runtime): present, regular files, listed in SHA256SUMS. Not hashed
 * (see {@link verifyArtifacts}), except artifacts.json itself, which is small and says what everything else is.
 */
export function locateArtifacts(root: string, target: TargetSpec, runtime: RuntimeSpec, prefix: string): Artifacts {
  const fix = `use an installer image that ships ${runtime.name} for ${target.name}, or point --artifacts at a directory that has it`;
  const { manifest, manifestPath, sums, sumsPath } = readManifest(root, fix);
  const refusal = runtimeRefusal(manifest, manifestPath, runtime.name);
  if (refusal) throw refusal;
  const buildName = manifest.targets[target.name]?.[runtime.name];
  const build = buildName === undefined ? undefined : manifest.builds[buildName];
  if (build === undefined) throw new InstallerError(`this image ships no ${runtime.name} for target ${target.name} (${manifestPath})`, fix);
  const padded = paddedPrefix(prefix, manifest.placeholder);
  if (padded === undefined) {
    throw new InstallerError(`prefix ${prefix} is longer than the ${manifest.placeholder.length} characters this image's binaries can hold`, `choose a prefix of at most ${HOST_PREFIX_MAX_LENGTH} characters`);
  }
  const rewrite = padded === manifest.placeholder ? undefined : { from: Buffer.from(manifest.placeholder, 'utf8'), to: Buffer.from(padded, 'utf8') };
  const files = build.files.map((entry): Artifact => {
    const file = path.join(root, entry.path);
    let stat: fs.Stats;
    try {
      stat = fs.statSync(file);
    } catch {
      throw new InstallerError(`artifact ${file} is missing`, fix);
    }
    if (!stat.isFile()) throw new InstallerError(`artifact ${file} is not a regular file`, fix);
    const expected = sums.get(entry.path);
    if (expected === undefined) throw new InstallerError(`${sumsPath} has no checksum for ${entry.path}`, fix);
    return { name: entry.path, file, role: entry.role, size: stat.size, sha256: expected, ...(entry.prefixed && rewrite ? { rewrite } : {}) };
  });
  return { build: buildName as string, files };
}

/** artifacts.json, checked against its SHA256SUMS entry, and the sums of every file. */
export function readManifest(root: string, fix: string): { manifest: VendorManifest; manifestPath: string; sums: Map<string, string>; sumsPath: string } {
  const sumsPath = path.join(root, VENDOR_MANIFEST.sums);
  const sums = parseSha256Sums(readOrFail(sumsPath, `checksum list ${sumsPath} is missing`, fix).toString('utf8'), sumsPath);
  const manifestPath = path.join(root, VENDOR_MANIFEST.file);
  const manifestBytes = readOrFail(manifestPath, `artifact manifest ${manifestPath} is missing`, fix);
  if (sums.get(VENDOR_MANIFEST.file) !== sha256(manifestBytes)) {
    throw new InstallerError(`${manifestPath} does not match its SHA256SUMS entry; nothing was changed`, 'the installer image is damaged or was tampered with: pull it again or rebuild it');
  }
  return { manifest: parseManifest(manifestBytes, manifestPath), manifestPath, sums, sumsPath };
}

/**
 * The refusal of an image with no build of `runtime` at all: each per-engine image carries one build (its
 * ociType's), an unbuilt architecture's image none. The message names the image that has it.
 */
export function runtimeRefusal(manifest: VendorManifest, manifestPath: string, runtime: string): NoBuildForNode | undefined {
  const carried = [...new Set(Object.values(manifest.builds).map((b) => b.runtime))].sort();
  if (carried.includes(runtime)) return undefined;
  const needed = installerImageName(runtime);
  return new NoBuildForNode(
    `this image (${manifestPath}) carries ${carried.length === 0 ? 'no crun build' : `${carried.join(', ')} only`}; ociType ${runtime} needs image ${needed}; nothing was changed`,
    `run the installer from ${needed} (the chart picks it by ociType; an image.reference override must name that ociType's image)`,
  );
}

function parseManifest(data: Buffer, file: string): VendorManifest {
  let value: Partial<VendorManifest> | null;
  try {
    value = JSON.parse(data.toString('utf8')) as Partial<VendorManifest> | null;
  } catch {
    value = null;
  }
  const ok =
    !!value &&
    value.schema === VENDOR_MANIFEST.schema &&
    typeof value.placeholder === 'string' &&
    value.placeholder.length > 0 &&
    typeof value.builds === 'object' &&
    typeof value.targets === 'object' &&
    Object.values(value.builds ?? {}).every(
      (b) => Array.isArray(b?.files) && b.files.filter((f) => f.role === 'crun').length === 1 && b.files.every((f) => typeof f.path === 'string' && !f.path.split('/').includes('..')),
    );
  if (!ok) throw new InstallerError(`${file} is not an artifact manifest of schema ${VENDOR_MANIFEST.schema}`, 'use an installer image built by this version of knawd-deployer');
  return value as VendorManifest;
}

/**
 * Hashes each artifact and throws on the first that does not match its SHA256SUMS entry. Returns, for each, the
 * sha256 of what its copy will hold (the rewritten bytes for a prefixed file), from the same read.
 */
export function verifyArtifacts(artifacts: readonly Artifact[]): Map<Artifact, string> {
  const installed = new Map<Artifact, string>();
  for (const artifact of artifacts) {
    let actual: { sha256: string; copy: string };
    try {
      actual = hashWithRewrite(artifact);
    } catch (error) {
      throw new InstallerError(`artifact ${artifact.file} cannot be read: ${error instanceof Error ? error.message : String(error)}`, 'the installer image is damaged: pull it again or rebuild it');
    }
    if (actual.sha256 !== artifact.sha256) {
      throw new InstallerError(
        `checksum mismatch for ${artifact.file}: SHA256SUMS says ${artifact.sha256}, the file is ${actual.sha256}; nothing was changed`,
        'the installer image is damaged or was tampered with: pull it again or rebuild it',
      );
    }
    installed.set(artifact, actual.copy);
  }
  return installed;
}

function hashWithRewrite(artifact: Artifact): { sha256: string; copy: string } {
  if (!artifact.rewrite) {
    const { sha256: digest } = hashFile(artifact.file);
    return { sha256: digest, copy: digest };
  }
  const source = createHash('sha256');
  const copy = createHash('sha256');
  const rewriter = new PrefixRewriter(artifact.rewrite);
  const buf = ioBuffer();
  const fd = fs.openSync(artifact.file, 'r');
  try {
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      source.update(buf.subarray(0, n));
      copy.update(rewriter.push(buf.subarray(0, n)));
    }
  } finally {
    fs.closeSync(fd);
  }
  copy.update(rewriter.end());
  return { sha256: source.digest('hex'), copy: copy.digest('hex') };
}

/** {@link locateArtifacts} and {@link verifyArtifacts} of all: for `status`, which must not trust a listing. */
export function loadArtifacts(root: string, target: TargetSpec, runtime: RuntimeSpec, prefix: string): Artifacts {
  const artifacts = locateArtifacts(root, target, runtime, prefix);
  verifyArtifacts(artifacts.files);
  return artifacts;
}

function readOrFail(file: string, message: string, fix: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch {
    throw new InstallerError(message, fix);
  }
}
