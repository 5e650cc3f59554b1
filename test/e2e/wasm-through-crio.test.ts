/**
 * End to end through a real CRI-O, on every CRI-O version `npm run tools` builds (tools/versions.env), from the
 * installer image's own files (demo/cluster/images/built-image.ts), nothing faked:
 *
 *   the node's crio.conf (every path inside the test's directory, runc the default runtime)
 *   → knawd-installer install --target crio | rhel8 --runtime crun-wasmtime | crun-wasmedge (the image's own
 *     installer bundle, --artifacts its /vendor) writes its drop-in into the node's crio.conf.d, with the
 *     allowed_annotations that CRI-O version needs — it asks the node's own crio binary (the version under test,
 *     placed at /usr/bin/crio in the node root with its libraries) for `--version`, and has it merge the
 *     candidate drop-in (`crio config`) before writing, all through `--host-exec chroot` since the node root is
 *     not this machine's — and the image's hermetic crun 1.21 under the prefix
 *   → CRI-O started with exactly those two files (the restart the installer leaves pending with --restart none)
 *   → crictl info: the handler is among the runtime handlers CRI-O loaded, with its allowed_annotations
 *   → a control pod under runc; the image's WASI test image in a pod with module.wasm.image/variant=compat-smart
 *     and a busybox container beside it, and in a pod with run.oci.handler=wasm-smart; each through the
 *     installer's wrapper and crun
 *   → on the newest CRI-O, for both engines, the WASI probe (issue 31) in a compat-smart pod, one container per
 *     behaviour: files by absolute path, a volume under a sub-directory, exit(0)/exit(3)/exit(255) as the
 *     container's exit code, a trap (the engine's message on stderr, its CLI's exit code), the env exactly the
 *     spec's (with what CRI-O put there), stdout exactly what the program wrote, polling a /dev/null stdin
 *   → knawd-installer remove; after a restart the handler is gone and the node root is byte-identical.
 *
 * It fails if the drop-in loses allowed_annotations (the annotation never reaches crun: asserted in the
 * container's runtime spec, and the module would run as an ELF) or if CRI-O ignores the handler (not among the
 * loaded handlers; its "is being ignored" log line is quoted).
 *
 * The prefix: as in wasm-through-cri.test.ts, the installer writes <nodeRoot><P> and names the host path P in
 * the drop-in, while CRI-O runs on this host; P is a fresh /opt/knawd-crio-e2e-<hex>, a symlink to
 * <nodeRoot><P> for the test's duration.
 *
 * Needs root and `npm run tools` (crio, pinns, crictl, conmon, skopeo, runc, busybox-static, the image). Anything
 * missing FAILS the test with the reason.
 */
import { randomBytes } from 'node:crypto';
import { installHostBinary } from '../support/chroot-runner';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_HANDLER, WASM_TEST_IMAGE } from '../../lib/catalog';
import { snapshot } from '../installer/support';
import { BuiltImage, builtImage, IMAGE_OUT } from '../../demo/cluster/images/built-image';
import { ensureCrunCgroupLayout, removeCgroupTree } from '../../demo/cluster/cgroups';
import { CrioDaemon, crioPaths, crioVersions, nodeCrioConf, requireCrioBinaries } from './support/crio-daemon';
import { containerConfig, Crictl, podConfig } from './support/crictl';
import { readCriStatus, servedHandlers } from '../../lib/installer/runtime/cri-status';
import { buildOciImage } from '../../demo/cluster/images/oci-image';
import { buildProbeImage } from '../../demo/cluster/images/test-images';
import { ProbePod, runProbeCase } from './support/wasi-probe-cri';
import { engineOf, PROBE_CASES, probeProblems } from '../support/wasi-probe';
import { describe as describeRun, exec, must, repoTool, requireExecutable, Result, timer } from '../../demo/cluster/process';

jest.setTimeout(5 * 60_000);

