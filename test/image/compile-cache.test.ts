/**
 * Issue 33 item 1 on crun bundles: the node-local compile cache of crun-wasmtime and crun-wasmedge
 * (crun-patches/0101, runtime-artifacts/README.md "A node-local compile cache"), `crun run` as root with each build
 * laid out as the installer does and KNAWD_WASM_CACHE set as the installed wrapper sets it:
 *
 *   a first start compiles the module into the cache and later starts run it from there (crun's counters, its log
 *   naming the entry, the handler's line that it loaded the compiled code); the cached code is what runs (a
 *   well-formed entry holding another module's code runs that code); WasmEdge's entry is AOT code (the
 *   interpreter is two orders of magnitude slower); a corrupt entry and a foreign entry are never run (one log line
 *   each, the module's own output, the entry compiled again); two starts at once compile once; a module on a
 *   volume is never cached; the size bound evicts the least recently used entry.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';
import { BENCH_HELLO, benchDigest, benchImages } from '../../demo/cluster/images/bench-images';
import { ensureCrunCgroupLayout, removeCgroupTree } from '../../demo/cluster/cgroups';
import { must } from '../../demo/cluster/process';
import { REPO } from '../support/tools';
import { layOutImages } from '../support/vendor-layout';

jest.setTimeout(10 * 60_000);

type Engine = 'wasmtime' | 'wasmedge';
const BUILD = { wasmtime: 'crun-wasmtime', wasmedge: 'crun-wasmedge' } as const;
/** What the handler says (crun --debug) in the container once it has the compiled code in hand: on the container's stderr, crun's log is closed there. */
const LOADED: Record<Engine, string> = { wasmtime: 'wasm cache: wasmtime loaded the precompiled module of entry', wasmedge: 'wasm cache: wasmedge runs the AOT code of entry' };
const HELLO_LINE = 'hello from wasm via crun';

let base = '';
let benchWasm = '';
let helloWasm = '';
const cgroupParent = `/knawd-cache-${randomBytes(6).toString('hex')}`;
let cruns: Partial<Record<(typeof BUILD)[Engine], string>> = {};

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the compile cache tests need root (crun run creates namespaces, mounts and cgroups)');
  base = mkdtempSync(join(tmpdir(), 'knawd-cache-'));
  const image = builtImage();
  ensureCrunCgroupLayout();
  cruns = layOutImages(image.installers, [BUILD.wasmtime, BUILD.wasmedge], base);
  // The bench images' cache entry keeps the binaries beside the directories of the archives.
  benchWasm = join(dirname(dirname(benchImages().wasm.archive)), 'bench.wasm');
  if (!existsSync(benchWasm)) throw new Error(`the bench images' build has no ${benchWasm}`);
  helloWasm = join(base, 'hello.wasm');
  must('wat2wasm', [join(REPO, 'runtime-artifacts/local/hello.wat'), '-o', helloWasm]);
}, 60 * 60_000);

afterAll(() => {
  const problems = removeCgroupTree(cgroupParent);
  if (base) rmSync(base, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`teardown left cgroups behind:\n${problems.join('\n')}`);
});

interface RunOptions {
  /** Extra environment of crun (the wrapper's). */
  readonly env?: Record<string, string | undefined>;
  /** The module lies on a host directory bind-mounted at /mods, not on the rootfs. */
  readonly onVolume?: boolean;
}
interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly log: string;
  readonly ms: number;
}

