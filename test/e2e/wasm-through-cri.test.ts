/**
 * End to end on this machine, nothing faked, from the installer image's own files:
 *
 *   npm run image (cached) → the image's layer extracted from its OCI archive (demo/cluster/images/built-image.ts): /vendor and
 *   the installer bundle as a node pulls them; the installer image and the WASI test image imported with
 *   `ctr images import` into a real containerd
 *   → for crun-wasmtime, then crun-wasmedge, then crun-wasm-nodejs: knawd-installer install (the image's bundle) patches the containerd
 *     config on a temp node root, under a prefix that is not the default (the ELF prefix bytes are rewritten)
 *   → Debian's containerd 1.6 started with that config (its own root/state/sockets), CRI plugin on
 *   → crictl runp --runtime crun-wasm (host network, annotation module.wasm.image/variant=compat-smart)
 *   → the installer's wrapper → the image's hermetic crun 1.21 with that engine
 *   → the WASI test image prints "hello from wasm via crun" (asserted in the container log), and a plain Linux
 *     container (busybox) in the same pod, same handler, still runs
 *   → the WASI probe (issue 31) in the same pod, one container per behaviour: files by absolute path, a volume
 *     under a sub-directory, exit(0)/exit(3)/exit(255) as the container's exit code, a trap (the engine's message
 *     on stderr, its CLI's exit code), the env exactly the spec's, stdout exactly what the program wrote, polling a
 *     /dev/null stdin
 *   → the node's compile cache (crun-patches/0101) holds hello.wasm and the probe, compiled once each, the
 *     probe's later containers counted as hits
 *   → knawd-installer remove; after a containerd restart the handler is gone (runp refused, not in crictl info),
 *     the config is byte-identical to before install and the prefix is gone.
 *
 * Needs root, Debian's containerd/ctr/busybox-static/gcc+libc6-dev, `npm run tools` (crictl, the image). Anything
 * missing FAILS the test with the reason — it never skips.
 *
 * The prefix: the installer writes files to <nodeRoot><P> and `BinaryName = "<P>/bin/<runtime>"` (a host path)
 * into the config, but containerd runs on this very host. So P is a fresh absolute directory that does not exist
 * (/opt/knawd-e2e-<random>), and for the test's duration the real host path P is a symlink to <nodeRoot><P>;
 * teardown removes it. crun's PT_INTERP and RUNPATH name P's lib/ (rewritten by the installer), through that link.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HANDLER } from '../../lib/catalog';
import { listPodSandboxes } from '../../lib/installer/runtime/cri-status';
import { readCompileCache } from '../../lib/installer/host/compile-cache';
import { HostFs } from '../../lib/installer/host/fs';
import { BuiltImage, builtImage } from '../../demo/cluster/images/built-image';
import { ensureCrunCgroupLayout, removeCgroupTree } from '../../demo/cluster/cgroups';
import { ContainerdDaemon, daemonPaths, overlayWorks, requireContainerdBinaries, testConfig } from './support/containerd-daemon';
import { containerConfig, Crictl, podConfig } from './support/crictl';
import { buildOciImage } from '../../demo/cluster/images/oci-image';
import { buildProbeImage } from '../../demo/cluster/images/test-images';
import { runProbeCase } from './support/wasi-probe-cri';
import { engineOf, PROBE_CASES, probeProblems } from '../support/wasi-probe';
import { describe as describeRun, exec, must, repoTool, requireExecutable, Result, timer } from '../../demo/cluster/process';

// Cold, `npm run image` alone takes ~10 minutes (it runs in beforeAll); warm, the whole file takes about a minute.
jest.setTimeout(5 * 60_000);

const HANDLER = DEFAULT_HANDLER; // what the installer registers unless --handler is given: 'crun-wasm'
const RUNTIMES = ['crun-wasmtime', 'crun-wasmedge', 'crun-wasm-nodejs'] as const;
type Runtime = (typeof RUNTIMES)[number];
const WASM_LINE = 'hello from wasm via crun';
const PLAIN_LINE = 'plain linux ok';
const FIXTURE_IMAGES = { pause: 'knawd.test/e2e/pause:1', busybox: 'knawd.test/e2e/busybox:1', probe: 'knawd.test/e2e/wasi-probe:1' } as const;
const WASM_ANNOTATION = { 'module.wasm.image/variant': 'compat-smart' };

interface ImportedImage {
  readonly name: string;
  readonly archive: string;
  /** sha256:… of the config (the image id CRI reports). */
  readonly configDigest: string;
}