const HANDLER = DEFAULT_HANDLER;
const WASM_LINE = 'hello from wasm via crun';
const PLAIN_LINE = 'plain linux ok';
const FIXTURE_IMAGES = { pause: 'knawd.test/e2e/pause:1', busybox: 'knawd.test/e2e/busybox:1', probe: 'knawd.test/e2e/wasi-probe:1' } as const;
const [NEWEST, PREVIOUS] = crioVersions();
/** Each CRI-O version with both engines, and both targets that write the CRI-O drop-in, each twice; crun-wasm-nodejs on the newest. */
const CASES = [
  { version: NEWEST, target: 'crio', runtime: 'crun-wasmtime' },
  { version: NEWEST, target: 'rhel8', runtime: 'crun-wasmedge' },
  { version: PREVIOUS, target: 'rhel8', runtime: 'crun-wasmtime' },
  { version: PREVIOUS, target: 'crio', runtime: 'crun-wasmedge' },
  { version: NEWEST, target: 'crio', runtime: 'crun-wasm-nodejs' },
] as const;
/** CRI NamespaceMode CONTAINER: a PID namespace per container, so CRI-O drops the infra container. */
const PID_CONTAINER = 1;
/** What both CRI-O versions need in the handler, written out here rather than taken from lib/toml. */
const EXPECTED_ALLOWED = ['module.wasm.image/variant', 'run.oci.'];

interface Shared {
  base: string;
  image: BuiltImage;
  /** OCI archives and the docker-style names CRI-O knows them by. */
  images: Record<'pause' | 'busybox' | 'wasm' | 'probe', { name: string; archive: string }>;
}

let shared: Shared | undefined;
/** Removed in afterAll even when the setup fails after creating it. */
let baseCreated: string | undefined;
const notes: string[] = [];
const timings: Array<[string, number]> = [];

const timed = timer(timings);

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('the CRI-O end-to-end test needs root (it starts CRI-O, mounts, and creates namespaces through crun)');
  for (const version of [NEWEST, PREVIOUS]) requireCrioBinaries(version);
  repoTool('crictl');
  const busybox = requireExecutable('/bin/busybox', "Debian's busybox-static package; `npm run tools` installs it");
  const gcc = requireExecutable('/usr/bin/gcc', "Debian's gcc and libc6-dev, for the static pause binary");

  const image = await timed('npm run image + extract', () => builtImage());
  for (const { name, digest } of Object.values(image.installers)) notes.push(`image ${name} ${digest}`);
  notes.push(ensureCrunCgroupLayout().summary);
  removeStalePrefixLinks();

  const base = mkdtempSync(join(tmpdir(), 'knawd-crio-e2e-'));
  baseCreated = base;
  const buildDir = join(base, 'build');
  mkdirSync(buildDir);
  writeFileSync(join(buildDir, 'pause.c'), '#include <unistd.h>\nint main(void) { for (;;) pause(); }\n');
  must(gcc, ['-static', '-O2', '-o', join(buildDir, 'pause'), join(buildDir, 'pause.c')]);
  for (const { rootfs, name } of Object.values(image.installers)) {
    if (!existsSync(join(rootfs, 'usr/local/lib/knawd-installer.js'))) throw new Error(`the image ${name} carries no /usr/local/lib/knawd-installer.js`);
  }
  shared = {
    base,
    image,
    images: {
      pause: buildOciImage({ name: FIXTURE_IMAGES.pause, files: [{ path: '/pause', from: join(buildDir, 'pause') }], entrypoint: ['/pause'] }, buildDir),
      busybox: buildOciImage({ name: FIXTURE_IMAGES.busybox, files: [{ path: '/bin/busybox', from: busybox }], entrypoint: ['/bin/busybox'], cmd: ['echo', PLAIN_LINE] }, buildDir),
      // The image index (every architecture): containers-storage keeps the node's image and records the index digest.
      wasm: { name: image.wasi.name, archive: join(IMAGE_OUT, 'index', image.record.index.wasiTestImage.archive) },
      probe: buildProbeImage(FIXTURE_IMAGES.probe, buildDir),
    },
  };
}, 60 * 60_000);

