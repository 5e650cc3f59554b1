/**
 * End to end on this machine, nothing faked:
 *
 *   knawd-installer install (the real CLI, bundled with esbuild) patches a containerd config on a temp node root
 *   → Debian's containerd 1.6 started with that config (its own root/state/sockets), CRI plugin on
 *   → crictl runp --runtime crun-wasm (host network, annotation module.wasm.image/variant=compat-smart)
 *   → the installer's wrapper → crun 1.8.1 built with its wasmtime handler
 *   → a WASI module prints "hello from wasm via crun" (asserted in the container log), and a plain Linux
 *     container (busybox) in the same pod, same handler, still runs
 *   → knawd-installer remove; after a containerd restart the handler is gone (runp refused, not in crictl info),
 *     the config is byte-identical to before install and the prefix is gone.
 *
 * Needs root, Debian's containerd/ctr/wabt/busybox-static/gcc+libc6-dev, `npm run tools` (crictl) and
 * runtime-artifacts/local/build-crun-wasmtime.sh (cached; ~10 min cold). Anything missing FAILS the test with
 * the reason — it never skips.
 *
 * The prefix: the installer writes files to <nodeRoot><P> and `BinaryName = "<P>/bin/crun-wasmtime"` (a host
 * path) into the config, but containerd runs on this very host. So P is a fresh absolute directory that does
 * not exist (/opt/knawd-e2e-<random>), and for the test's duration the real host path P is a symlink to
 * <nodeRoot><P>; teardown removes it.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleInstaller } from '../support/tools';
import { DEFAULT_HANDLER } from '../../lib/catalog';
import { ensureCrunCgroupLayout, removeCgroupTree } from './support/cgroups';
import { ContainerdDaemon, daemonPaths, overlayWorks, requireContainerdBinaries, testConfig } from './support/containerd-daemon';
import { containerConfig, Crictl, podConfig } from './support/crictl';
import { BuiltImage } from './support/oci-image';
import { buildTestImages, PLAIN_LINE, requireImageTools, WASM_LINE } from './support/test-images';
import { describe as describeRun, exec, must, REPO, repoTool, requireExecutable, Result } from './support/process';

// Cold, the crun-wasmtime build alone takes ~10 minutes; warm, the whole file takes well under a minute.
jest.setTimeout(5 * 60_000);

const HANDLER = DEFAULT_HANDLER; // what the installer registers unless --handler is given: 'crun-wasm'
const IMAGES = {
  pause: 'knawd.test/e2e/pause:1',
  wasm: 'knawd.test/e2e/hello-wasm:1',
  busybox: 'knawd.test/e2e/busybox:1',
} as const;
const WASM_ANNOTATION = { 'module.wasm.image/variant': 'compat-smart' };

interface Ctx {
  base: string;
  nodeRoot: string;
  configFile: string;
  configBefore: Buffer;
  prefix: string;
  /** cgroup_parent of every pod: the test's own cgroup, removed in teardown. */
  cgroupParent: string;
  artifacts: string;
  installer: string;
  crun: string;
  crunVersion: string;
  snapshotter: 'overlayfs' | 'native';
  images: Record<keyof typeof IMAGES, BuiltImage>;
  daemon: ContainerdDaemon;
  crictl: Crictl;
}

let ctx: Ctx | undefined;
let symlinkCreated: string | undefined;
let baseCreated: string | undefined;
const done = new Set<string>();
const timings: Array<[string, number]> = [];
const notes: string[] = [];
const podIds: { wasm?: string } = {};

function need(...steps: string[]): Ctx {
  if (!ctx) throw new Error('setup failed (see the beforeAll error above)');
  const missing = steps.filter((s) => !done.has(s));
  if (missing.length > 0) throw new Error(`an earlier step failed: ${missing.join(', ')}`);
  return ctx;
}

async function timed<T>(what: string, fn: () => T | Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings.push([what, Date.now() - started]);
  }
}

/** The installer CLI as shipped (esbuild bundle of lib/installer/main.ts), with a clean environment: no cluster. */
function installer(c: Ctx, args: readonly string[]): Result {
  return exec(process.execPath, [c.installer, ...args], { cwd: c.base, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 60_000 });
}