interface Ctx {
  base: string;
  nodeRoot: string;
  configFile: string;
  configBefore: Buffer;
  prefix: string;
  /** cgroup_parent of every pod: the test's own cgroup, removed in teardown. */
  cgroupParent: string;
  image: BuiltImage;
  snapshotter: 'overlayfs' | 'native';
  /** The fixtures, the WASI test image and every ociType's installer image (`installer <ociType>`). */
  images: { pause: ImportedImage; busybox: ImportedImage; wasm: ImportedImage; probe: ImportedImage } & Record<`installer ${Runtime}`, ImportedImage>;
  daemon: ContainerdDaemon;
  crictl: Crictl;
}

let ctx: Ctx | undefined;
let symlinkCreated: string | undefined;
let baseCreated: string | undefined;
const done = new Set<string>();
const timings: Array<[string, number]> = [];
const notes: string[] = [];
const podIds: Partial<Record<Runtime, string>> = {};

function need(...steps: string[]): Ctx {
  if (!ctx) throw new Error('setup failed (see the beforeAll error above)');
  const missing = steps.filter((s) => !done.has(s));
  if (missing.length > 0) throw new Error(`an earlier step failed: ${missing.join(', ')}`);
  return ctx;
}

const timed = timer(timings);

/** The installer CLI as the runtime's image carries it (its esbuild bundle), with a clean environment: no cluster. */
function installer(c: Ctx, runtime: Runtime, args: readonly string[]): Result {
  return exec(process.execPath, [join(c.image.installers[runtime].rootfs, 'usr/local/lib/knawd-installer.js'), ...args], { cwd: c.base, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 60_000 });
}

function installerArgs(c: Ctx, command: 'install' | 'remove', runtime: Runtime): string[] {
  const common = ['--node-root', c.nodeRoot, '--target', 'containerd', '--prefix', c.prefix, '--restart', 'none', '--patch-knative', 'false'];
  // Each engine from its own image's /vendor: what ships is what is tested.
  return command === 'install' ? ['install', ...common, '--runtime', runtime, '--artifacts', c.image.installers[runtime].vendor] : ['remove', ...common];
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) {
    throw new Error('the end-to-end test needs root (it mounts, starts containerd and creates namespaces through crun); run it as root');
  }

  // Everything else the test runs, checked first so that a missing tool fails before a long build.
  requireContainerdBinaries();
  const busybox = requireExecutable('/bin/busybox', "Debian's busybox-static package; `npm run tools` installs it");
  if (!/statically linked/.test(exec('file', ['-L', busybox]).stdout) && exec('ldd', [busybox]).code === 0) {
    throw new Error(`${busybox} is not statically linked: install Debian's busybox-static (not busybox)`);
  }
  const gcc = requireExecutable('/usr/bin/gcc', "Debian's gcc and libc6-dev, for the static pause binary");
  repoTool('crictl');

  // The image: built or reused by npm run image, its layer extracted from the archive.
  const image = await timed('npm run image + extract', () => builtImage());
  for (const runtime of RUNTIMES) notes.push(`image ${image.installers[runtime].name} ${image.installers[runtime].digest}`);

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

  // Fixture images: the sandbox (pause) and the plain Linux app; the WASI app and the installer are the built ones.
  const fixtures = await timed('build fixture images', () => {
    const pauseC = join(buildDir, 'pause.c');
    writeFileSync(
      pauseC,
      // Runs forever; as PID 1 of the pod's pid namespace, default-action signals are ignored, so SIGTERM/SIGINT
      // get a handler that exits (SIGKILL needs none).
      '#include <signal.h>\n#include <unistd.h>\nstatic void bye(int s) { (void)s; _exit(0); }\nint main(void) { signal(SIGTERM, bye); signal(SIGINT, bye); for (;;) pause(); }\n',
    );
    must(gcc, ['-static', '-O2', '-o', join(buildDir, 'pause'), pauseC]);
    return {
      pause: buildOciImage({ name: FIXTURE_IMAGES.pause, files: [{ path: '/pause', from: join(buildDir, 'pause') }], entrypoint: ['/pause'] }, buildDir),
      busybox: buildOciImage(
        { name: FIXTURE_IMAGES.busybox, files: [{ path: '/bin/busybox', from: busybox }], entrypoint: ['/bin/busybox'], cmd: ['echo', PLAIN_LINE] },
        buildDir,
      ),
      probe: buildProbeImage(FIXTURE_IMAGES.probe, buildDir),
    };
  });

  // The node's containerd config, before the installer sees it.
  const paths = daemonPaths(join(base, 'containerd'));
  mkdirSync(paths.base);
  const snapshotter = overlayWorks(paths.base) ? 'overlayfs' : 'native';
  if (snapshotter === 'native') notes.push('overlayfs cannot be mounted here: using the native snapshotter');
  const configFile = join(nodeRoot, 'etc', 'containerd', 'config.toml');
  const configBefore = Buffer.from(testConfig(paths, { sandboxImage: FIXTURE_IMAGES.pause, snapshotter }), 'utf8');
  writeFileSync(configFile, configBefore);

  ctx = {
    base,
    nodeRoot,
    configFile,
    configBefore,
    prefix,
    cgroupParent: `/knawd-e2e-${runId}`,
    image,
    snapshotter,
    images: {
      pause: fixtures.pause,
      busybox: fixtures.busybox,
      probe: fixtures.probe,
      wasm: { name: image.wasi.name, archive: image.wasi.archive, configDigest: image.wasi.config },
      ...(Object.fromEntries(RUNTIMES.map((r) => [`installer ${r}`, { name: image.installers[r].name, archive: image.installers[r].archive, configDigest: image.installers[r].config }])) as Record<`installer ${Runtime}`, ImportedImage>),
    },
    daemon: new ContainerdDaemon(paths, configFile),
    crictl: new Crictl(paths.socket, base),
  };
}, 60 * 60_000);

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
  'crun ran a non-wasm entrypoint through its WASM handler although the annotation is compat-smart. ' +
  'Cause: crun takes a global handler from its argv[0] basename `crun-<handler>` (src/crun.c fill_handler_from_argv0), ' +
  'so a binary exec\'d as .../crun-wasmtime runs every container (not only .wasm entrypoints) with that handler. ' +
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


