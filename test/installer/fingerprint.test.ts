/**
 * Hash once, stream always: the stat-fingerprint shortcut of install (and when it must NOT be taken), the
 * thoroughness of status, the streamed and verified artifact copy, and SELinux relabelling only on change.
 * RSS and time are not asserted here: the benchmark (test/bench) measures them.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import type { TargetSpec } from '../../lib/catalog';
import { hashFile, loadArtifacts, locateArtifacts } from '../../lib/installer/artifacts';
import { coarseTimestamps, FileDigest, HostFs } from '../../lib/installer/host/fs';
import { planCommand } from '../../lib/installer/commands/plan';
import { install } from '../../lib/installer/installer';
import { hostView } from '../../lib/installer/plan/host-view';
import { Fingerprint, FileRecord, parseState } from '../../lib/installer/plan/state';
import { status } from '../../lib/installer/commands/status';
import { effectsFor, fixture, makeArtifacts, makeRoot, settingsFor, snapshot, tempDir, TestEffects } from './support';

const CONTAINERD = '/etc/containerd/config.toml';
const BINARY = '/opt/knawd/libexec/crun-wasmtime/crun';
const LIBRARY = '/opt/knawd/lib/libwasmtime.so';
const WRAPPER = '/opt/knawd/bin/crun-wasmtime';
/** Every file of the build: crun, the loader, libc and the engine (the fixture's crun-wasmtime build). */
const BLOBS = [BINARY, '/opt/knawd/lib/ld-linux-x86-64.so.2', '/opt/knawd/lib/libc.so.6', LIBRARY];
const STATE = 'opt/knawd/state.json';

function args(command: string, root: string, artifacts: string, extra: string[] = []): string[] {
  return [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, ...extra];
}

/** Host paths HostFs.digest (a full, streamed hash) was called for. */
function countDigests(effects: TestEffects): string[] {
  const seen: string[] = [];
  const original = effects.fs.digest.bind(effects.fs);
  jest.spyOn(effects.fs, 'digest').mockImplementation((p: string) => {
    seen.push(p);
    return original(p);
  });
  return seen;
}

async function installed(): Promise<{ root: string; artifacts: string }> {
  const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
  const artifacts = makeArtifacts('ubuntu_22_04');
  await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
  return { root, artifacts };
}

function readState(root: string): { files: FileRecord[] } & Record<string, unknown> {
  return JSON.parse(fs.readFileSync(path.join(root, STATE), 'utf8'));
}

/** Same size, other bytes (in place: same inode), mtime and atime set back to the nanosecond: only ctime and the content tell. */
function tamperKeepingSizeAndMtime(local: string): void {
  const st = fs.statSync(local);
  const times = path.join(tempDir('knawd-times-'), 'times');
  fs.writeFileSync(times, '');
  execFileSync('touch', ['-r', local, times]);
  const data = fs.readFileSync(local);
  data[0] ^= 0xff;
  fs.writeFileSync(local, data);
  execFileSync('touch', ['-r', times, local]);
  expect(fs.statSync(local).ino).toBe(st.ino);
  expect(fs.statSync(local).size).toBe(st.size);
  expect(fs.statSync(local).mtimeMs).toBe(st.mtimeMs);
}

