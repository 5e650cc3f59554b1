/**
 * The prefix rewrite: a shipped ELF names its loader and libraries as the default prefix padded with "/" to a
 * fixed length; for any other prefix the copy carries that prefix padded the same way, wherever the bytes fall
 * in the 1 MiB copy buffer, and the installer's no-op and remove guarantees hold for such copies too.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { PrefixRewriter } from '../../lib/installer/artifacts';
import { HostFs } from '../../lib/installer/host/fs';
import { install, remove } from '../../lib/installer/installer';
import { effectsFor, makeArtifacts, makeRoot, PLACEHOLDER, settingsFor, snapshot, tempDir } from './support';

const PREFIX = '/srv/wasm-runtime';
const PADDED = PREFIX.padEnd(PLACEHOLDER.length, '/');

function args(command: string, root: string, artifacts: string, prefix = PREFIX): string[] {
  return [command, '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, '--prefix', prefix, '--restart', 'none'];
}

describe('PrefixRewriter', () => {
  const rewrite = { from: Buffer.from(PLACEHOLDER), to: Buffer.from(PADDED) };

  test.each([1, 2, 7, 63, 64, 65, 1000])('replaces every occurrence whatever the chunk size (%i)', (size) => {
    const data = Buffer.concat([Buffer.from('\x7fELF'), Buffer.from(PLACEHOLDER), Buffer.from('/lib/ld.so\0'), Buffer.alloc(100, 1), Buffer.from(PLACEHOLDER), Buffer.from('/lib')]);
    const r = new PrefixRewriter(rewrite);
    const out: Buffer[] = [];
    for (let i = 0; i < data.length; i += size) out.push(Buffer.from(r.push(data.subarray(i, i + size))));
    out.push(r.end());
    const result = Buffer.concat(out);
    expect(result.length).toBe(data.length);
    expect(result.toString('latin1')).toBe(data.toString('latin1').split(PLACEHOLDER).join(PADDED));
    expect(result.includes(Buffer.from(PLACEHOLDER))).toBe(false);
  });

  test('refuses a rewrite that would change the length', () => {
    expect(() => new PrefixRewriter({ from: Buffer.from(PLACEHOLDER), to: Buffer.from(PREFIX) })).toThrow(/keep the length/);
  });
});

describe('install under a prefix other than the default', () => {
  test('copies carry the chosen prefix; a re-install reads no artifact; remove restores the tree', async () => {
    const root = makeRoot({ '/etc/containerd/config.toml': '' });
    const artifacts = makeArtifacts('ubuntu_22_04');
    const before = snapshot(root);
    await install(settingsFor(args('install', root, artifacts)), effectsFor(root));

    const crun = fs.readFileSync(path.join(root, PREFIX, 'libexec/crun-wasmtime/crun'), 'latin1');
    expect(crun).toContain(`interp ${PADDED}/lib/ld-linux-x86-64.so.2`);
    expect(crun).not.toContain(PLACEHOLDER);
    const state = JSON.parse(fs.readFileSync(path.join(root, PREFIX, 'state.json'), 'utf8')) as { files: Array<{ path: string; sha256: string; source?: string }> };
    const record = state.files.find((f) => f.path === `${PREFIX}/libexec/crun-wasmtime/crun`)!;
    const source = fs.readFileSync(path.join(artifacts, 'crun-wasmtime/crun'));
    expect(record.sha256).toBe(createHash('sha256').update(crun, 'latin1').digest('hex'));
    expect(record.source).toBe(createHash('sha256').update(source).digest('hex'));
    // Files without the placeholder are the artifact itself and record no source.
    expect(state.files.find((f) => f.path.endsWith('/ld-linux-x86-64.so.2'))?.source).toBeUndefined();

    // No-op re-install: no artifact is opened (an unreadable store proves it), nothing is written.
    const locked = tempDir('knawd-art-locked-');
    fs.cpSync(artifacts, locked, { recursive: true });
    for (const f of ['crun-wasmtime/crun', 'lib/libc.so.6', 'lib/libwasmtime.so', 'lib/ld-linux-x86-64.so.2']) fs.writeFileSync(path.join(locked, f), 'not the artifact');
    // ... except that their SHA256SUMS entries still name the real ones: only a read would notice the swap.
    const report = await install(settingsFor(args('install', root, locked)), effectsFor(root));
    expect(report).toMatchObject({ bytesWritten: 0, filesWritten: 0 });

    await remove(settingsFor(['remove', '--node-root', root, '--prefix', PREFIX, '--restart', 'none']), effectsFor(root));
    expect(snapshot(root)).toEqual(before);
    expect(new HostFs(root).exists(PREFIX)).toBe(false);
  });

  test('the default prefix copies the artifacts byte for byte', async () => {
    const root = makeRoot({ '/etc/containerd/config.toml': '' });
    const artifacts = makeArtifacts('ubuntu_22_04');
    await install(settingsFor(args('install', root, artifacts, '/opt/knawd')), effectsFor(root));
    expect(fs.readFileSync(path.join(root, 'opt/knawd/libexec/crun-wasmtime/crun')).equals(fs.readFileSync(path.join(artifacts, 'crun-wasmtime/crun')))).toBe(true);
  });
});
