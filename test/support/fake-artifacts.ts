/**
 * Fake installer artifacts for tests and benchmarks that run the real installer on temp node roots (no jest
 * needed: the rollout benchmark uses them too).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_HOST_PREFIX, findTarget, HOST_PREFIX_MAX_LENGTH, RUNTIMES, runtimesFor, TARGETS, VENDOR_MANIFEST, VendorBuild, VendorManifest } from '../../lib/catalog';

/** The padded default prefix, as the image's ELF files carry it (artifacts.json `placeholder`). */
export const PLACEHOLDER = DEFAULT_HOST_PREFIX.padEnd(HOST_PREFIX_MAX_LENGTH, '/');

/** The data file of the fake crun-wasm-nodejs build, under /vendor (installed as <prefix>/lib/nodejs/…). */
export const NODEJS_DATA = 'lib/nodejs/cjs-module-lexer/lexer.js';

export interface FakeArtifactOptions {
  /** Breaks the checksum of the file with this name (or path). */
  readonly corrupt?: string;
  /** Leaves this file out. */
  readonly omit?: string;
  /** The builds listed, as a per-engine image has one (default: every runtime's). */
  readonly runtimes?: readonly string[];
}

/**
 * Fake artifacts in the image's layout (artifacts.json, SHA256SUMS, one store shared by every target) under
 * `root`: for each shipped runtime a build of crun, the loader, libc and the engine (crun-wasm-nodejs also a data
 * file in a directory of its own, as libnode's JavaScript); crun and libc carry the placeholder (as PT_INTERP /
 * RUNPATH do) so that a prefix other than the default is really rewritten.
 * `targetName` only has to be a target. Returns `root`.
 */
export function writeFakeArtifacts(root: string, targetName: string, options: FakeArtifactOptions = {}): string {
  findTarget(targetName);
  const matches = (rel: string, name: string | undefined): boolean => name !== undefined && (rel === name || path.basename(rel) === name || rel.startsWith(`${name}/`));
  const sums: string[] = [];
  const put = (rel: string, data: Buffer): void => {
    const file = path.join(root, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    if (!matches(rel, options.omit)) fs.writeFileSync(file, matches(rel, options.corrupt) ? Buffer.concat([data, Buffer.from('x')]) : data);
    sums.push(`${createHash('sha256').update(data).digest('hex')}  ${rel}`);
  };
  const elf = (what: string, prefixed: boolean): Buffer =>
    Buffer.from(`\x7fELF fake ${what}${prefixed ? ` interp ${PLACEHOLDER}/lib/ld-linux-x86-64.so.2 runpath ${PLACEHOLDER}/lib` : ''}\n`);
  const builds: Record<string, VendorBuild> = {};
  put('lib/ld-linux-x86-64.so.2', elf('loader', false));
  put('lib/libc.so.6', elf('libc', true));
  put(NODEJS_DATA, Buffer.from('// fake built-in JavaScript of libnode\n'));
  const listed = RUNTIMES.filter((r) => options.runtimes?.includes(r.name) ?? true);
  for (const runtime of listed) {
    put(`${runtime.name}/crun`, elf(`crun of ${runtime.name}`, true));
    put(`lib/${runtime.library}`, elf(runtime.library, false));
    builds[runtime.name] = {
      runtime: runtime.name,
      versions: {},
      files: [
        { path: `${runtime.name}/crun`, role: 'crun', prefixed: true },
        { path: 'lib/ld-linux-x86-64.so.2', role: 'loader' },
        { path: 'lib/libc.so.6', role: 'library', prefixed: true },
        { path: `lib/${runtime.library}`, role: 'engine' },
        ...(runtime.name === 'crun-wasm-nodejs' ? [{ path: NODEJS_DATA, role: 'data' as const }] : []),
      ],
    };
  }
  const manifest: VendorManifest = {
    schema: 1,
    placeholder: PLACEHOLDER,
    builds,
    targets: Object.fromEntries(TARGETS.map((t) => [t.name, Object.fromEntries(runtimesFor(t).filter((r) => listed.some((l) => l.name === r.name)).map((r) => [r.name, r.name]))])),
    packages: [],
  };
  put(VENDOR_MANIFEST.file, Buffer.from(JSON.stringify(manifest, null, 2) + '\n'));
  fs.writeFileSync(path.join(root, VENDOR_MANIFEST.sums), [...new Set(sums)].sort().join('\n') + '\n');
  return root;
}

