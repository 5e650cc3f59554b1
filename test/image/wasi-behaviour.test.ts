/**
 * Issue 31 on crun bundles: what each crun build of the image (`npm run image`, crun 1.21 with our patches,
 * runtime-artifacts/crun-patches) gives a WASI module, shown by the probe program (runtime-artifacts/local/
 * wasi-probe.c) run with `crun run` as root:
 *
 *   files by absolute path in the container (the root preopened as "/", with the working directory elsewhere, /work),
 *   a host directory mounted under a sub-directory, exit(0), exit(3), exit(255), a trap (the engine's message on
 *   stderr, the engine CLI's exit code), an env that is the spec's process.env exactly (no HOME crun made up), and
 *   stdout holding exactly what the program wrote.
 *
 * Each build is laid out from its own installer image's /vendor under a fresh prefix the way the installer does
 * it (the padded prefix rewritten), each
 * bundle gets the probe at /probe.wasm with annotation module.wasm.image/variant=compat-smart. Needs root, the
 * image and the probe's compiler (clang-14, wasi-libc: `npm run tools`); anything missing fails with the reason.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuntimeName } from '../../lib/catalog';
import { builtImage } from '../../demo/cluster/images/built-image';
import { buildWasiProbe } from '../../demo/cluster/images/test-images';
import { ensureCrunCgroupLayout, removeCgroupTree } from '../../demo/cluster/cgroups';
import { must, sleep } from '../../demo/cluster/process';
import { REPO } from '../support/tools';
import { layOutImages } from '../support/vendor-layout';
import { probeBundle } from '../support/probe-bundle';
import { Engine, HOST_LINE, PROBE_CASES, PROBE_VOLUME, ProbeCase, probeProblems } from '../support/wasi-probe';

jest.setTimeout(10 * 60_000);

const ENGINES: readonly Engine[] = ['wasmtime', 'wasmedge', 'wasm_nodejs'];
/** The image's build for each engine. */
const BUILD: Record<Engine, RuntimeName> = { wasmtime: 'crun-wasmtime', wasmedge: 'crun-wasmedge', wasm_nodejs: 'crun-wasm-nodejs' };

let base: string | undefined;
let probe = '';
const cgroupParent = `/knawd-wasi-${randomBytes(6).toString('hex')}`;
let cruns: Partial<Record<RuntimeName, string>> = {};

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('the WASI behaviour tests need root (crun run creates namespaces, mounts and cgroups)');
  base = mkdtempSync(join(tmpdir(), 'knawd-wasi-'));
  probe = buildWasiProbe(base);
  const image = builtImage();
  ensureCrunCgroupLayout();
  cruns = layOutImages(image.installers, ENGINES.map((e) => BUILD[e]), base);
}, 60 * 60_000);

afterAll(() => {
  const problems = removeCgroupTree(cgroupParent);
  if (base) rmSync(base, { recursive: true, force: true });
  if (problems.length > 0) throw new Error(`teardown left cgroups behind:\n${problems.join('\n')}`);
});

/** A bundle whose process is the probe with `c`'s arguments (or `module` instead of the probe); runs it with `crun run`, stdin /dev/null. */
function runCase(engine: Engine, c: ProbeCase) {
  const { crun, id, bundle, rootfs, env, volumeDir } = makeBundle(engine, c);
  const r = spawnSync(crun, ['--root', join(base as string, 'state'), 'run', '--bundle', bundle, id], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? `\n${r.error.message}` : ''}`, specEnv: env, volumeDir, writtenFile: join(rootfs, 'tmp/wasi-probe-out.txt') };
}

function makeBundle(engine: Engine, c: ProbeCase, module = probe) {
  const crun = cruns[BUILD[engine]];
  if (!crun || !base) throw new Error('setup failed (see the beforeAll error above)');
  const id = `${engine}-${c.name}-${randomBytes(3).toString('hex')}`;
  const bundle = join(base, id);
  let volumeDir: string | undefined;
  if (c.volume) {
    volumeDir = join(base, `${id}-volume`);
    mkdirSync(volumeDir);
    writeFileSync(join(volumeDir, 'from-host.txt'), `${HOST_LINE}\n`);
  }
  const { rootfs, env } = probeBundle({
    bundle,
    module,
    probeCase: c,
    cgroupsPath: `${cgroupParent}/${id}`,
    spec: (dir) => must(crun, ['spec'], { cwd: dir }),
    adjust: (config) => {
      if (volumeDir) config.mounts.push({ destination: PROBE_VOLUME, type: 'bind', source: volumeDir, options: ['rbind', 'rw'] });
    },
  });
  return { crun, id, bundle, rootfs, env, volumeDir };
}

/** `crun run` of a module that never returns, ended by `crun kill <id> TERM` once it runs: its exit code. */
async function terminated(engine: Engine, module: string): Promise<number | null> {
  const { crun, id, bundle } = makeBundle(engine, { name: 'sigterm', args: [] }, module);
  const state = join(base as string, 'state');
  const child = spawn(crun, ['--root', state, 'run', '--bundle', bundle, id], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((done) => child.on('exit', (code, signal) => done(signal ? 128 + (osConstants.signals[signal] ?? 0) : code)));
  for (let i = 0; i < 100 && !/"status": "running"/.test(spawnSync(crun, ['--root', state, 'state', id], { encoding: 'utf8' }).stdout ?? ''); i++) await sleep(100);
  // The handler is running the module by now (a moment after crun says running).
  await sleep(1000);
  const kill = spawnSync(crun, ['--root', state, 'kill', id, 'TERM'], { encoding: 'utf8' });
  if (kill.status !== 0) throw new Error(`crun kill failed: ${kill.stderr}`);
  const timeout = sleep(20_000).then(() => 'timeout' as const);
  const code = await Promise.race([exited, timeout]);
  if (code === 'timeout') {
    child.kill('SIGKILL');
    throw new Error(`${engine}: the module did not end within 20 s of SIGTERM; stderr ${stderr}`);
  }
  return code;
}

describe.each(ENGINES)('crun +WASM:%s: crun run on bundles', (engine) => {
  test.each(PROBE_CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const outcome = runCase(engine, c);
    expect(probeProblems(engine, c, outcome)).toEqual([]);
  });

  test('SIGTERM ends a module that never returns, with exit code 143 (as an ordinary process)', async () => {
    const loop = join(base as string, 'loop.wasm');
    if (!existsSync(loop)) must('wat2wasm', [join(REPO, 'runtime-artifacts', 'local', 'loop.wat'), '-o', loop]);
    expect(await terminated(engine, loop)).toBe(143);
  });
});