describe('stat fingerprints in the state', () => {
  test('install records one for the build\'s files only (crun, loader, libraries), matching the files it wrote', async () => {
    const { root } = await installed();
    const files = readState(root).files;
    const byPath = new Map(files.map((f) => [f.path, f]));
    for (const p of BLOBS) {
      const st = fs.statSync(path.join(root, p));
      expect(byPath.get(p)?.stat).toEqual({ size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode & 0o7777 });
      expect(byPath.get(p)?.sha256).toBe(hashFile(path.join(root, p)).sha256);
    }
    expect(byPath.get(WRAPPER)?.stat).toBeUndefined();
    expect(byPath.get(CONTAINERD)?.stat).toBeUndefined();
  });

  test('a no-op install hashes no installed file and writes nothing', async () => {
    const { root, artifacts } = await installed();
    const before = snapshot(root);
    const effects = effectsFor(root);
    const digests = countDigests(effects);
    const report = await install(settingsFor(args('install', root, artifacts)), effects);
    expect(report).toMatchObject({ bytesWritten: 0, filesWritten: 0, restarts: 0, changed: [] });
    expect(digests).toEqual([]);
    expect(snapshot(root)).toEqual(before);
  });

  test('only touched (mtime changed, same bytes): hashed, found current, nothing rewritten but the new fingerprint', async () => {
    const { root, artifacts } = await installed();
    const local = path.join(root, BINARY);
    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(local, later, later);
    const effects = effectsFor(root);
    const digests = countDigests(effects);
    const report = await install(settingsFor(args('install', root, artifacts)), effects);
    expect(digests).toEqual([BINARY]);
    expect(report).toMatchObject({ restarts: 0, changed: [], filesWritten: 1 }); // the state, for the new fingerprint
    expect(readState(root).files.find((f) => f.path === BINARY)?.stat?.mtimeMs).toBe(fs.statSync(local).mtimeMs);

    const again = effectsFor(root);
    const none = countDigests(again);
    expect(await install(settingsFor(args('install', root, artifacts)), again)).toMatchObject({ bytesWritten: 0 });
    expect(none).toEqual([]);
  });

  test('modified with the same size and mtime set back: install still notices (ctime) and puts the artifact back', async () => {
    const { root, artifacts } = await installed();
    const local = path.join(root, LIBRARY);
    const good = hashFile(local).sha256;
    tamperKeepingSizeAndMtime(local);
    const effects = effectsFor(root);
    const digests = countDigests(effects);
    const report = await install(settingsFor(args('install', root, artifacts)), effects);
    expect(digests).toEqual([LIBRARY]);
    expect(report.changed).toEqual([LIBRARY]);
    expect(report.restarts).toBe(0);
    expect(hashFile(local).sha256).toBe(good);
    expect(status(settingsFor(args('status', root, artifacts)), effects.fs)).toMatchObject({ state: 'installed', exitCode: 0 });
  });

  test.each([
    ['size', (f: Fingerprint) => ({ ...f, size: f.size + 1 })],
    ['mtime', (f: Fingerprint) => ({ ...f, mtimeMs: f.mtimeMs - 1 })],
    ['ctime', (f: Fingerprint) => ({ ...f, ctimeMs: f.ctimeMs - 1 })],
    ['inode', (f: Fingerprint) => ({ ...f, ino: f.ino + 1 })],
    ['mode', (f: Fingerprint) => ({ ...f, mode: 0o700 })],
    ['malformed', () => ({ size: 'x' }) as unknown as Fingerprint],
  ])('a recorded fingerprint that differs in %s is not trusted: the file is hashed', async (_what, change) => {
    const { root, artifacts } = await installed();
    const state = readState(root);
    state.files = state.files.map((f) => (f.path === BINARY ? { ...f, stat: change(f.stat as Fingerprint) } : f));
    fs.writeFileSync(path.join(root, STATE), JSON.stringify(state, null, 2) + '\n');
    const effects = effectsFor(root);
    const digests = countDigests(effects);
    const report = await install(settingsFor(args('install', root, artifacts)), effects);
    expect(digests).toEqual([BINARY]);
    expect(report).toMatchObject({ changed: [], restarts: 0 });
    // The state carries the true fingerprint again, and the next run is a no-op without hashing.
    expect(readState(root).files.find((f) => f.path === BINARY)?.stat?.ino).toBe(fs.statSync(path.join(root, BINARY)).ino);
    const again = effectsFor(root);
    const none = countDigests(again);
    expect(await install(settingsFor(args('install', root, artifacts)), again)).toMatchObject({ bytesWritten: 0 });
    expect(none).toEqual([]);
  });

  test('a state written before fingerprints existed is read, hashed once, and completed', async () => {
    const { root, artifacts } = await installed();
    const state = readState(root);
    state.files = state.files.map(({ stat: _stat, ...rest }) => rest as FileRecord);
    fs.writeFileSync(path.join(root, STATE), JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
    expect(parseState(fs.readFileSync(path.join(root, STATE)), STATE).files.every((f) => f.stat === undefined)).toBe(true);

    const effects = effectsFor(root);
    const digests = countDigests(effects);
    const report = await install(settingsFor(args('install', root, artifacts)), effects);
    expect(digests.sort()).toEqual([...BLOBS].sort());
    expect(report).toMatchObject({ changed: [], restarts: 0, filesWritten: 1 });
    expect(readState(root).files.filter((f) => f.stat !== undefined).map((f) => f.path).sort()).toEqual([...BLOBS].sort());
  });

  test('without a state file, each installed binary is hashed once (discovery), not again by the plan', async () => {
    const { root, artifacts } = await installed();
    fs.rmSync(path.join(root, STATE));
    const effects = effectsFor(root);
    const digests = countDigests(effects);
    await install(settingsFor(args('install', root, artifacts)), effects);
    expect(digests.filter((p) => p === BINARY)).toHaveLength(1);
    expect(digests.filter((p) => p === LIBRARY)).toHaveLength(1);
  });

  test('plan takes the shortcut too, and still sees a changed binary', async () => {
    const { root, artifacts } = await installed();
    expect((await planCommand(settingsFor(args('plan', root, artifacts)), effectsFor(root))).text).toContain('no changes');
    tamperKeepingSizeAndMtime(path.join(root, BINARY));
    expect((await planCommand(settingsFor(args('plan', root, artifacts)), effectsFor(root))).text).toContain(`replace ${BINARY}`);
  });
});

describe('hostView: when a fingerprint stands in for the hash', () => {
  const fp = (over: Partial<Fingerprint> = {}): Fingerprint => ({ size: 10, mtimeMs: 5_000, ctimeMs: 6_000, ino: 7, mode: 0o755, ...over });
  const record: FileRecord = { path: BINARY, role: 'binary', created: true, sha256: 'a'.repeat(64), stat: fp() };

  /** A HostFs whose stat answer is `now`, and whose hash is 'b…' (and counted). */
  function fakeFs(now: Fingerprint | undefined): { fs: HostFs; hashed: string[] } {
    const hashed: string[] = [];
    const host = new HostFs(makeRoot());
    jest.spyOn(host, 'fingerprint').mockReturnValue(now);
    jest.spyOn(host, 'digest').mockImplementation((p: string): FileDigest => {
      hashed.push(p);
      return { sha256: 'b'.repeat(64), size: 10 };
    });
    return { fs: host, hashed };
  }

  test('equal stat: the recorded hash, nothing read', () => {
    const { fs: host, hashed } = fakeFs(fp({ mtimeMs: 5_000.123, ctimeMs: 6_000.456 }));
    const view = hostView(host, 1_000);
    expect(view.digest(BINARY, { ...record, stat: fp({ mtimeMs: 5_000.123, ctimeMs: 6_000.456 }) })?.sha256).toBe('a'.repeat(64));
    expect(hashed).toEqual([]);
  });

  test('no record, no fingerprint, or a missing file: hashed', () => {
    const { fs: host, hashed } = fakeFs(undefined);
    const view = hostView(host);
    view.digest(BINARY);
    view.digest(BINARY, { ...record, stat: undefined });
    view.digest(BINARY, record);
    expect(hashed).toEqual([BINARY, BINARY, BINARY]);
  });

  test('whole-second timestamps ("racily clean"): trusted only when older than the state file', () => {
    expect(coarseTimestamps(fp())).toBe(true);
    expect(coarseTimestamps(fp({ ctimeMs: 6_000.5 }))).toBe(false);
    const { fs: host, hashed } = fakeFs(fp());
    expect(hostView(host, 6_000).digest(BINARY, record)?.sha256).toBe('b'.repeat(64)); // same second as the state write
    expect(hostView(host, 7_000).digest(BINARY, record)?.sha256).toBe('a'.repeat(64)); // state written a second later
    expect(hashed).toEqual([BINARY]);
  });
});

describe('status is thorough', () => {
  test('a binary modified with the same size and its mtime set back is reported as drifted', async () => {
    const { root, artifacts } = await installed();
    const fingerprint = readState(root).files.find((f) => f.path === BINARY)?.stat;
    expect(fingerprint).toBeDefined();
    tamperKeepingSizeAndMtime(path.join(root, BINARY));
    const host = new HostFs(root);
    const digest = jest.spyOn(host, 'digest');
    const report = status(settingsFor(args('status', root, artifacts)), host);
    expect(report).toMatchObject({ state: 'drifted', exitCode: 3 });
    expect(report.drift).toContain(`${BINARY} differs from what was installed`);
    // Every recorded file was re-hashed, fingerprints or not.
    expect(digest.mock.calls.map(([p]) => p).sort()).toEqual(readState(root).files.map((f) => f.path).sort());
  });

  test('even when the fingerprint in the state was made to match the tampered file', async () => {
    const { root, artifacts } = await installed();
    tamperKeepingSizeAndMtime(path.join(root, LIBRARY));
    const st = fs.statSync(path.join(root, LIBRARY));
    const state = readState(root);
    state.files = state.files.map((f) =>
      f.path === LIBRARY ? { ...f, stat: { size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, mode: st.mode & 0o7777 } } : f,
    );
    fs.writeFileSync(path.join(root, STATE), JSON.stringify(state, null, 2) + '\n');
    expect(status(settingsFor(args('status', root, artifacts)), new HostFs(root))).toMatchObject({ state: 'drifted', exitCode: 3 });
  });
});

describe('artifacts are streamed and verified', () => {
  test('locateArtifacts reads no artifact: the digests are the SHA256SUMS entries', () => {
    const artifacts = makeArtifacts('ubuntu_22_04', { corrupt: 'libwasmtime.so' });
    const settings = settingsFor(args('install', makeRoot(), artifacts));
    const located = locateArtifacts(settings.artifacts, settings.target as TargetSpec, settings.runtime!, settings.prefix);
    const engine = located.files.find((f) => f.role === 'engine')!;
    const listed = fs.readFileSync(path.join(artifacts, 'SHA256SUMS'), 'utf8');
    expect(listed).toContain(`${engine.sha256}  lib/libwasmtime.so`);
    expect(engine.sha256).not.toBe(hashFile(engine.file).sha256);
    expect(() => loadArtifacts(settings.artifacts, settings.target as TargetSpec, settings.runtime!, settings.prefix)).toThrow(/^checksum mismatch for .*libwasmtime\.so: SHA256SUMS says [0-9a-f]{64}, the file is [0-9a-f]{64}; nothing was changed$/);
  });

  test('a re-install that copies nothing hashes no artifact; one that must copy verifies first and changes nothing on a mismatch', async () => {
    const { root, artifacts } = await installed();
    const source = path.join(artifacts, 'lib', 'libwasmtime.so');
    // The image's library is damaged, the node's copy is intact: nothing needs copying, so nothing is hashed
    // (hashing it would fail the run, as the second half shows).
    tamperKeepingSizeAndMtime(source);
    const report = await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    expect(report).toMatchObject({ bytesWritten: 0, restarts: 0 });

    // Now the node's copy is gone: the damaged artifact would be copied, so the run refuses before any write.
    fs.rmSync(path.join(root, LIBRARY));
    const before = snapshot(root);
    await expect(install(settingsFor(args('install', root, artifacts)), effectsFor(root))).rejects.toThrow(/^checksum mismatch for .*libwasmtime\.so: .*; nothing was changed$/);
    expect(snapshot(root)).toEqual(before);
  });

  test('loadArtifacts keeps digests and sizes, not bytes', () => {
    const artifacts = makeArtifacts('ubuntu_22_04');
    const settings = settingsFor(args('install', makeRoot(), artifacts));
    const loaded = loadArtifacts(settings.artifacts, settings.target as TargetSpec, settings.runtime!, settings.prefix);
    expect(loaded.files.map((f) => [f.role, f.name])).toEqual([
      ['crun', 'crun-wasmtime/crun'],
      ['loader', 'lib/ld-linux-x86-64.so.2'],
      ['library', 'lib/libc.so.6'],
      ['engine', 'lib/libwasmtime.so'],
    ]);
    for (const f of loaded.files) {
      expect(Object.keys(f).sort()).toEqual(['file', 'name', 'role', 'sha256', 'size']); // the default prefix: no rewrite
      expect(f.size).toBe(fs.statSync(f.file).size);
      expect(f.sha256).toBe(hashFile(f.file).sha256);
    }
  });

  test('HostFs.stageCopy verifies as it copies: bytes that are not the listed ones never reach the target', async () => {
    const root = makeRoot({ '/opt/x/target': 'old' });
    const source = path.join(makeRoot(), 'etc', 'source');
    fs.writeFileSync(source, 'new content');
    const host = new HostFs(root);
    await expect(host.stageCopy('/opt/x/target', { file: source, sha256: 'f'.repeat(64) }, 0o644)).rejects.toThrow(/^checksum mismatch for .*source: SHA256SUMS says f{64}, the file is [0-9a-f]{64}$/);
    expect(fs.readFileSync(path.join(root, 'opt/x/target'), 'utf8')).toBe('old');
    expect(fs.readdirSync(path.join(root, 'opt/x'))).toEqual(['target']);
    const staged = await host.stageCopy('/opt/x/target', { file: source, sha256: hashFile(source).sha256 }, 0o755);
    // Staged: verified and in its temp file, the target untouched until the commit.
    expect(fs.readFileSync(path.join(root, 'opt/x/target'), 'utf8')).toBe('old');
    expect(staged).toMatchObject({ hostPath: '/opt/x/target', sha256: hashFile(source).sha256, bytes: 'new content'.length });
    host.commitCopies([staged]);
    expect(fs.readFileSync(path.join(root, 'opt/x/target'), 'utf8')).toBe('new content');
    expect(fs.statSync(path.join(root, 'opt/x/target')).mode & 0o777).toBe(0o755);
    expect(fs.readdirSync(path.join(root, 'opt/x'))).toEqual(['target']);
    expect(host.counters).toMatchObject({ bytesWritten: 'new content'.length, filesWritten: 1 });
  });

  test('an artifact swapped after the plan is refused as it is copied, with nothing changed; the next run converges', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const before = snapshot(root);
    const artifacts = makeArtifacts('ubuntu_22_04');
    const source = path.join(artifacts, 'lib', 'libwasmtime.so');
    const good = fs.readFileSync(source);
    const effects = effectsFor(root, {
      hook: (e) => {
        if (e.phase === 'before' && e.op === 'stage' && e.path === LIBRARY) fs.writeFileSync(source, 'swapped');
      },
    });
    await expect(install(settingsFor(args('install', root, artifacts)), effects)).rejects.toThrow(/^checksum mismatch for .*libwasmtime.so: .*nothing was changed$/);
    expect(snapshot(root)).toEqual(before);
    fs.writeFileSync(source, good);
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));
    expect(status(settingsFor(args('status', root, artifacts)), new HostFs(root))).toMatchObject({ state: 'installed', artifactsMatch: true });
  });
});

