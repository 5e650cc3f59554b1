/**
 * The node tests' own images (pause, WASI hello, busybox, WASI probe) built once per content of what goes into them and kept
 * in the tools cache, beside the installer image `npm run image` builds (cached by its own inputs). Kept (`${KNAWD_TOOLS_CACHE:-~/.cache/knawd-deployer}/node-images/<key>/`), so
 * a warm run imports them without rebuilding ~150 MB of layers. The key hashes the sources the images are made
 * from (lib/, package-lock.json, the image builders, hello.wat, wasi-probe.c) and the identity (path, size, mtime) of the
 * binaries copied in. Entries unused for a week are pruned.
 */
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
const PRUNE_AFTER_MS = 7 * 24 * 3600_000;

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
  const root = cacheRoot();
  fs.mkdirSync(root, { recursive: true });
  const key = inputsKey(names);
  const dir = path.join(root, key);
  const index = path.join(dir, 'images.json');
  if (!fs.existsSync(index)) {
    const partial = fs.mkdtempSync(path.join(root, `${key}.partial-`));
    try {
      const built = { test: buildTestImages(names, path.join(partial, 'test')) };
      fs.writeFileSync(path.join(partial, 'images.json'), JSON.stringify(relocate({ ...built, installer: installerImage() }, partial, '.').test));
      // Another run may have finished the same key meanwhile: its entry is as good as ours.
      if (!fs.existsSync(index)) fs.renameSync(partial, dir);
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  }
  const now = new Date();
  fs.utimesSync(dir, now, now);
  for (const e of fs.readdirSync(root)) {
    const p = path.join(root, e);
    if (e !== key && Date.now() - fs.statSync(p).mtimeMs > PRUNE_AFTER_MS) fs.rmSync(p, { recursive: true, force: true });
  }
  const test = JSON.parse(fs.readFileSync(index, 'utf8')) as TestImages;
  return relocate({ test, installer: installerImage() }, '.', dir);
}