describe.each(RUNTIMES)('installer image → containerd CRI → %s → WASI module', (runtime) => {
  const engine = engineOf(runtime);

  test(`knawd-installer install --runtime ${runtime} from the image's /vendor registers the handler`, async () => {
    const c = need(...RUNTIMES.slice(0, RUNTIMES.indexOf(runtime)).map((r) => `remove ${r}`));
    const r = await timed(`knawd-installer install (${runtime})`, () => installer(c, runtime, installerArgs(c, 'install', runtime)));
    if (r.code !== 0) throw new Error(`install failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"install complete"/);

    const config = readFileSync(c.configFile, 'utf8');
    expect(config.startsWith(c.configBefore.toString('utf8').trimEnd())).toBe(true); // every original byte kept, block appended
    expect(config).toContain(`[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${HANDLER}]`);
    expect(config).toContain(`BinaryName = "${c.prefix}/bin/${runtime}"`);
    expect(config).toContain('"module.wasm.image/variant.*"');
    const wrapper = readFileSync(join(c.nodeRoot, c.prefix, 'bin', runtime), 'utf8');
    expect(wrapper).toMatch(new RegExp(`^exec '${c.prefix}/libexec/${runtime}/crun' "\\$@"$`, 'm'));
    // The installed crun names this prefix's loader, not the image's placeholder.
    const interp = must('readelf', ['-lW', join(c.nodeRoot, c.prefix, 'libexec', runtime, 'crun')]).stdout;
    expect(/Requesting program interpreter: (.*)\]/.exec(interp)?.[1].replace(/\/+/g, '/')).toBe(`${c.prefix}/lib/ld-linux-x86-64.so.2`);

    // Make the host path the config names resolve to what was installed under the node root.
    if (!symlinkCreated) {
      symlinkSync(join(c.nodeRoot, c.prefix), c.prefix);
      symlinkCreated = c.prefix;
    }
    const version = must(`${c.prefix}/bin/${runtime}`, ['--version']).stdout;
    expect(version).toMatch(new RegExp(`^crun version 1\\.21\\n[^]*\\+WASM:${engine}`));
    notes.push(`${runtime}: ${version.split('\n').pop() || version.split('\n').slice(-2)[0]}`);

    // The restart the installer left pending (--restart none): start containerd with the patched config.
    await timed(`containerd start (after install ${runtime})`, () => c.daemon.start());
    if (!done.has('images')) {
      for (const image of Object.values(c.images)) {
        const imp = await timed(`ctr images import ${image.name}`, () =>
          c.daemon.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', '--snapshotter', c.snapshotter, image.archive]),
        );
        if (imp.code !== 0) throw new Error(`importing ${image.name} failed: ${describeRun(imp)}\ncontainerd log:\n${c.daemon.logTail()}`);
        expect(c.crictl.must(['inspecti', '-o', 'json', image.name])).toContain(image.configDigest);
      }
      done.add('images');
    }
    const info = c.crictl.info();
    const handler = info.config?.containerd?.runtimes?.[HANDLER] as { runtimeType?: string; options?: { BinaryName?: string } } | undefined;
    expect(handler?.runtimeType).toBe('io.containerd.runc.v2');
    expect(handler?.options?.BinaryName).toBe(`${c.prefix}/bin/${runtime}`);
    done.add(`install ${runtime}`);
  });

  test(`the WASI test image prints "${WASM_LINE}" through CRI with --runtime ${HANDLER}`, async () => {
    const c = need(`install ${runtime}`);
    const logDir = join(c.base, 'pod-logs', `wasm-${engine}`);
    mkdirSync(logDir, { recursive: true });
    const podFile = `pod-wasm-${engine}.json`;
    const pod = c.crictl.writeJson(podFile, podConfig({ name: `wasm-${engine}`, uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations: WASM_ANNOTATION, cgroupParent: c.cgroupParent }));
    const runp = await timed(`crictl runp (wasm pod, ${runtime})`, () => c.crictl.run(['runp', '--runtime', HANDLER, pod]));
    if (runp.code !== 0) throw new Error(`runp failed: ${describeRun(runp)}\ncontainerd log:\n${c.daemon.logTail()}`);
    const podId = runp.stdout.trim();
    // The take-over of the original knawd-deployer asks containerd this way which pods run under a handler.
    expect(await listPodSandboxes(c.crictl.socket, 10_000)).toContainEqual({ namespace: 'knawd-e2e', name: `wasm-${engine}`, runtimeHandler: HANDLER, ready: true });

    const ctrJson = c.crictl.writeJson(`ctr-wasm-${engine}.json`, containerConfig('hello', c.images.wasm.name, 'hello.log'));
    const id = c.crictl.must(['create', '--no-pull', podId, ctrJson, pod]);
    await timed(`wasm container start → exit (${runtime})`, async () => {
      c.crictl.must(['start', id]);
      const code = await c.crictl.waitExited(id);
      if (code !== 0) throw new Error(`the wasm container exited ${code}; ${containerLog(c, id, join(logDir, 'hello.log'))}`);
    });

    // crun got the annotation (through the handler's pod_annotations) and was the runtime binary.
    const inspect = JSON.parse(c.crictl.must(['inspect', '-o', 'json', id])) as {
      info: { runtimeOptions?: { binary_name?: string }; runtimeSpec: { annotations: Record<string, string>; process: { args: string[] } } };
    };
    expect(inspect.info.runtimeSpec.annotations['module.wasm.image/variant']).toBe('compat-smart');
    expect(inspect.info.runtimeSpec.process.args).toEqual(['/hello.wasm']);
    expect(inspect.info.runtimeOptions?.binary_name).toBe(`${c.prefix}/bin/${runtime}`);

    const logs = c.crictl.run(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trim()).toBe(WASM_LINE);
    // The CRI log file itself: "<time> stdout F hello from wasm via crun".
    expect(readFileSync(join(logDir, 'hello.log'), 'utf8')).toMatch(new RegExp(`^\\S+ stdout F ${WASM_LINE}$`, 'm'));
    notes.push(`${runtime} wasm container log: ${JSON.stringify(logs.stdout.trim())}`);
    done.add(`wasm ${runtime}`);
    podIds[runtime] = podId;
  });

  test.each(PROBE_CASES.map((p) => [p.name, p] as const))('the WASI probe through CRI: %s', async (_name, probe) => {
    const c = need(`wasm ${runtime}`);
    const outcome = await timed(`probe ${probe.name} (${runtime})`, () =>
      runProbeCase(
        { crictl: c.crictl, podId: podIds[runtime] as string, podFile: join(c.base, `pod-wasm-${engine}.json`), logDir: join(c.base, 'pod-logs', `wasm-${engine}`), image: c.images.probe.name, workDir: c.base },
        probe,
      ),
    );
    if (probe.name === 'env') notes.push(`${runtime} env through containerd: ${JSON.stringify(outcome.specEnv)}`);
    expect(probeProblems(engine, probe, outcome)).toEqual([]);
  });

  test('a plain Linux container (busybox) in a pod of the same handler still runs', async () => {
    const c = need(`wasm ${runtime}`);
    const podId = podIds[runtime] as string;
    const pod = join(c.base, `pod-wasm-${engine}.json`);
    const ctrJson = c.crictl.writeJson(`ctr-busybox-${engine}.json`, containerConfig('plain', c.images.busybox.name, 'plain.log'));
    const id = c.crictl.must(['create', '--no-pull', podId, ctrJson, pod]);
    await timed(`busybox container start → exit (${runtime})`, async () => {
      c.crictl.must(['start', id]);
      const code = await c.crictl.waitExited(id);
      if (code !== 0) {
        const log = containerLog(c, id, join(c.base, 'pod-logs', `wasm-${engine}`, 'plain.log'));
        throw new Error(`the busybox container exited ${code}; ${log.includes(`[libcrun:${engine}]`) ? ARGV0_HINT : ''}${log}`);
      }
    });
    const inspect = JSON.parse(c.crictl.must(['inspect', '-o', 'json', id])) as { info: { runtimeOptions?: { binary_name?: string }; runtimeSpec: { annotations: Record<string, string> } } };
    expect(inspect.info.runtimeOptions?.binary_name).toBe(`${c.prefix}/bin/${runtime}`);
    const logs = c.crictl.run(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.stdout.trim()).toBe(PLAIN_LINE);
    done.add(`plain ${runtime}`);
  });

  test('knawd-installer remove: after a restart containerd no longer offers the handler; config and prefix restored', async () => {
    const c = need(`install ${runtime}`);
    // No pod may still use the handler when it goes away.
    const leftovers = c.crictl.removeAllPods();
    if (leftovers.length > 0) throw new Error(`could not remove the pods: ${leftovers.join('\n')}`);

    // The node's compile cache, filled through containerd: hello.wasm and the probe compiled once each, the
    // probe's later containers run from it (crun-wasm-nodejs has none).
    const cache = readCompileCache(new HostFs(c.nodeRoot), c.prefix);
    if (engine === 'wasm_nodejs') expect(cache).toBeUndefined();
    else {
      expect(cache).toMatchObject({ entries: 2, counters: { compiled: 2, rejected: 0, failed: 0 } });
      expect(cache?.counters.hits).toBeGreaterThanOrEqual(1);
      notes.push(`${runtime} compile cache through containerd: ${JSON.stringify(cache)}`);
    }

    const r = await timed(`knawd-installer remove (${runtime})`, () => installer(c, runtime, installerArgs(c, 'remove', runtime)));
    if (r.code !== 0) throw new Error(`remove failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"remove complete"/);
    expect(readFileSync(c.configFile).equals(c.configBefore)).toBe(true);
    expect(existsSync(join(c.nodeRoot, c.prefix))).toBe(false);

    // The restart the installer left pending.
    await timed(`containerd restart (after remove ${runtime})`, async () => {
      await c.daemon.stop();
      await c.daemon.start();
    });
    expect(c.crictl.runtimeHandlers()).not.toContain(HANDLER);
    expect(c.crictl.runtimeHandlers()).toContain('runc');

    const logDir = join(c.base, 'pod-logs', `refused-${engine}`);
    mkdirSync(logDir, { recursive: true });
    const pod = c.crictl.writeJson(`pod-refused-${engine}.json`, podConfig({ name: `refused-${engine}`, uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations: WASM_ANNOTATION, cgroupParent: c.cgroupParent }));
    const runp = c.crictl.run(['runp', '--runtime', HANDLER, pod]);
    expect(runp.code).not.toBe(0);
    // crictl quotes the gRPC error, so the handler's quotes may come escaped.
    expect(runp.stderr).toMatch(new RegExp(`no runtime for \\\\?"${HANDLER}\\\\?" is configured`));
    expect(c.crictl.must(['pods', '-q'])).toBe('');
    // Stopped again: the next runtime's install leaves its restart pending, as a node's would be.
    await c.daemon.stop();
    done.add(`remove ${runtime}`);
  });
});
