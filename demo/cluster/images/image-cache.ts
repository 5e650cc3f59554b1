/**
 * The node tests' own images (pause, WASI hello, busybox, WASI probe) built once per content of what goes into them and kept
 * in the tools cache, beside the installer image `npm run image` builds (cached by its own inputs). Kept (`${KNAWD_TOOLS_CACHE:-~/.cache/knawd-deployer}/node-images/<key>/`), so
 * a warm run imports them without rebuilding ~150 MB of layers. The key hashes the sources the images are made
 * from (lib/, package-lock.json, the image builders, hello.wat, wasi-probe.c) and the identity (path, size, mtime) of the
 * binaries copied in. Entries unused for a week are pruned.
 */
import { cachedEntry } from './cache-entry';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { REPO } from '../process';
import { buildTestImages, TestImageNames, TestImages } from './test-images';
import { InstallerImage, installerImage } from './installer-image';

export interface BuiltImages {
  readonly test: TestImages;
  readonly installer: InstallerImage;
}

const SOURCES = ['demo/cluster/images/image-cache.ts', 'demo/cluster/images/test-images.ts', 'demo/cluster/images/oci-image.ts', 'runtime-artifacts/local/hello.wat', 'runtime-artifacts/local/wasi-probe.c'];
const BINARIES = ['/bin/busybox', '/usr/bin/gcc', '/usr/bin/wat2wasm', '/usr/bin/clang-14', '/usr/lib/wasm32-wasi/libc.a'];

function cacheRoot(): string {
  return path.join(process.env.KNAWD_TOOLS_CACHE ?? path.join(os.homedir(), '.cache', 'knawd-deployer'), 'node-images');
}

function inputsKey(names: TestImageNames): string {
  const hash = createHash('sha256').update(JSON.stringify(names));
  const walk = (p: string): void => {
    const st = fs.statSync(p);
    if (st.isDirectory()) for (const e of fs.readdirSync(p).sort()) walk(path.join(p, e));
    else hash.update(p).update(fs.readFileSync(p));
  };
  for (const s of SOURCES) walk(path.join(REPO, s));
  for (const b of BINARIES) {
    const real = fs.realpathSync(path.isAbsolute(b) ? b : path.join(REPO, b));
    const st = fs.statSync(real);
    hash.update(`${real} ${st.size} ${st.mtimeMs}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Relative archive paths on disk, absolute in memory. */
function relocate(images: BuiltImages, from: string, to: string): BuiltImages {
  const move = (p: string): string => path.join(to, path.relative(from, p));
  const test = Object.fromEntries(Object.entries(images.test).map(([k, v]) => [k, { ...v, archive: move(v.archive) }])) as unknown as TestImages;
  return { test, installer: images.installer };
}

export function cachedImages(names: TestImageNames): BuiltImages {
  const { dir, index: test } = cachedEntry(cacheRoot(), inputsKey(names), (partial) =>
    relocate({ test: buildTestImages(names, path.join(partial, 'test')), installer: installerImage() }, partial, '.').test,
  );
  return relocate({ test, installer: installerImage() }, '.', dir);
}