function prepare(engine: Engine, cache: string, module: string, args: readonly string[], options: RunOptions) {
  const crun = cruns[BUILD[engine]];
  if (!crun) throw new Error('setup failed (see the beforeAll error above)');
  const id = `${engine}-${randomBytes(4).toString('hex')}`;
  const bundle = join(base, id);
  const rootfs = join(bundle, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  must(crun, ['spec'], { cwd: bundle });
  const config = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8'));
  let path = '/module.wasm';
  if (options.onVolume) {
    const volume = join(base, `${id}-volume`);
    mkdirSync(volume);
    copyFileSync(module, join(volume, 'module.wasm'));
    config.mounts.push({ destination: '/mods', type: 'bind', source: volume, options: ['rbind', 'ro'] });
    path = '/mods/module.wasm';
  } else {
    copyFileSync(module, join(rootfs, 'module.wasm'));
  }
  config.process = { ...config.process, terminal: false, args: [path, ...args], env: ['PATH=/usr/bin:/bin'] };
  config.root = { path: 'rootfs', readonly: false };
  config.annotations = { 'module.wasm.image/variant': 'compat-smart' };
  config.linux.cgroupsPath = `${cgroupParent}/${id}`;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  const log = join(base, `${id}.log`);
  const argv = ['--debug', '--log', log, '--root', join(base, 'state'), 'run', '--bundle', bundle, id];
  // What the installed wrapper sets, and a wait long enough that a first start always finds its entry.
  const env = { PATH: process.env.PATH, KNAWD_WASM_CACHE: cache, KNAWD_WASM_CACHE_WAIT_MS: '300000', ...options.env };
  return { crun, argv, env, log };
}

const logOf = (file: string): string => (existsSync(file) ? readFileSync(file, 'utf8') : '');

function run(engine: Engine, cache: string, module: string, args: readonly string[], options: RunOptions = {}): Run {
  const { crun, argv, env, log } = prepare(engine, cache, module, args, options);
  const t0 = Date.now();
  const r = spawnSync(crun, argv, { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`, log: logOf(log), ms: Date.now() - t0 };
}

function runAsync(engine: Engine, cache: string, module: string, args: readonly string[]): Promise<Run> {
  const { crun, argv, env, log } = prepare(engine, cache, module, args, {});
  const t0 = Date.now();
  const child = spawn(crun, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr, log: logOf(log), ms: Date.now() - t0 })));
}

function counters(cache: string): Record<string, number> {
  const file = join(cache, 'stats');
  const out: Record<string, number> = { hits: 0, misses: 0, compiled: 0, rejected: 0, failed: 0 };
  if (!existsSync(file)) return out;
  for (const line of readFileSync(file, 'utf8').trim().split('\n')) {
    const [name, value] = line.split(' ');
    out[name] = Number(value);
  }
  return out;
}

const entries = (cache: string): string[] => (existsSync(cache) ? readdirSync(cache).filter((n) => n.endsWith('.entry')).sort() : []);

/** The one entry `run` added to the cache. */
function newEntry(cache: string, before: readonly string[]): string {
  const added = entries(cache).filter((e) => !before.includes(e));
  expect(added).toHaveLength(1);
  return join(cache, added[0]);
}

function splitEntry(file: string): { key: string; payload: Buffer } {
  const data = readFileSync(file);
  const end = data.indexOf('\n\n');
  const header = data.subarray(0, end).toString('utf8').split('\n');
  return { key: header[1].replace(/^key /, ''), payload: data.subarray(end + 2) };
}

function entryFor(key: string, payload: Buffer): Buffer {
  const sha = createHash('sha256').update(payload).digest('hex');
  return Buffer.concat([Buffer.from(`knawd-wasm-cache 1\nkey ${key}\npayload sha256:${sha} ${payload.length}\n\n`), payload]);
}

const benchLine = (mib: number): string => `sha256 ${benchDigest(mib)} ${mib}\n`;
const cacheDir = (name: string): string => join(base, `cache-${name}-${randomBytes(3).toString('hex')}`);
const rejectedLines = (r: Run): string[] => r.log.split('\n').filter((l) => l.includes('wasm cache: entry') && l.includes('rejected'));

describe.each(['wasmtime', 'wasmedge'] as const)('%s', (engine) => {
  let cache = '';
  let benchEntry = '';
  let helloEntry = '';

  test('a first start compiles the module into the cache; the next start runs the compiled code from there', () => {
    cache = cacheDir(engine);
    const first = run(engine, cache, benchWasm, ['sha256', '4']);
    expect([first.code, first.stdout]).toEqual([0, benchLine(4)]);
    expect(counters(cache)).toMatchObject({ hits: 0, misses: 1, compiled: 1, rejected: 0, failed: 0 });
    benchEntry = newEntry(cache, []);
    expect(statSync(cache).mode & 0o777).toBe(0o700);

    const second = run(engine, cache, benchWasm, ['sha256', '4']);
    expect([second.code, second.stdout]).toEqual([0, benchLine(4)]);
    expect(counters(cache)).toMatchObject({ hits: 1, misses: 1, compiled: 1 });
    const name = benchEntry.slice(benchEntry.lastIndexOf('/') + 1, -'.entry'.length);
    expect(second.log).toContain(`wasm cache: \`/module.wasm\` runs from entry ${name}`);
    expect(second.stderr).toContain(`${LOADED[engine]} ${name}`);
    expect(splitEntry(benchEntry).key).toMatch(new RegExp(`^module=sha256:${createHash('sha256').update(readFileSync(benchWasm)).digest('hex')} engine=${engine} [0-9.]+ cpu=x86_64-\\S+$`));
  });

  test("the cached code is what runs: an intact entry holding another module's code runs that code", () => {
    const before = entries(cache);
    const hello = run(engine, cache, helloWasm, []);
    expect([hello.code, hello.stdout]).toEqual([0, `${HELLO_LINE}\n`]);
    helloEntry = newEntry(cache, before);
    const original = readFileSync(helloEntry);
    // An entry as crun writes it (hello.wasm's key, a payload matching its sha256) but bench.wasm's compiled code.
    writeFileSync(helloEntry, entryFor(splitEntry(helloEntry).key, splitEntry(benchEntry).payload));
    const forged = run(engine, cache, helloWasm, ['sha256', '1']);
    expect([forged.code, forged.stdout]).toEqual([0, benchLine(1)]);
    expect(counters(cache).rejected).toBe(0);
    writeFileSync(helloEntry, original);
  });

  test('a corrupt entry is never run: one log line, the module runs from its own bytes, the entry is compiled again', () => {
    const data = readFileSync(helloEntry);
    data[data.length - Math.floor(splitEntry(helloEntry).payload.length / 2)] ^= 0x01;
    writeFileSync(helloEntry, data);
    const before = counters(cache);
    const r = run(engine, cache, helloWasm, []);
    expect([r.code, r.stdout]).toEqual([0, `${HELLO_LINE}\n`]);
    expect(rejectedLines(r)).toHaveLength(1);
    expect(rejectedLines(r)[0]).toContain('its payload does not match its sha256 (a corrupt entry); it is not run, the module is compiled again');
    expect(counters(cache)).toMatchObject({ rejected: before.rejected + 1, compiled: before.compiled + 1 });
    const again = run(engine, cache, helloWasm, []);
    expect([again.stdout, rejectedLines(again)]).toEqual([`${HELLO_LINE}\n`, []]);
    expect(counters(cache).hits).toBe(before.hits + 1);
  });

  test("a foreign entry (another key's, intact) is never run", () => {
    copyFileSync(benchEntry, helloEntry);
    const before = counters(cache);
    const r = run(engine, cache, helloWasm, ['sha256', '1']);
    expect([r.code, r.stdout]).toEqual([0, `${HELLO_LINE}\n`]);
    expect(rejectedLines(r)).toHaveLength(1);
    expect(rejectedLines(r)[0]).toContain('its header names another key (a foreign entry); it is not run, the module is compiled again');
    expect(counters(cache).rejected).toBe(before.rejected + 1);
  });

  test('two starts of the same module at once compile it once', async () => {
    const fresh = cacheDir(`${engine}-concurrent`);
    const runs = await Promise.all([0, 1, 2].map(() => runAsync(engine, fresh, benchWasm, ['sha256', '2'])));
    expect(runs.map((r) => [r.code, r.stdout])).toEqual([0, 1, 2].map(() => [0, benchLine(2)]));
    const c = counters(fresh);
    expect(c.compiled).toBe(1);
    expect(c.hits + c.misses).toBe(3);
    expect(entries(fresh)).toHaveLength(1);
    expect(readdirSync(fresh).filter((n) => n.includes('.partial-'))).toEqual([]);
  });

  test('a module on a volume is never cached', () => {
    const fresh = cacheDir(`${engine}-volume`);
    const r = run(engine, fresh, benchWasm, ['hello'], { onVolume: true });
    expect([r.code, r.stdout]).toEqual([0, `${BENCH_HELLO}\n`]);
    expect(entries(fresh)).toEqual([]);
    expect(counters(fresh)).toEqual({ hits: 0, misses: 0, compiled: 0, rejected: 0, failed: 0 });
  });

  test('bounded: over the size limit the least recently used entry goes', () => {
    const sizes = { hello: statSync(helloEntry).size, bench: statSync(benchEntry).size };
    const fresh = cacheDir(`${engine}-bounded`);
    const env = { KNAWD_WASM_CACHE_MAX_BYTES: String(sizes.hello + sizes.bench - 1) };
    run(engine, fresh, helloWasm, [], { env });
    const hello = entries(fresh);
    run(engine, fresh, benchWasm, ['hello'], { env });
    const bench = entries(fresh).filter((e) => !hello.includes(e));
    expect(entries(fresh)).toEqual(bench);
    expect(run(engine, fresh, benchWasm, ['hello'], { env }).stdout).toBe(`${BENCH_HELLO}\n`);
    expect(counters(fresh).hits).toBe(1);
    expect(run(engine, fresh, helloWasm, [], { env }).stdout).toBe(`${HELLO_LINE}\n`);
    expect(entries(fresh)).toEqual(hello);
  });
});

test("crun-wasmedge runs a cached module as AOT code: compute at least 10× faster than WasmEdge's interpreter on the same module", () => {
  const cache = cacheDir('wasmedge-aot');
  expect(run('wasmedge', cache, benchWasm, ['hello']).stdout).toBe(`${BENCH_HELLO}\n`);
  const cached = run('wasmedge', cache, benchWasm, ['sha256', '8']);
  const interpreted = run('wasmedge', cache, benchWasm, ['sha256', '8'], { env: { KNAWD_WASM_CACHE: undefined } });
  expect([cached.stdout, interpreted.stdout]).toEqual([benchLine(8), benchLine(8)]);
  expect(cached.stderr).toContain(LOADED.wasmedge);
  expect(interpreted.log).not.toContain('wasm cache');
  expect(cached.ms * 10).toBeLessThan(interpreted.ms);
});
