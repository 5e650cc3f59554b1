/**
 * Issue 33's lines: WASM workloads against the same program native, on the real single-node cluster
 * (containerd 2.x), for each shipped engine (chart ociType crun-wasmedge, then `helm upgrade` to crun-wasmtime,
 * RuntimeClass crun) and for runc (no RuntimeClass) running the native binary. Images: bench-images.ts.
 *
 * - pod start → first output: the bench's clock before `kubectl create` to containerd's timestamp of the first
 *   log line (`kubectl logs --timestamps`; same machine clock), median of 10 sequential pods.
 * - compute: `bench sha256 32`, CRI's startedAt → finishedAt of the container (crictl inspect; ns precision):
 *   engine load + compile + generate + hash + exit, the whole crun run after `crun start`; the digest checked.
 *   The node's compile cache (crun-patches/0101) compiles a module in `crun create`, before startedAt: the first
 *   start (each engine's first run of bench.wasm on the node, before any other) also says pod created → finished;
 *   cached: the median of 3 later starts, each after a native run.
 * - 5 MB module, later: once the node's cache holds its compiled form (a compile longer than crun's wait goes on
 *   after the first start; the bench waits for it), median of 3.
 * - memory: working set (cgroup v1 usage − total_inactive_file, as the kubelet counts it) of the container's
 *   cgroup; for 20 pods the node's difference in the kubepods cgroup's working set plus the PSS of the pods'
 *   containerd shims, before the Deployment and with 20 replicas Ready.
 * - service: `loadgen` (loadgen.c) in the node's network namespace against the ClusterIP, 16 connections,
 *   at most 3000 requests and 20 s.
 * Everything is bounded by its own timeout; a failing pod or a wrong digest throws with what went wrong.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DEFAULT_RUNTIME_CLASS } from '../../lib/catalog/node-contract';
import { NodeCluster, startNodeCluster } from '../../demo/cluster/cluster';
import { cgroupHierarchies } from '../../demo/cluster/node';
import { exec, must, REPO } from '../../demo/cluster/process';
import { BENCH_HELLO, BENCH_IMAGES, benchDigest, BenchImages, benchImages, BIG_MODULE_LINE } from '../../demo/cluster/images/bench-images';
import { helmInstall, switchEngine, waitFor } from '../../demo/cluster/product';
import { BenchResult } from './measure';
import { DEFAULT_HOST_PREFIX } from '../../lib/catalog';
import { CompileCacheReport, readCompileCache } from '../../lib/installer/host/compile-cache';
import { HostFs } from '../../lib/installer/host/fs';

type Variant = 'runc, native' | 'crun-wasmedge' | 'crun-wasmtime';
const NATIVE: Variant = 'runc, native';
const ENGINES: readonly Variant[] = ['crun-wasmedge', 'crun-wasmtime'];
const STARTS = 10;
const LATER_BIG_STARTS = 3;
/** Later compute runs (from the node's compile cache), each after a native one. */
const CACHED_COMPUTES = 3;
const COMPUTE_MIB = 32;
const SERVICE_PODS = 20;
const LOAD = { connections: 16, requests: 3000, seconds: 20 };
const NO_SOCKETS = 'not measured: crun-wasmtime cannot serve (wasmtime 26 C API preopens no sockets)';

interface Figures {
  /** Pod start → first output, each sample. */
  starts: number[];
  /** The native pods started in turn with this engine's, under the same load (engines only). */
  nativeStarts: number[];
  bigFirstMs?: number;
  bigLaterMs?: number;
  computeFirstMs?: number;
  /** The first compute pod, created → finished (the compile in crun create included). */
  computeFirstWallMs?: number;
  computeLaterMs?: number;
  /** Native compute runs in turn with this engine's. */
  nativeComputes: number[];
  idle?: Memory;
  service?: Memory;
  twentyPodsMiB?: number;
  rps?: number;
  p99Ms?: number;
  loadDetail?: string;
}

/** A container's working set (what the kubelet counts), and its processes' RSS and PSS. */
interface Memory {
  workingSetMiB: number;
  rssMiB: number;
  pssMiB: number;
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const round = (x: number, digits = 0): number => Number(x.toFixed(digits));

/** RFC 3339 with nanoseconds → epoch ms with the fraction (Date.parse keeps milliseconds only). */
function epochMs(stamp: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(stamp);
  if (!m) throw new Error(`not an RFC 3339 time: ${stamp}`);
  return Date.parse(`${m[1]}${m[3]}`) + Number(`0.${m[2] ?? '0'}`) * 1000;
}

function podSpec(variant: Variant, name: string, container: Record<string, unknown>): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'knawd-bench' } },
    spec: {
      ...(variant === NATIVE ? {} : { runtimeClassName: DEFAULT_RUNTIME_CLASS }),
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'bench', imagePullPolicy: 'Never', ...container }],
    },
  };
}