describe('SELinux labels only when something changed', () => {
  const answer = (argv: readonly string[]) => (argv.includes('sh') ? { stdout: '/usr/bin/runc\n' } : undefined);

  test('an unchanged node runs no chcon/restorecon; a rewritten binary is relabelled alone', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml'), '/sys/fs/selinux/enforce': '1' });
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { answer }));
    expect(readState(root).selinuxLabelled).toBe(true);

    const again = effectsFor(root, { answer });
    expect(await install(settingsFor(args('install', root, artifacts)), again)).toMatchObject({ bytesWritten: 0 });
    expect(again.runner.calls).toEqual([]);

    fs.writeFileSync(path.join(root, BINARY), 'damaged');
    const repair = effectsFor(root, { answer });
    await install(settingsFor(args('install', root, artifacts)), repair);
    expect(repair.runner.calls.filter((c) => c.includes('chcon') || c.includes('restorecon'))).toEqual([
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', BINARY],
    ]);
  });

  test('a state without the labelled mark (older installer, or SELinux enabled since) gets every label once', async () => {
    const root = makeRoot({ [CONTAINERD]: fixture('containerd-1.6-systemd-cgroup.toml') });
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root, { answer }));
    expect(readState(root).selinuxLabelled).toBeUndefined();
    fs.mkdirSync(path.join(root, 'sys/fs/selinux'), { recursive: true });
    fs.writeFileSync(path.join(root, 'sys/fs/selinux/enforce'), '1');

    const now = effectsFor(root, { answer });
    await install(settingsFor(args('install', root, artifacts)), now);
    expect(now.runner.calls.filter((c) => c.includes('chcon') || c.includes('restorecon'))).toEqual([
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', WRAPPER],
      ['nsenter', '-t', '1', '-m', '--', 'chcon', '--reference=/usr/bin/runc', BINARY],
      ['nsenter', '-t', '1', '-m', '--', 'restorecon', CONTAINERD],
    ]);
    expect(readState(root).selinuxLabelled).toBe(true);
    const later = effectsFor(root, { answer });
    await install(settingsFor(args('install', root, artifacts)), later);
    expect(later.runner.calls).toEqual([]);
  });
});