afterAll(() => {
  if (baseCreated) rmSync(baseCreated, { recursive: true, force: true });
  // eslint-disable-next-line no-console
  console.log(['CRI-O e2e summary', ...notes.map((n) => `  ${n}`), ...timings.map(([w, ms]) => `  ${w}: ${(ms / 1000).toFixed(2)} s`)].join('\n'));
});

/** A run killed before its teardown leaves /opt/knawd-crio-e2e-<hex> dangling: removes only such links. */
function removeStalePrefixLinks(): void {
  for (const name of readdirSync('/opt').filter((n) => /^knawd-crio-e2e-[0-9a-f]{12}$/.test(n))) {
    const link = join('/opt', name);
    const target = lstatSync(link).isSymbolicLink() ? readlinkSync(link) : undefined;
    if (target?.startsWith(join(tmpdir(), 'knawd-crio-e2e-')) && !existsSync(target)) {
      unlinkSync(link);
      notes.push(`removed the dangling prefix link ${link} of an interrupted earlier run`);
    }
  }
}

describe.each(CASES)('CRI-O $version, knawd-installer --target $target --runtime $runtime', ({ version, target, runtime }) => {
  const engine = engineOf(runtime);
  interface Case {
    dir: string;
    nodeRoot: string;
    nodeBefore: Record<string, string>;
    crioConf: string;
    prefix: string;
    cgroupParent: string;
    daemon: CrioDaemon;
    crictl: Crictl;
    dropIn: string;
    link?: string;
  }
  let c: Case | undefined;
  const done = new Set<string>();
  const need = (...steps: string[]): Case => {
    if (!c) throw new Error('setup failed (see the beforeAll error above)');
    const missing = steps.filter((s) => !done.has(s));
    if (missing.length > 0) throw new Error(`an earlier step failed: ${missing.join(', ')}`);
    return c;
  };

  /** The installer CLI as the runtime's image ships it; its host commands chrooted into the node root (see the file header). */
  const installer = (args: readonly string[]): Result =>
    exec(process.execPath, [join((shared as Shared).image.installers[runtime].rootfs, 'usr/local/lib/knawd-installer.js'), ...args], { cwd: (c as Case).dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, timeoutMs: 60_000 });
  const installerArgs = (command: 'install' | 'remove'): string[] => {
    const k = need();
    const common = ['--node-root', k.nodeRoot, '--target', target, '--prefix', k.prefix, '--restart', 'none', '--patch-knative', 'false', '--host-exec', 'chroot'];
    // The engine from its own image's /vendor: what ships is what is tested.
    return command === 'install' ? ['install', ...common, '--runtime', runtime, '--artifacts', (shared as Shared).image.installers[runtime].vendor] : ['remove', ...common];
  };

  /** The crio log lines saying why a handler was dropped, for failure messages. */
  const ignored = (k: Case): string => k.daemon.logSinceStart(/is being ignored/).join('\n') || '(no "is being ignored" line in the crio log)';

  /** Runs one pod with `annotations` under `handler` and the given containers; returns each container's log. */
  async function runPod(k: Case, name: string, handler: string, annotations: Record<string, string>, containers: Array<{ name: string; image: string }>) {
    const logDir = join(k.dir, 'pod-logs', name);
    mkdirSync(logDir, { recursive: true });
    const pod = k.crictl.writeJson(`pod-${name}.json`, podConfig({ name, uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations, cgroupParent: k.cgroupParent, pidNamespace: PID_CONTAINER }));
    const runp = await timed(`${version} runp ${name}`, () => k.crictl.run(['runp', '--runtime', handler, pod]));
    if (runp.code !== 0) throw new Error(`runp ${name} failed: ${describeRun(runp)}\nhandler problems:\n${ignored(k)}\ncrio log:\n${k.daemon.logTail(20)}`);
    const podId = runp.stdout.trim();
    const results: Array<{ logs: string; annotations: Record<string, string> }> = [];
    for (const ctr of containers) {
      // The container asks for the pod's namespace modes too (CRI-O checks they agree).
      const namespaces = { security_context: { namespace_options: { network: 2, pid: PID_CONTAINER } } };
      const config = k.crictl.writeJson(`ctr-${name}-${ctr.name}.json`, { ...containerConfig(ctr.name, ctr.image, `${ctr.name}.log`), linux: namespaces });
      const created = k.crictl.run(['create', '--no-pull', podId, config, pod]);
      if (created.code !== 0) {
        const old = /unknown version specified/.test(created.stderr) ? `the installed crun refuses the OCI runtime-spec version CRI-O ${version} writes (crun 1.8.1 did; 1.21 does not). ` : '';
        throw new Error(`${old}creating ${name}/${ctr.name} failed: ${describeRun(created)}`);
      }
      const id = created.stdout.trim();
      k.crictl.must(['start', id]);
      const code = await timed(`${version} ${name}/${ctr.name} start → exit`, () => k.crictl.waitExited(id));
      const logFile = readIfThere(join(logDir, `${ctr.name}.log`));
      const inspect = JSON.parse(k.crictl.must(['inspect', '-o', 'json', id])) as { status: { reason: string; message: string }; info: { runtimeSpec: { annotations?: Record<string, string> } } };
      if (code !== 0) {
        throw new Error(`${name}/${ctr.name} exited ${code} (${inspect.status.reason}: ${inspect.status.message}); its log:\n${logFile}\ncrio log:\n${k.daemon.logTail(15)}`);
      }
      results.push({ logs: k.crictl.must(['logs', id]), annotations: inspect.info.runtimeSpec.annotations ?? {} });
    }
    return results;
  }

  beforeAll(async () => {
    const s = shared;
    if (!s) throw new Error('shared setup failed (see the beforeAll error above)');
    const dir = mkdtempSync(join(s.base, `${version}-${target}-`));
    const nodeRoot = join(dir, 'node');
    for (const d of ['etc/crio', 'opt', 'run', 'proc']) mkdirSync(join(nodeRoot, d), { recursive: true });
    const runId = randomBytes(6).toString('hex');
    const paths = crioPaths(join(dir, 'crio'));
    mkdirSync(paths.base);
    const binaries = requireCrioBinaries(version);
    const crioConf = nodeCrioConf(paths, binaries.pinns, FIXTURE_IMAGES.pause);
    writeFileSync(join(nodeRoot, 'etc/crio/crio.conf'), crioConf);
    // The node's own CRI-O binary, where the installer looks for it.
    installHostBinary(nodeRoot, '/usr/bin/crio', binaries.crio);
    const daemon = new CrioDaemon(binaries, paths, join(nodeRoot, 'etc/crio/crio.conf'), join(nodeRoot, 'etc/crio/crio.conf.d'), ['/run/crun-wasm']);
    c = {
      dir,
      nodeRoot,
      nodeBefore: snapshot(nodeRoot),
      crioConf,
      prefix: `/opt/knawd-crio-e2e-${runId}`,
      cgroupParent: `/knawd-crio-e2e-${runId}`,
      daemon,
      crictl: new Crictl(paths.socket, dir),
      dropIn: join(nodeRoot, 'etc/crio/crio.conf.d/50-knawd-crun-wasm.conf'),
    };
    for (const [key, image] of Object.entries(s.images)) await timed(`${version} skopeo copy ${key}`, () => daemon.loadImage(image.archive, image.name));
  }, 5 * 60_000);

  afterAll(async () => {
    const k = c;
    if (!k) return;
    const problems: string[] = [];
    if (k.daemon.running) problems.push(...k.crictl.removeAllPods());
    problems.push(...(await k.daemon.cleanup()));
    if (k.link) {
      try {
        unlinkSync(k.link);
      } catch (e) {
        problems.push(`removing the prefix link ${k.link}: ${String(e)}`);
      }
    }
    problems.push(...removeCgroupTree(k.cgroupParent));
    notes.push(`CRI-O ${version} (${target}) starts: ${k.daemon.starts.map((ms) => `${ms} ms`).join(', ')}`);
    if (problems.length > 0) throw new Error(`teardown left things behind:\n${problems.join('\n')}`);
  }, 2 * 60_000);

  test('knawd-installer install writes a drop-in with the allowed_annotations this CRI-O needs', async () => {
    const k = need();
    const r = await timed(`${version} knawd-installer install`, () => installer(installerArgs('install')));
    if (r.code !== 0) throw new Error(`install failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"install complete"/);
    symlinkSync(join(k.nodeRoot, k.prefix), k.prefix);
    k.link = k.prefix;
    // Installed: the later steps run even when the checks below fail, to show what CRI-O makes of the drop-in.
    done.add('install');
    const dropIn = readFileSync(k.dropIn, 'utf8');
    notes.push(`CRI-O ${version} drop-in: ${dropIn.split('\n').find((l) => l.includes('allowed_annotations'))?.trim() ?? 'no allowed_annotations'}`);
    // The crun CRI-O will run: the image's build for this engine, through the installer's wrapper.
    const crunVersion = must(`${k.prefix}/bin/${runtime}`, ['--version']).stdout;
    notes.push(`${version} ${runtime}: ${crunVersion.split('\n')[0]}, ${crunVersion.trim().split('\n').pop()}`);
    expect(crunVersion).toMatch(new RegExp(`^crun version 1\\.21\\n[^]*\\+WASM:${engine}`));
    // The version came from the host's crio binary, and decided the list.
    expect(r.stdout).toContain(`CRI-O ${version.slice(1)} (as /usr/bin/crio --version reports) filters annotations the handler does not allow`);
    // Before writing, the node's own CRI-O merged the candidate drop-in and saw the handler.
    expect(r.stdout).toContain('pre-flight: /usr/bin/crio loads the new /etc/crio/crio.conf.d/50-knawd-crun-wasm.conf and sees handler crun-wasm');
    expect(dropIn).toContain(`[crio.runtime.runtimes.${HANDLER}]`);
    expect(dropIn).toContain(`runtime_path = "${k.prefix}/bin/${runtime}"`);
    expect(dropIn).toContain('  allowed_annotations = ["module.wasm.image/variant", "run.oci."]\n');
    expect(readFileSync(join(k.nodeRoot, 'etc/crio/crio.conf'), 'utf8')).toBe(k.crioConf); // only read, never written
  });

  test('after the restart CRI-O has loaded the handler with its allowed_annotations (crictl info)', async () => {
    const k = need('install');
    await timed(`${version} crio start (after install)`, () => k.daemon.start());
    expect(k.crictl.must(['version'])).toContain(`RuntimeVersion:  ${version.slice(1)}`);
    const handlers = k.crictl.statusHandlers();
    if (!handlers.includes(HANDLER)) throw new Error(`CRI-O ${version} did not load ${HANDLER} (runtime handlers: ${JSON.stringify(handlers)}):\n${ignored(k)}`);
    // Loaded: the pods below run even when the checks here fail, to show what reaches crun.
    done.add('loaded');
    expect(handlers).toEqual(['', HANDLER, 'runc']);
    // The CRI socket itself, without crictl: what a post-restart check reads.
    // The installer's own CRI Status client, as its post-restart check reads it.
    const status = await readCriStatus(k.crictl.socket, 10_000);
    expect([...status.runtimeHandlers].sort()).toEqual(['', HANDLER, 'runc']);
    expect(servedHandlers(status)).toContain(HANDLER);
    expect(Object.keys(status.info)).toEqual(['config']);
    const runtimes = (k.crictl.info().config as { crio: { Runtimes: Record<string, { AllowedAnnotations?: string[]; RuntimePath?: string }> } }).crio.Runtimes;
    expect(runtimes[HANDLER]).toMatchObject({ AllowedAnnotations: EXPECTED_ALLOWED, RuntimePath: `${k.prefix}/bin/${runtime}` });
    expect(k.daemon.logSinceStart(new RegExp(`"${HANDLER}" is being ignored`))).toEqual([]);
  });

  test('a control pod under the default runtime (runc) runs busybox: CRI-O, images and cgroups work', async () => {
    const k = need('loaded');
    const [plain] = await runPod(k, 'control', 'runc', {}, [{ name: 'plain', image: FIXTURE_IMAGES.busybox }]);
    expect(plain.logs.trim()).toBe(PLAIN_LINE);
    done.add('control');
  });

  test(`a WASI pod with module.wasm.image/variant=compat-smart prints "${WASM_LINE}", a busybox container beside it still runs`, async () => {
    const k = need('loaded', 'control');
    const annotations = { 'module.wasm.image/variant': 'compat-smart' };
    const [wasm, plain] = await runPod(k, 'compat', HANDLER, annotations, [
      { name: 'hello', image: (shared as Shared).images.wasm.name },
      { name: 'plain', image: FIXTURE_IMAGES.busybox },
    ]);
    // CRI-O let the annotation through to crun (the drop-in's allowed_annotations), and crun ran the module.
    expect(wasm.annotations['module.wasm.image/variant']).toBe('compat-smart');
    expect(wasm.logs.trim()).toBe(WASM_LINE);
    expect(plain.annotations['module.wasm.image/variant']).toBe('compat-smart');
    expect(plain.logs.trim()).toBe(PLAIN_LINE);
  });

  test(`a WASI pod with run.oci.handler=wasm-smart prints "${WASM_LINE}"`, async () => {
    const k = need('loaded', 'control');
    // By its index digest, as the chart's default test image names it: CRI-O resolves it from containers-storage.
    const [wasm] = await runPod(k, 'handler', HANDLER, { 'run.oci.handler': 'wasm-smart' }, [{ name: 'hello', image: WASM_TEST_IMAGE }]);
    expect(wasm.annotations['run.oci.handler']).toBe('wasm-smart');
    expect(wasm.logs.trim()).toBe(WASM_LINE);
  });

  test(`a WASI pod with no annotation prints "${WASM_LINE}" through the engine, a busybox container beside it runs natively`, async () => {
    const k = need('loaded', 'control');
    const [wasm, plain] = await runPod(k, 'plain-pod', HANDLER, {}, [
      { name: 'hello', image: (shared as Shared).images.wasm.name },
      { name: 'plain', image: FIXTURE_IMAGES.busybox },
    ]);
    expect(Object.keys(wasm.annotations).filter((a) => a.startsWith('module.wasm.image/') || a.startsWith('run.oci.'))).toEqual([]);
    expect(wasm.logs.trim()).toBe(WASM_LINE);
    expect(plain.logs.trim()).toBe(PLAIN_LINE);
  });

  test('another run.oci.* annotation reaches crun (CRI-O allows the run.oci. prefix) and crun drops it: the pod starts', async () => {
    const k = need('loaded', 'control');
    // crun hands the container's pidfd to the unix socket this names, and fails the create when it cannot: the
    // socket does not exist, so the pod starts only if crun ignored the annotation.
    const receiver = join(k.dir, 'no-such-pidfd-receiver.sock');
    const [wasm, plain] = await runPod(k, 'foreign', HANDLER, { 'run.oci.pidfd_receiver': receiver }, [
      { name: 'hello', image: (shared as Shared).images.wasm.name },
      { name: 'plain', image: FIXTURE_IMAGES.busybox },
    ]);
    expect(wasm.annotations['run.oci.pidfd_receiver']).toBe(receiver);
    expect(wasm.logs.trim()).toBe(WASM_LINE);
    expect(plain.logs.trim()).toBe(PLAIN_LINE);
    expect(existsSync(receiver)).toBe(false);
  });

  // The probe on one CRI-O version (both engines run on it): the behaviour is crun's, the way there CRI-O's.
  if (version === NEWEST) {
    let probePod: ProbePod | undefined;
    const podForProbes = (k: Case): ProbePod => {
      if (probePod) return probePod;
      const logDir = join(k.dir, 'pod-logs', 'probe');
      mkdirSync(logDir, { recursive: true });
      const podFile = k.crictl.writeJson('pod-probe.json', podConfig({ name: 'probe', uid: randomBytes(8).toString('hex'), logDirectory: logDir, annotations: { 'module.wasm.image/variant': 'compat-smart' }, cgroupParent: k.cgroupParent, pidNamespace: PID_CONTAINER }));
      const runp = k.crictl.run(['runp', '--runtime', HANDLER, podFile]);
      if (runp.code !== 0) throw new Error(`runp probe failed: ${describeRun(runp)}\nhandler problems:\n${ignored(k)}`);
      probePod = { crictl: k.crictl, podId: runp.stdout.trim(), podFile, logDir, image: FIXTURE_IMAGES.probe, workDir: k.dir, linux: { security_context: { namespace_options: { network: 2, pid: PID_CONTAINER } } } };
      return probePod;
    };
    test.each(PROBE_CASES.map((p) => [p.name, p] as const))('the WASI probe through CRI-O: %s', async (_name, probe) => {
      const k = need('loaded', 'control');
      const outcome = await timed(`${version} probe ${probe.name} (${runtime})`, () => runProbeCase(podForProbes(k), probe));
      if (probe.name === 'env') notes.push(`${runtime} env through CRI-O ${version}: ${JSON.stringify(outcome.specEnv)}`);
      expect(probeProblems(engine, probe, outcome)).toEqual([]);
    });
  }

  test('knawd-installer remove: after the restart CRI-O no longer has the handler and the node root is byte-identical', async () => {
    const k = need('install');
    const leftovers = k.daemon.running ? k.crictl.removeAllPods() : [];
    if (leftovers.length > 0) throw new Error(`could not remove the pods: ${leftovers.join('\n')}`);
    const r = await timed(`${version} knawd-installer remove`, () => installer(installerArgs('remove')));
    if (r.code !== 0) throw new Error(`remove failed: ${describeRun(r)}`);
    expect(r.stdout).toMatch(/"msg":"remove complete"/);
    expect(snapshot(k.nodeRoot)).toEqual(k.nodeBefore);

    await timed(`${version} crio restart (after remove)`, () => (k.daemon.running ? k.daemon.restart() : k.daemon.start()));
    expect(k.crictl.statusHandlers()).toEqual(['', 'runc']);
    expect([...(await readCriStatus(k.crictl.socket, 10_000)).runtimeHandlers].sort()).toEqual(['', 'runc']);
    const logDir = join(k.dir, 'pod-logs', 'refused');
    mkdirSync(logDir, { recursive: true });
    const pod = k.crictl.writeJson('pod-refused.json', podConfig({ name: 'refused', uid: randomBytes(8).toString('hex'), logDirectory: logDir, cgroupParent: k.cgroupParent, pidNamespace: PID_CONTAINER }));
    const runp = k.crictl.run(['runp', '--runtime', HANDLER, pod]);
    expect(runp.code).not.toBe(0);
    expect(runp.stderr).toContain(HANDLER);
    notes.push(`CRI-O ${version} runp after remove: ${runp.stderr.trim().split('\n').pop()}`);
    expect(k.crictl.must(['pods', '-q'])).toBe('');
  });
});

function readIfThere(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '(no log file)';
  }
}