function program(variant: Variant, args: readonly string[]): Record<string, unknown> {
  return variant === NATIVE ? { image: BENCH_IMAGES.native, command: ['/bench'], args } : { image: BENCH_IMAGES.wasm, command: ['/bench.wasm'], args };
}

let serial = 0;

/** Runs one pod to Succeeded; returns its creation time (bench clock), log lines with timestamps, container id. */
async function runPod(h: NodeCluster, variant: Variant, container: Record<string, unknown>): Promise<{ createdMs: number; lines: Array<{ ms: number; text: string }>; runMs: number; wallMs: number }> {
  const name = `bench-${++serial}`;
  const createdMs = Date.now();
  await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(podSpec(variant, name, container)) });
  let detail = '';
  const status = await waitFor(h, `bench pod ${name} (${variant}) Succeeded`, async () => {
    const pod = JSON.parse(await h.kubectlOk(['get', 'pod', name, '-o', 'json']));
    detail = JSON.stringify(pod.status.containerStatuses ?? pod.status.conditions ?? []);
    if (pod.status.phase === 'Failed') throw new Error(`bench pod ${name} (${variant}) failed: ${detail}\n${await h.kubectlOk(['logs', name])}`);
    return pod.status.phase === 'Succeeded' ? pod.status : undefined;
  }, 300_000, () => detail);
  const lines = (await h.kubectlOk(['logs', '--timestamps', name]))
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const space = l.indexOf(' ');
      return { ms: epochMs(l.slice(0, space)), text: l.slice(space + 1) };
    });
  const containerId = String(status.containerStatuses[0].containerID).replace(/^containerd:\/\//, '');
  const cri = JSON.parse(must(path.join(REPO, '.tools/bin/crictl'), ['--runtime-endpoint', `unix://${h.node.host('run/containerd/containerd.sock')}`, 'inspect', containerId]).stdout).status;
  await h.kubectlOk(['delete', 'pod', name, '--wait=true']);
  return { createdMs, lines, runMs: epochMs(cri.finishedAt) - epochMs(cri.startedAt), wallMs: epochMs(cri.finishedAt) - createdMs };
}

async function firstOutputMs(h: NodeCluster, variant: Variant, container: Record<string, unknown>, expected: string): Promise<number> {
  const r = await runPod(h, variant, container);
  if (r.lines[0]?.text !== expected) throw new Error(`${variant}: expected "${expected}" first, the pod printed ${JSON.stringify(r.lines.map((l) => l.text))}`);
  return r.lines[0].ms - r.createdMs;
}

/** CRI's startedAt → finishedAt of `bench sha256`, its digest checked (and the pod's created → finished). */
async function computeRun(h: NodeCluster, variant: Variant, digest: string): Promise<{ runMs: number; wallMs: number }> {
  const r = await runPod(h, variant, program(variant, ['sha256', String(COMPUTE_MIB)]));
  const want = `sha256 ${digest} ${COMPUTE_MIB}`;
  if (r.lines.map((l) => l.text).join('\n') !== want) throw new Error(`${variant}: sha256 printed ${JSON.stringify(r.lines.map((l) => l.text))}, expected "${want}"`);
  return r;
}
const computeMs = async (h: NodeCluster, variant: Variant, digest: string): Promise<number> => (await computeRun(h, variant, digest)).runMs;

/** The node's compile cache as `status` reports it (it lies in the node's overlay over /opt). */
function nodeCompileCache(h: NodeCluster): CompileCacheReport | undefined {
  return readCompileCache(new HostFs(path.join(h.node.options.base, 'upper')), DEFAULT_HOST_PREFIX);
}

/** Until no compile is under way in the node's cache (a filler's work is `<entry>.partial-<pid>…`). */
async function compilesDone(h: NodeCluster): Promise<void> {
  const dir = path.join(h.node.options.base, 'upper', DEFAULT_HOST_PREFIX, 'cache');
  await waitFor(h, 'the node\'s compile cache to finish its compiles', async () => (fs.readdirSync(dir).some((n) => n.includes('.partial-')) ? undefined : true), 900_000);
}

