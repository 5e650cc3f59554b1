/**
 * The benchmark's images (issue 33), built by the node test-image builder rather than `npm run image`, so that
 * the installer image and its pinned digests do not move for a benchmark: one program
 * (runtime-artifacts/bench/bench.c: `hello`, `sha256 <MiB>`, `idle`) compiled to wasm32-wasi and as a static
 * native binary, a generated ~5 MB module, and the WASM HTTP service's source (runtime-artifacts/wasm-http/
 * http.c) compiled natively. Every input is fixed (the generator is seeded, the layer tar sorted with mtime 0),
 * so the digests are the same wherever the same Debian compilers build them; they are cached under the tools
 * cache keyed by those inputs (`node-images/bench-<key>/`).
 *
 *   knawd.test/bench/wasm:1    /bench.wasm (entrypoint), /big.wasm
 *   knawd.test/bench/native:1  /bench (entrypoint), /http
 */
import { cachedEntry } from './cache-entry';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { buildOciImage, SingleLayerImage } from './oci-image';
import { must, REPO, requireExecutable } from '../process';

export const BENCH_IMAGES = { wasm: 'knawd.test/bench/wasm:1', native: 'knawd.test/bench/native:1' } as const;
/** What `bench hello` prints. */
export const BENCH_HELLO = 'hello from bench';
/** What the generated large module prints. */
export const BIG_MODULE_LINE = 'big module ok';

export type BenchImages = Record<keyof typeof BENCH_IMAGES, SingleLayerImage> & { readonly bigModuleBytes: number };

const SOURCES = ['demo/cluster/images/bench-images.ts', 'demo/cluster/images/oci-image.ts', 'runtime-artifacts/bench/bench.c', 'runtime-artifacts/wasm-http/http.c'];
const BINARIES = ['/usr/bin/gcc', '/usr/bin/clang-14', '/usr/bin/wat2wasm', '/usr/lib/wasm32-wasi/libc.a', '/usr/lib/x86_64-linux-gnu/libc.a'];
const TOOLS = "Debian's gcc + libc6-dev, clang-14 + lld-14 + wasi-libc + libclang-rt-14-dev-wasm32 and wabt; `npm run tools` installs them";

/** The bytes `sha256 <MiB>` hashes (bench.c's LCG), for the caller's check of the printed digest. */
export function benchDigest(mib: number): string {
  const data = Buffer.alloc(mib << 20);
  let x = 1;
  for (let i = 0; i < data.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    data[i] = x >>> 24;
  }
  return createHash('sha256').update(data).digest('hex');
}

/**
 * The large module as WAT: `functions` straight-line functions of arithmetic from a fixed LCG (code an engine
 * must compile or validate, unlike a data segment), and a `_start` that prints {@link BIG_MODULE_LINE}.
 */
export function bigModuleWat(functions = 3000, steps = 150): string {
  let x = 12345;
  const next = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0);
  const ops = ['i32.add', 'i32.xor', 'i32.mul', 'i32.sub', 'i32.rotl'];
  const out: string[] = [
    '(module',
    '  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))',
    '  (memory (export "memory") 1)',
    `  (data (i32.const 16) "${BIG_MODULE_LINE}\\n")`,
  ];
  for (let f = 0; f < functions; f++) {
    const body: string[] = [];
    for (let s = 0; s < steps; s++) body.push(`local.get 0 i32.const ${next() | 0} ${ops[next() % ops.length]} local.set 0`);
    out.push(`  (func $f${f} (export "f${f}") (param i32) (result i32) ${body.join(' ')} local.get 0)`);
  }
  out.push(
    '  (func (export "_start")',
    '    (i32.store (i32.const 0) (i32.const 16))',
    `    (i32.store (i32.const 4) (i32.const ${BIG_MODULE_LINE.length + 1}))`,
    '    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))',
    ')',
  );
  return out.join('\n');
}

function inputsKey(): string {
  const hash = createHash('sha256').update(JSON.stringify(BENCH_IMAGES));
  for (const s of SOURCES) hash.update(s).update(fs.readFileSync(path.join(REPO, s)));
  for (const b of BINARIES) {
    const real = fs.realpathSync(b);
    const st = fs.statSync(real);
    hash.update(`${real} ${st.size} ${st.mtimeMs}`);
  }
  return hash.digest('hex').slice(0, 16);
}

/** Builds both images under `dir` (which must exist), keeping the binaries there (bench, http, bench.wasm, big.wasm). */
export function buildBenchImages(dir: string): BenchImages {
  for (const t of ['/usr/bin/gcc', '/usr/bin/clang-14', '/usr/bin/wasm-ld-14', '/usr/bin/wat2wasm']) requireExecutable(t, TOOLS);
  const src = (p: string): string => path.join(REPO, p);
  const out = (p: string): string => path.join(dir, p);
  const strict = ['-O2', '-Wall', '-Wextra', '-Werror'];
  must('/usr/bin/clang-14', ['--target=wasm32-wasi', '--sysroot=/usr', ...strict, '-Wl,--strip-all', '-o', out('bench.wasm'), src('runtime-artifacts/bench/bench.c')]);
  must('/usr/bin/gcc', ['-static', ...strict, '-s', '-o', out('bench'), src('runtime-artifacts/bench/bench.c')]);
  must('/usr/bin/gcc', ['-static', ...strict, '-s', '-o', out('http'), src('runtime-artifacts/wasm-http/http.c')]);
  fs.writeFileSync(out('big.wat'), bigModuleWat());
  must('/usr/bin/wat2wasm', [out('big.wat'), '-o', out('big.wasm')], { timeoutMs: 300_000 });
  fs.rmSync(out('big.wat'));
  return {
    wasm: buildOciImage({ name: BENCH_IMAGES.wasm, files: [{ path: '/bench.wasm', from: out('bench.wasm') }, { path: '/big.wasm', from: out('big.wasm') }], entrypoint: ['/bench.wasm'], cmd: ['hello'] }, dir),
    native: buildOciImage({ name: BENCH_IMAGES.native, files: [{ path: '/bench', from: out('bench') }, { path: '/http', from: out('http') }], entrypoint: ['/bench'], cmd: ['hello'] }, dir),
    bigModuleBytes: fs.statSync(out('big.wasm')).size,
  };
}

/** Builds the two images once per content of their inputs; returns them with absolute archive paths. */
export function benchImages(): BenchImages {
  const root = path.join(process.env.KNAWD_TOOLS_CACHE ?? path.join(os.homedir(), '.cache', 'knawd-deployer'), 'node-images');
  const { dir, index: recorded } = cachedEntry(root, `bench-${inputsKey()}`, (partial): BenchImages => {
    const built = buildBenchImages(partial);
    const relative = (i: SingleLayerImage): SingleLayerImage => ({ ...i, archive: path.relative(partial, i.archive) });
    return { ...built, wasm: relative(built.wasm), native: relative(built.native) };
  });
  const absolute = (i: SingleLayerImage): SingleLayerImage => ({ ...i, archive: path.join(dir, i.archive) });
  return { ...recorded, wasm: absolute(recorded.wasm), native: absolute(recorded.native) };
}