function installerArgs(c: Ctx, command: 'install' | 'remove'): string[] {
  const common = ['--node-root', c.nodeRoot, '--target', 'containerd', '--prefix', c.prefix, '--restart', 'none', '--patch-knative', 'false'];
  return command === 'install' ? ['install', ...common, '--runtime', 'crun-wasmtime', '--artifacts', c.artifacts] : ['remove', ...common];
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('the end-to-end test needs root (it mounts, starts containerd and creates namespaces through crun); run it as root');
  }

  // Everything else the test runs, checked first so that a missing tool fails before a long build.
  requireContainerdBinaries();
  requireImageTools();
  repoTool('crictl');

  // crun-wasmtime: built or reused by the (idempotent, cached) local build script.
  const build = await timed('build-crun-wasmtime.sh', () =>
    exec('bash', [join(REPO, 'runtime-artifacts/local/build-crun-wasmtime.sh')], { cwd: REPO, timeoutMs: 40 * 60_000 }),
  );
  if (build.code !== 0) throw new Error(`runtime-artifacts/local/build-crun-wasmtime.sh failed: ${describeRun(build)}`);
  notes.push(`build-crun-wasmtime.sh: ${build.stdout.trim().split('\n').pop()}`);
  const crun = requireExecutable(join(REPO, '.tools/bin/crun-wasmtime'), 'built by runtime-artifacts/local/build-crun-wasmtime.sh');
  const library = join(REPO, '.tools/lib/libwasmtime.so');
  if (!existsSync(library)) throw new Error(`${library} is missing after runtime-artifacts/local/build-crun-wasmtime.sh`);
  const crunVersion = must(crun, ['--version']).stdout;

  const cgroups = ensureCrunCgroupLayout();
  notes.push(cgroups.summary);

  removeStalePrefixLinks();

  // Work tree: everything of this run lives under one fresh temp directory.
  const base = mkdtempSync(join(tmpdir(), 'knawd-e2e-'));
  baseCreated = base;
  const nodeRoot = join(base, 'node');
  const buildDir = join(base, 'build');
  mkdirSync(join(nodeRoot, 'etc', 'containerd'), { recursive: true });
  mkdirSync(join(nodeRoot, 'run'));
  mkdirSync(buildDir);
  const runId = randomBytes(6).toString('hex');
  const prefix = `/opt/knawd-e2e-${runId}`;
  if (existsSync(prefix) || lstatOrUndefined(prefix)) throw new Error(`${prefix} exists already; refusing to use it`);

  // Images: the sandbox (pause), the WASI app, the plain Linux app.
  const images = await timed('build images', () => buildTestImages(IMAGES, buildDir));

  // The node's containerd config, before the installer sees it.
  const paths = daemonPaths(join(base, 'containerd'));
  mkdirSync(paths.base);
  const snapshotter = overlayWorks(paths.base) ? 'overlayfs' : 'native';
  if (snapshotter === 'native') notes.push('overlayfs cannot be mounted here: using the native snapshotter');
  const configFile = join(nodeRoot, 'etc', 'containerd', 'config.toml');
  const configBefore = Buffer.from(testConfig(paths, { sandboxImage: IMAGES.pause, snapshotter }), 'utf8');
  writeFileSync(configFile, configBefore);

  // Artifacts as the installer image ships them: <dir>/containerd/{crun-wasmtime,libwasmtime.so,SHA256SUMS}.
  const artifacts = join(base, 'artifacts');
  mkdirSync(join(artifacts, 'containerd'), { recursive: true });
  copyFileSync(crun, join(artifacts, 'containerd', 'crun-wasmtime')); // copyFileSync follows the .tools symlinks
  copyFileSync(library, join(artifacts, 'containerd', 'libwasmtime.so'));
  must('sh', ['-c', 'sha256sum crun-wasmtime libwasmtime.so > SHA256SUMS'], { cwd: join(artifacts, 'containerd') });

  // The installer CLI as the image carries it: one esbuild bundle.
  const installerJs = join(base, 'knawd-installer.js');
  await timed('bundle installer', () => bundleInstaller(installerJs));

  ctx = {
    base,
    nodeRoot,
    configFile,
    configBefore,
    prefix,
    cgroupParent: `/knawd-e2e-${runId}`,
    artifacts,
    installer: installerJs,
    crun,
    crunVersion,
    snapshotter,
    images,
    daemon: new ContainerdDaemon(paths, configFile),
    crictl: new Crictl(paths.socket, base),
  };
}, 45 * 60_000);