/** The kubelet's working set of a cgroup directory (v1 memory controller), MiB. */
function workingSetMiB(dir: string): number {
  const usage = Number(fs.readFileSync(path.join(dir, 'memory.usage_in_bytes'), 'utf8'));
  const inactive = Number(/^total_inactive_file (\d+)$/m.exec(fs.readFileSync(path.join(dir, 'memory.stat'), 'utf8'))?.[1] ?? 0);
  return Math.max(0, usage - inactive) / 1048576;
}

function memoryRoot(h: NodeCluster): string {
  const hierarchy = cgroupHierarchies().find((c) => fs.existsSync(path.join(c, h.node.cgroupRoot, 'memory.usage_in_bytes')));
  if (!hierarchy) throw new Error(`no memory cgroup for the node (${h.node.cgroupRoot}) in ${cgroupHierarchies().join(', ')}`);
  return path.join(hierarchy, h.node.cgroupRoot);
}

function findCgroup(root: string, name: string): string | undefined {
  for (const e of fs.readdirSync(root, { withFileTypes: true })) {
    if (!e.isDirectory()) continue;
    const p = path.join(root, e.name);
    if (e.name === name || e.name.endsWith(name)) return p;
    const found = findCgroup(p, name);
    if (found) return found;
  }
  return undefined;
}

/** The container's own cgroup: its working set, and RSS and PSS of its processes (shared LLVM pages count in RSS). */
function containerMemory(h: NodeCluster, containerId: string): Memory {
  const dir = findCgroup(memoryRoot(h), containerId);
  if (!dir) throw new Error(`no memory cgroup of container ${containerId} under ${memoryRoot(h)}`);
  let rss = 0;
  let pss = 0;
  for (const pid of fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
    const rollup = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    rss += Number(/^Rss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
    pss += Number(/^Pss:\s+(\d+) kB/m.exec(rollup)?.[1] ?? 0);
  }
  return { workingSetMiB: workingSetMiB(dir), rssMiB: rss / 1024, pssMiB: pss / 1024 };
}

/** The pods' share of the node: the kubepods cgroup's working set plus the PSS of the containerd shims. */
function podsMiB(h: NodeCluster): number {
  const kubepods = findCgroup(memoryRoot(h), 'kubepods');
  if (!kubepods) throw new Error(`no kubepods memory cgroup under ${memoryRoot(h)}`);
  const pidns = h.node.pidNamespace();
  let shimsKiB = 0;
  for (const pid of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/ns/pid`) !== pidns || !fs.readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('containerd-shim')) continue;
      shimsKiB += Number(/^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // gone meanwhile
    }
  }
  return workingSetMiB(kubepods) + shimsKiB / 1024;
}

async function runningPodContainer(h: NodeCluster, selector: string): Promise<string[]> {
  const pods = JSON.parse(await h.kubectlOk(['get', 'pods', '-l', selector, '-o', 'json'])).items as Array<{ status: { containerStatuses?: Array<{ ready: boolean; containerID?: string }> } }>;
  return pods.flatMap((p) => (p.status.containerStatuses ?? []).filter((c) => c.ready && c.containerID).map((c) => String(c.containerID).replace(/^containerd:\/\//, '')));
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One idle `bench idle` pod's working set (every variant, wasmtime included: no socket needed). */
async function idleModule(h: NodeCluster, variant: Variant): Promise<Memory> {
  const name = `bench-idle-${++serial}`;
  await h.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(podSpec(variant, name, program(variant, ['idle']))) });
  await h.kubectlOk(['wait', '--for=condition=Ready', `pod/${name}`, '--timeout=180s'], { timeoutMs: 190_000 });
  await settle(3000);
  const id = String(JSON.parse(await h.kubectlOk(['get', 'pod', name, '-o', 'json'])).status.containerStatuses[0].containerID).replace(/^containerd:\/\//, '');
  const memory = containerMemory(h, id);
  await h.kubectlOk(['delete', 'pod', name, '--wait=true']);
  return memory;
}

/** The HTTP service as a Deployment behind a ClusterIP: one pod's memory, load, then 20 replicas' memory. */
async function service(h: NodeCluster, variant: Variant, loadgen: string): Promise<Pick<Figures, 'service' | 'twentyPodsMiB' | 'rps' | 'p99Ms' | 'loadDetail'>> {
  const name = variant === NATIVE ? 'bench-http-native' : 'bench-http-wasm';
  const container =
    variant === NATIVE ? { image: BENCH_IMAGES.native, command: ['/http'] } : { image: h.images.installer.serviceName };
  const before = podsMiB(h);
  const objects = [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name },
      spec: {
        replicas: 1,
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            ...(variant === NATIVE ? {} : { runtimeClassName: DEFAULT_RUNTIME_CLASS }),
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'http', imagePullPolicy: 'Never', ...container, env: [{ name: 'PORT', value: '8080' }], ports: [{ containerPort: 8080 }], readinessProbe: { httpGet: { path: '/healthz', port: 8080 }, periodSeconds: 1 } }],
          },
        },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }] } },
  ];
  await h.kubectlOk(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  await h.kubectlOk(['rollout', 'status', `deployment/${name}`, '--timeout=180s'], { timeoutMs: 190_000 });
  await settle(3000);
  const [id] = await runningPodContainer(h, `app=${name}`);
  const memory = containerMemory(h, id);

  const clusterIP = JSON.parse(await h.kubectlOk(['get', 'service', name, '-o', 'json'])).spec.clusterIP as string;
  const [command, ...args] = h.netns.enter([loadgen, clusterIP, '80', String(LOAD.connections), String(LOAD.requests), String(LOAD.seconds)]);
  const load = exec(command, args, { timeoutMs: (LOAD.seconds + 30) * 1000 });
  const m = /requests=(\d+) errors=(\d+) seconds=([\d.]+) rps=([\d.]+) p99_ms=([\d.]+)/.exec(load.stdout);
  if (load.code !== 0 || !m) throw new Error(`loadgen against ${variant} failed (exit ${load.code}): ${load.stdout}${load.stderr}`);

  await h.kubectlOk(['scale', `deployment/${name}`, `--replicas=${SERVICE_PODS}`]);
  await h.kubectlOk(['rollout', 'status', `deployment/${name}`, '--timeout=300s'], { timeoutMs: 310_000 });
  await settle(5000);
  const twentyPodsMiB = podsMiB(h) - before;
  await h.kubectlOk(['delete', 'deployment,service', name, '--wait=true', '--timeout=180s'], { timeoutMs: 190_000 });
  await waitFor(h, `${variant} service pods gone`, async () => ((await runningPodContainer(h, `app=${name}`)).length === 0 && JSON.parse(await h.kubectlOk(['get', 'pods', '-l', `app=${name}`, '-o', 'json'])).items.length === 0 ? true : undefined), 180_000);
  return { service: memory, twentyPodsMiB, rps: Number(m[4]), p99Ms: Number(m[5]), loadDetail: `${m[1]} ok, ${m[2]} errors in ${m[3]} s` };
}

/**
 * An engine's figures, each beside native runs made in turn with it (native, engine, native, …) so that a ratio
 * compares runs under the same load; the native binary's own memory and service once, before the engines.
 */
async function measure(h: NodeCluster, variant: Variant, digest: string, loadgen: string): Promise<Figures> {
  const f: Figures = { starts: [], nativeStarts: [], nativeComputes: [] };
  if (variant === NATIVE) {
    f.idle = await idleModule(h, variant);
    return Object.assign(f, await service(h, variant, loadgen));
  }
  await measureCompiled(h, variant, digest, f);
  f.idle = await idleModule(h, variant);
  if (variant !== 'crun-wasmtime') Object.assign(f, await service(h, variant, loadgen));
  return f;
}

/** Pod starts, compute and the 5 MB module: what the node's compile cache changes. */
async function measureCompiled(h: NodeCluster, variant: Variant, digest: string, f: Figures): Promise<void> {
  // Compute first: this engine's first start of bench.wasm on the node, the one that compiles it.
  f.nativeComputes.push(await computeMs(h, NATIVE, digest));
  const first = await computeRun(h, variant, digest);
  f.computeFirstMs = first.runMs;
  f.computeFirstWallMs = first.wallMs;
  const cached: number[] = [];
  for (let i = 0; i < CACHED_COMPUTES; i++) {
    f.nativeComputes.push(await computeMs(h, NATIVE, digest));
    cached.push(await computeMs(h, variant, digest));
  }
  f.nativeComputes.push(await computeMs(h, NATIVE, digest));
  f.computeLaterMs = median(cached);
  const hello = (v: Variant): Promise<number> => firstOutputMs(h, v, program(v, ['hello']), BENCH_HELLO);
  for (let i = 0; i < STARTS; i++) {
    f.nativeStarts.push(await hello(NATIVE));
    f.starts.push(await hello(variant));
  }
  const big = { image: BENCH_IMAGES.wasm, command: ['/big.wasm'] };
  f.bigFirstMs = await firstOutputMs(h, variant, big, BIG_MODULE_LINE);
  await compilesDone(h);
  const later: number[] = [];
  for (let i = 0; i < LATER_BIG_STARTS; i++) later.push(await firstOutputMs(h, variant, big, BIG_MODULE_LINE));
  f.bigLaterMs = median(later);
}

function buildLoadgen(): string {
  const out = path.join(REPO, 'build', 'bench', 'loadgen');
  fs.mkdirSync(path.dirname(out), { recursive: true });
  must('/usr/bin/gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', out, path.join(REPO, 'test/bench/loadgen.c')]);
  return out;
}

const memoryText = (m: Memory): string => `MiB (RSS ${m.rssMiB.toFixed(1)}, PSS ${m.pssMiB.toFixed(1)})`;

/** The lines, in the words; ratios last in each group, the goals as targets. */
function lines(f: Record<Variant, Figures>, bigBytes: number, cache: CompileCacheReport | undefined): BenchResult[] {
  return [...compiledLines(f, bigBytes), ...memoryAndServiceLines(f), cacheLine(cache)];
}

/** Pod starts, the 5 MB module, compute: the lines the node's compile cache changes. */
function compiledLines(f: Record<Variant, Figures>, bigBytes: number): BenchResult[] {
  const r: BenchResult[] = [];
  const ratio = (x: number, base: number): number => round(x / base, 2);
  const nativeStarts = ENGINES.flatMap((e) => f[e].nativeStarts);
  const nativeComputes = ENGINES.flatMap((e) => f[e].nativeComputes);
  r.push({ name: `wasm: pod start → first output (${NATIVE}, median of ${nativeStarts.length}, ms)`, value: round(median(nativeStarts)), unit: 'ms' });
  for (const e of ENGINES) r.push({ name: `wasm: pod start → first output (${e}, median of ${STARTS}, ms)`, value: round(median(f[e].starts)), unit: 'ms' });
  const startRatio = (e: Variant): number => ratio(median(f[e].starts), median(f[e].nativeStarts));
  const bestStart = Math.min(...ENGINES.map(startRatio));
  for (const e of ENGINES) {
    r.push({ name: `wasm: pod start → first output / native pod start (${e})`, value: startRatio(e), unit: `× (native in turn: ${round(median(f[e].nativeStarts))} ms; goal: one engine)`, target: 1.0, pass: bestStart <= 1.0 });
  }
  for (const e of ENGINES) {
    r.push({ name: `wasm: ${(bigBytes / 1e6).toFixed(1)} MB module pod start, first / later on the node (${e}, ms)`, value: `${round(f[e].bigFirstMs!)} / ${round(f[e].bigLaterMs!)}`, unit: `ms (later: median of ${LATER_BIG_STARTS})` });
    const x = ratio(f[e].bigLaterMs!, median(f[e].starts));
    r.push({ name: `wasm: 5 MB module later pod start / hello pod start (${e})`, value: x, unit: '×', target: 1.2, pass: x <= 1.2 });
  }
  r.push({ name: `wasm: compute, sha256 of ${COMPUTE_MIB} MiB, container run (${NATIVE}, median of ${nativeComputes.length}, ms)`, value: round(median(nativeComputes)), unit: 'ms' });
  for (const e of ENGINES) {
    const base = median(f[e].nativeComputes);
    r.push({ name: `wasm: compute, time / native (${e}, first start)`, value: ratio(f[e].computeFirstMs!, base), unit: `× (${round(f[e].computeFirstMs!)} ms; native in turn ${round(base)} ms; pod created → finished ${round(f[e].computeFirstWallMs!)} ms, the compile in crun create included)` });
    const cached = ratio(f[e].computeLaterMs!, base);
    r.push({ name: `wasm: compute, time / native (${e}, cached)`, value: cached, unit: `× (${round(f[e].computeLaterMs!)} ms: median of the ${CACHED_COMPUTES} later starts, from the node's compile cache)`, target: 1.4, pass: cached <= 1.4 });
  }
  return r;
}

function memoryAndServiceLines(f: Record<Variant, Figures>): BenchResult[] {
  const r: BenchResult[] = [];
  for (const v of [NATIVE, ...ENGINES]) r.push({ name: `wasm: idle module memory (${v}, bench idle, working set MiB)`, value: round(f[v].idle!.workingSetMiB, 1), unit: memoryText(f[v].idle!) });
  for (const v of [NATIVE, ...ENGINES]) {
    const s = f[v].service;
    r.push({ name: `wasm: idle service memory (${v}, working set MiB)`, value: s ? round(s.workingSetMiB, 1) : 'n/a', unit: s ? memoryText(s) : NO_SOCKETS });
  }
  for (const v of [NATIVE, ...ENGINES]) {
    const s = f[v];
    r.push({ name: `wasm: node memory for ${SERVICE_PODS} idle service pods (${v}, MiB)`, value: s.twentyPodsMiB === undefined ? 'n/a' : round(s.twentyPodsMiB), unit: s.twentyPodsMiB === undefined ? NO_SOCKETS : 'MiB (kubepods working set + shims PSS, minus before)' });
  }
  for (const v of [NATIVE, ...ENGINES]) {
    const s = f[v];
    r.push({ name: `wasm: service requests/s at ${LOAD.connections} connections (${v})`, value: s.rps ?? 'n/a', unit: s.rps === undefined ? NO_SOCKETS : `req/s (${s.loadDetail})` });
  }
  for (const v of [NATIVE, ...ENGINES]) {
    const s = f[v];
    r.push({ name: `wasm: service p99 latency (${v}, ms)`, value: s.p99Ms ?? 'n/a', unit: s.p99Ms === undefined ? NO_SOCKETS : 'ms' });
  }
  return r;
}

function cacheLine(cache: CompileCacheReport | undefined): BenchResult {
  if (!cache) return { name: 'wasm: node cache size after the bench (MiB)', value: 'n/a', unit: 'no compile cache on the node: no module started under the handler' };
  const c = cache.counters;
  return { name: 'wasm: node cache size after the bench (MiB)', value: round(cache.bytes / 1048576, 1), unit: `MiB (${cache.entries} entries; hits ${c.hits}, misses ${c.misses}, compiled ${c.compiled}, rejected ${c.rejected}, failed ${c.failed})` };
}

/** The node cluster with the bench images imported and the chart installed with crun-wasmedge; stopped after `work`. */
async function onBenchCluster(work: (h: NodeCluster, images: BenchImages) => Promise<BenchResult[]>): Promise<BenchResult[]> {
  const images = benchImages();
  const h = await startNodeCluster(2);
  try {
    for (const image of [images.wasm, images.native]) h.node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', image.archive]);
    await helmInstall(h, 'crun-wasmedge');
    return await work(h, images);
  } finally {
    const left = await h.stop();
    if (left.length > 0) throw new Error(`the benchmark's cluster left: ${left.join('; ')}`);
  }
}

/**
 * `npm run bench -- wasm-cache`: only the lines the node's compile cache changes (pod starts, the 5 MB module,
 * compute, the cache's size), on the same cluster and in the same order as `wasm`, without memory and service.
 */
export function benchWasmCache(): Promise<BenchResult[]> {
  const digest = benchDigest(COMPUTE_MIB);
  return onBenchCluster(async (h, images) => {
    const figures = {} as Record<Variant, Figures>;
    for (const e of ENGINES) {
      if (e !== 'crun-wasmedge') await switchEngine(h, e);
      figures[e] = { starts: [], nativeStarts: [], nativeComputes: [] };
      await measureCompiled(h, e, digest, figures[e]);
    }
    return [...compiledLines(figures, images.bigModuleBytes), cacheLine(nodeCompileCache(h))];
  });
}

export function benchWasm(): Promise<BenchResult[]> {
  const loadgen = buildLoadgen();
  const digest = benchDigest(COMPUTE_MIB);
  return onBenchCluster(async (h, images) => {
    const figures = {} as Record<Variant, Figures>;
    figures[NATIVE] = await measure(h, NATIVE, digest, loadgen);
    figures['crun-wasmedge'] = await measure(h, 'crun-wasmedge', digest, loadgen);
    await switchEngine(h, 'crun-wasmtime');
    figures['crun-wasmtime'] = await measure(h, 'crun-wasmtime', digest, loadgen);
    return lines(figures, images.bigModuleBytes, nodeCompileCache(h));
  });
}