afterAll(async () => {
  const problems: string[] = [];
  const c = ctx;
  if (c) {
    if (c.daemon.running) problems.push(...c.crictl.removeAllPods());
    problems.push(...(await c.daemon.cleanup()));
  }
  if (symlinkCreated) {
    try {
      unlinkSync(symlinkCreated);
    } catch (e) {
      problems.push(`removing the prefix symlink ${symlinkCreated}: ${String(e)}`);
    }
  }
  if (c) {
    problems.push(...removeCgroupTree(c.cgroupParent));
  }
  if (baseCreated) rmSync(baseCreated, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log(
    [
      'e2e summary',
      ...notes.map((n) => `  ${n}`),
      ...timings.map(([what, ms]) => `  ${what}: ${(ms / 1000).toFixed(2)} s`),
      ...(problems.length ? ['  teardown problems:', ...problems.map((p) => `    ${p}`)] : []),
    ].join('\n'),
  );
  if (problems.length > 0) throw new Error(`teardown left things behind:\n${problems.join('\n')}`);
}, 2 * 60_000);

/**
 * Why crun would run an ELF entrypoint through wasmtime despite `compat-smart`: crun picks a *global* handler
 * from the basename of its argv[0] when that is `crun-<handler>` (src/crun.c, fill_handler_from_argv0), and a
 * global handler overrides the annotations for every container except the CRI sandbox.
 */
const ARGV0_HINT =
  'crun ran a non-wasm entrypoint through its wasmtime handler although the annotation is compat-smart. ' +
  'Cause: crun 1.8.1 takes a global handler from its argv[0] basename `crun-<handler>` (src/crun.c fill_handler_from_argv0), ' +
  'so a binary exec\'d as .../crun-wasmtime runs every container (not only .wasm entrypoints) with wasmtime. ' +
  'Fix in the installer: the file the wrapper execs must not be named crun-<anything> (e.g. <prefix>/libexec/crun-wasmtime/crun).\n';

/** A failed container's log file, crictl inspect status and containerd's recent log, for the failure message. */
function containerLog(c: Ctx, id: string, logFile: string): string {
  let file = '(no log file)';
  try {
    file = readFileSync(logFile, 'utf8');
  } catch {
    // keep the placeholder
  }
  const r = c.crictl.run(['inspect', '-o', 'json', id]);
  let state = describeRun(r);
  if (r.code === 0) {
    const st = (JSON.parse(r.stdout) as { status: { state: string; exitCode: number; reason: string; message: string } }).status;
    state = `${st.state} exitCode=${st.exitCode} reason=${st.reason} message=${st.message}`;
  }
  return `container log file ${logFile}:\n${file}\nstatus: ${state}\ncontainerd log:\n${c.daemon.logTail(12)}`;
}

/**
 * A run killed before its teardown leaves its prefix symlink (/opt/knawd-e2e-<hex> → /tmp/knawd-e2e-…/node/…)
 * dangling once its temp dir is gone. Removes only such dangling links of this test's own naming.
 */
function removeStalePrefixLinks(): void {
  for (const name of readdirSync('/opt')) {
    if (!/^knawd-e2e-[0-9a-f]{12}$/.test(name)) continue;
    const link = join('/opt', name);
    if (!lstatOrUndefined(link)?.isSymbolicLink()) continue;
    const target = readlinkSync(link);
    if (target.startsWith(join(tmpdir(), 'knawd-e2e-')) && !existsSync(target)) {
      unlinkSync(link);
      notes.push(`removed the dangling prefix link ${link} → ${target} of an interrupted earlier run`);
    }
  }
}

function lstatOrUndefined(p: string): ReturnType<typeof lstatSync> | undefined {
  try {
    return lstatSync(p);
  } catch {
    return undefined;
  }
}

describe('installer → containerd CRI → crun-wasmtime → WASI module', () => {
  test('crun-wasmtime --version lists +WASM:wasmtime', () => {
    const c = need();
    expect(c.crunVersion).toContain('+WASM:wasmtime');
    done.add('crun');
  });

  test('knawd-installer install registers the handler in the real containerd config', async () => {
    const c = need('crun');
    const r = await timed('knawd-installer install', () => installer(c, installerArgs(c, 'install')));
    if (r.code !== 0) throw new Error(`install failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"install complete"/);

    const config = readFileSync(c.configFile, 'utf8');
    expect(config.startsWith(c.configBefore.toString('utf8').trimEnd())).toBe(true); // every original byte kept, block appended
    expect(config).toContain(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${HANDLER}]`);
    expect(config).toContain(`BinaryName = "${c.prefix}/bin/crun-wasmtime"`);
    expect(config).toContain('"module.wasm.image/variant.*"');
    const wrapper = readFileSync(join(c.nodeRoot, c.prefix, 'bin', 'crun-wasmtime'), 'utf8');
    // The wrapper puts <prefix>/lib on the loader path and execs the real crun under <prefix>/libexec.
    expect(wrapper).toContain(`LD_LIBRARY_PATH='${c.prefix}/lib'`);
    expect(wrapper).toMatch(new RegExp(`^exec '${c.prefix}/libexec/[^']+' "\\$@"$`, 'm'));

    // Make the host path the config names resolve to what was installed under the node root.
    symlinkSync(join(c.nodeRoot, c.prefix), c.prefix);
    symlinkCreated = c.prefix;
    expect(must(`${c.prefix}/bin/crun-wasmtime`, ['--version']).stdout).toContain('+WASM:wasmtime');

    // The restart the installer left pending (--restart none): start containerd with the patched config.
    await timed('containerd start (after install)', () => c.daemon.start());
    for (const image of Object.values(c.images)) {
      const imp = await timed(`ctr import ${image.name}`, () =>
        c.daemon.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', '--snapshotter', c.snapshotter, image.archive]),
      );
      if (imp.code !== 0) throw new Error(`importing ${image.name} failed: ${describeRun(imp)}\ncontainerd log:\n${c.daemon.logTail()}`);
      expect(c.crictl.must(['inspecti', '-o', 'json', image.name])).toContain(image.configDigest);
    }
    const info = c.crictl.info();
    const runtime = info.config?.containerd?.runtimes?.[HANDLER] as { runtimeType?: string; options?: { BinaryName?: string } } | undefined;
    expect(runtime).toBeDefined();
    expect(runtime?.runtimeType).toBe('io.containerd.runc.v2');
    expect(runtime?.options?.BinaryName).toBe(`${c.prefix}/bin/crun-wasmtime`);
    done.add('install');
  });

  test(`a WASI module prints "${WASM_LINE}" through CRI with --runtime ${HANDLER}`, async () => {
    const c = need('install');
    const logDir = join(c.base, 'pod-logs', 'wasm');
    mkdirSync(logDir, { recursive: true });
    const pod = c.crictl.writeJson('pod-wasm.json', podConfig({ name: 'wasm', uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations: WASM_ANNOTATION, cgroupParent: c.cgroupParent }));
    const runp = await timed('crictl runp (wasm pod)', () => c.crictl.run(['runp', '--runtime', HANDLER, pod]));
    if (runp.code !== 0) throw new Error(`runp failed: ${describeRun(runp)}\ncontainerd log:\n${c.daemon.logTail()}`);
    const podId = runp.stdout.trim();

    const ctrJson = c.crictl.writeJson('ctr-wasm.json', containerConfig('hello', IMAGES.wasm, 'hello.log'));
    const id = c.crictl.must(['create', '--no-pull', podId, ctrJson, pod]);
    await timed('wasm container start → exit', async () => {
      c.crictl.must(['start', id]);
      const code = await c.crictl.waitExited(id);
      if (code !== 0) throw new Error(`the wasm container exited ${code}; ${containerLog(c, id, join(logDir, 'hello.log'))}`);
    });

    // crun got the annotation (through the handler's pod_annotations) and was the runtime binary.
    const inspect = JSON.parse(c.crictl.must(['inspect', '-o', 'json', id])) as {
      info: { runtimeType: string; runtimeOptions?: { binary_name?: string }; runtimeSpec: { annotations: Record<string, string>; process: { args: string[] } } };
    };
    expect(inspect.info.runtimeSpec.annotations['module.wasm.image/variant']).toBe('compat-smart');
    expect(inspect.info.runtimeSpec.process.args).toEqual(['/hello.wasm']);
    expect(inspect.info.runtimeOptions?.binary_name).toBe(`${c.prefix}/bin/crun-wasmtime`);

    const logs = c.crictl.run(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trim()).toBe(WASM_LINE);
    // The CRI log file itself: "<time> stdout F hello from wasm via crun".
    expect(readFileSync(join(logDir, 'hello.log'), 'utf8')).toMatch(new RegExp(`^\\S+ stdout F ${WASM_LINE}$`, 'm'));
    notes.push(`wasm container log: ${JSON.stringify(logs.stdout.trim())}`);
    done.add('wasm');
    podIds.wasm = podId;
  });

  test('a plain Linux container (busybox) in a pod of the same handler still runs', async () => {
    const c = need('wasm');
    const podId = podIds.wasm as string;
    const pod = join(c.base, 'pod-wasm.json');
    const ctrJson = c.crictl.writeJson('ctr-busybox.json', containerConfig('plain', IMAGES.busybox, 'plain.log'));
    const id = c.crictl.must(['create', '--no-pull', podId, ctrJson, pod]);
    await timed('busybox container start → exit', async () => {
      c.crictl.must(['start', id]);
      const code = await c.crictl.waitExited(id);
      if (code !== 0) {
        const log = containerLog(c, id, join(c.base, 'pod-logs', 'wasm', 'plain.log'));
        throw new Error(`the busybox container exited ${code}; ${log.includes('[libcrun:wasmtime]') ? ARGV0_HINT : ''}${log}`);
      }
    });
    const inspect = JSON.parse(c.crictl.must(['inspect', '-o', 'json', id])) as { info: { runtimeOptions?: { binary_name?: string }; runtimeSpec: { annotations: Record<string, string> } } };
    expect(inspect.info.runtimeOptions?.binary_name).toBe(`${c.prefix}/bin/crun-wasmtime`);
    expect(inspect.info.runtimeSpec.annotations['module.wasm.image/variant']).toBe('compat-smart');
    const logs = c.crictl.run(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trim()).toBe(PLAIN_LINE);
    notes.push(`busybox container log: ${JSON.stringify(logs.stdout.trim())}`);
    done.add('plain');
  });

  test('knawd-installer remove: after a restart containerd no longer offers the handler; config and prefix restored', async () => {
    const c = need('install');
    // No pod may still use the handler when it goes away.
    const leftovers = c.crictl.removeAllPods();
    if (leftovers.length > 0) throw new Error(`could not remove the pods: ${leftovers.join('\n')}`);

    const r = await timed('knawd-installer remove', () => installer(c, installerArgs(c, 'remove')));
    if (r.code !== 0) throw new Error(`remove failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"remove complete"/);
    expect(readFileSync(c.configFile).equals(c.configBefore)).toBe(true);
    expect(existsSync(join(c.nodeRoot, c.prefix))).toBe(false);

    // The restart the installer left pending.
    await timed('containerd restart (after remove)', async () => {
      await c.daemon.stop();
      await c.daemon.start();
    });
    expect(c.crictl.runtimeHandlers()).not.toContain(HANDLER);
    expect(c.crictl.runtimeHandlers()).toContain('runc');

    const logDir = join(c.base, 'pod-logs', 'refused');
    mkdirSync(logDir, { recursive: true });
    const pod = c.crictl.writeJson('pod-refused.json', podConfig({ name: 'refused', uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations: WASM_ANNOTATION, cgroupParent: c.cgroupParent }));
    const runp = c.crictl.run(['runp', '--runtime', HANDLER, pod]);
    expect(runp.code).not.toBe(0);
    // crictl quotes the gRPC error, so the handler's quotes may come escaped.
    expect(runp.stderr).toMatch(new RegExp(`no runtime for \\\\?"${HANDLER}\\\\?" is configured`));
    notes.push(`runp after remove: ${runp.stderr.trim().split('\n').pop()}`);
    expect(c.crictl.must(['pods', '-q'])).toBe('');
    done.add('remove');
  });
});
