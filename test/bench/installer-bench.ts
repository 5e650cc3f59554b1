import { execFileSync } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { DEFAULT_HOST_PREFIX, HOST_PREFIX_MAX_LENGTH, VENDOR_MANIFEST, VendorManifest, VendorRole } from '../../lib/catalog';
import { REPO } from '../support/tools';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { manifestPath } from '../support/cluster/objects';
import { configMapData, createNode, nodeLabels, serviceAccountKubeconfig } from '../support/cluster/node';
import { KNATIVE_VERSIONS, serveKnativeApi } from '../support/knative';
import { BenchResult, timeMs } from './measure';
import { ShippedNode, shippedNode } from './shipped-node';

const MiB = 1024 * 1024;

interface ChildRun {
  code: number;
  wallMs: number;
  maxRssKiB: number;
  commands: number;
  report?: { bytesWritten: number; filesWritten: number; restarts: number };
  lines?: string[];
}

/**
 * 40 MB of artifacts in the image's layout (artifacts.json, SHA256SUMS): one build of crun-wasmtime, its crun
 * and its engine, served for the containerd target. The same two sizes as before the hermetic builds, so the
 * figures stay comparable; the real image's crun-wasmtime build is `npm run bench`'s image figures.
 */
function artifacts(root: string): string {
  const dir = join(root, 'vendor');
  mkdirSync(join(dir, 'crun-wasmtime'), { recursive: true });
  mkdirSync(join(dir, 'lib'));
  const files: [string, VendorRole, number][] = [['crun-wasmtime/crun', 'crun', 8 * MiB], ['lib/libwasmtime.so', 'engine', 32 * MiB]];
  const sums = files.map(([name, , size]) => {
    const data = randomBytes(size);
    writeFileSync(join(dir, name), data, { mode: 0o755 });
    return `${createHash('sha256').update(data).digest('hex')}  ${name}`;
  });
  const manifest: VendorManifest = {
    schema: VENDOR_MANIFEST.schema,
    placeholder: DEFAULT_HOST_PREFIX.padEnd(HOST_PREFIX_MAX_LENGTH, '/'),
    builds: { 'crun-wasmtime': { runtime: 'crun-wasmtime', versions: {}, files: files.map(([path, role]) => ({ path, role })) } },
    targets: { containerd: { 'crun-wasmtime': 'crun-wasmtime' } },
    packages: [],
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  writeFileSync(join(dir, VENDOR_MANIFEST.file), manifestBytes);
  sums.push(`${createHash('sha256').update(manifestBytes).digest('hex')}  ${VENDOR_MANIFEST.file}`);
  writeFileSync(join(dir, VENDOR_MANIFEST.sums), `${sums.join('\n')}\n`);
  return dir;
}

/**
 * A real API server as the DaemonSet meets it: the installer's ServiceAccount and RBAC as shipped, Knative
 * Serving (its API served, its config-features), and this node's Node object. Returns the ServiceAccount's
 * kubeconfig.
 */
async function apiServer(cluster: Cluster): Promise<string> {
  await serveKnativeApi(cluster, KNATIVE_VERSIONS[KNATIVE_VERSIONS.length - 1]);
  await cluster.kubectlOk(['create', 'namespace', 'knative-serving']);
  await cluster.kubectlOk(['-n', 'knative-serving', 'create', 'configmap', 'config-features', '--from-literal=kubernetes.podspec-runtimeclassname=disabled']);
  await cluster.kubectlOk(['apply', '--server-side', '-f', manifestPath('ubuntu_22_04', 'crun-wasmtime')]);
  // Knative's RBAC for the installer, as a raw-manifest install applies it next to Knative.
  await cluster.kubectlOk(['apply', '--server-side', '-f', join(REPO, 'dist', 'manifests', 'knative.yaml')]);
  for (let round = 0; round < ROUNDS; round++) await createNode(cluster, nodeName(round), 'containerd://1.7.22');
  return serviceAccountKubeconfig(cluster, 'knawd', 'knawd-installer');
}

/** First installs measured (each onto a node root and a Node of its own), against as many safe floors. */
const ROUNDS = 3;
const nodeName = (round: number): string => `bench-node-${round}`;

/** The node root of a first install: the containerd 1.6 default config, nothing installed. */
function freshNodeRoot(work: string, name: string): string {
  const nodeRoot = join(work, name);
  mkdirSync(join(nodeRoot, 'etc', 'containerd'), { recursive: true });
  mkdirSync(join(nodeRoot, 'run'));
  writeFileSync(join(nodeRoot, 'etc', 'containerd', 'config.toml'), readFileSync(join(REPO, 'test', 'fixtures', 'toml', 'containerd-1.6-default.toml')));
  return nodeRoot;
}

/**
 * The safe floor (safe-floor.c, compiled here): the same artifacts read once, written to a temp file, fsync'ed
 * and renamed into a fresh directory on the node root's file system, the directory fsync'ed; one process.
 */
function safeFloor(work: string, vendor: string, round: number): number {
  const binary = join(work, 'safe-floor');
  if (!existsSync(binary)) execFileSync('gcc', ['-O2', '-o', binary, join(__dirname, 'safe-floor.c')]);
  const target = join(work, `floor-${round}`);
  mkdirSync(target);
  const files = ['crun-wasmtime/crun', 'lib/libwasmtime.so'].map((f) => join(vendor, f));
  return timeMs(() => execFileSync(binary, [target, ...files]));
}

/**
 * Where a process's time goes before it installs anything (issue 17, item 3), with the image's node: its bare
 * start, the start with the image's own bundle loaded, the same from a user-land V8 startup snapshot (Node's
 * bootstrap and the built-in modules the bundle needs, where Node 20 can snapshot them: not tls, https or http2),
 * and the sha256 of the artifacts, which the safe floor does not compute and a verified install must.
 */
async function startFigures(shipped: ShippedNode, work: string, vendor: string): Promise<{ node: number; bundle: number; snapshot: number; sha256: number }> {
  const wall = (args: readonly string[]): number => median([0, 1, 2, 3, 4].map(() => shipped.run(args).ms));
  const builder = join(work, 'snapshot-builder.js');
  const blob = join(work, 'installer.blob');
  const builtins = ['assert', 'buffer', 'child_process', 'constants', 'crypto', 'events', 'fs', 'net', 'os', 'path', 'process', 'stream', 'util'];
  writeFileSync(
    builder,
    `for (const m of ${JSON.stringify(builtins)}) require(m);
const { createRequire } = require('module');
require('v8').startupSnapshot.setDeserializeMainFunction(() => {
  process.argv.splice(1, 0, ${JSON.stringify(shipped.bundle)});
  createRequire(${JSON.stringify(shipped.bundle)})(${JSON.stringify(shipped.bundle)});
});
`,
  );
  shipped.run(['--snapshot-blob', blob, '--build-snapshot', builder]);
  // The installer's own hashing (artifacts.ts), timed inside the process.
  const hasher = join(work, 'hash-artifacts.js');
  const files = ['crun-wasmtime/crun', 'lib/libwasmtime.so'].map((f) => join(vendor, f));
  await build({
    stdin: {
      contents: `import { hashFile } from '../../lib/installer/artifacts';
const t = process.hrtime.bigint();
for (const f of ${JSON.stringify(files)}) hashFile(f);
process.stdout.write(String(Number(process.hrtime.bigint() - t) / 1e6));`,
      resolveDir: __dirname,
      loader: 'ts',
    },
    bundle: true,
    platform: 'node',
    target: 'node20',
    outfile: hasher,
    logLevel: 'warning',
  });
  return {
    node: wall(['-e', '0']),
    bundle: wall([shipped.bundle, 'plan', '--help']),
    snapshot: wall(['--snapshot-blob', blob, 'plan', '--help']),
    sha256: Math.round(median([0, 1, 2].map(() => Number(shipped.run([hasher]).stdout)))),
  };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

export async function benchInstaller(): Promise<BenchResult[]> {
  const work = mkdtempSync(join(tmpdir(), 'knawd-bench-installer-'));
  let cluster: Cluster | undefined;
  try {
    cluster = await startCluster();
    const kubeconfig = await apiServer(cluster);
    const entry = join(work, 'installer-bench.js');
    // Built like `npm run bundle:installer` (minified), so the figures are those of what the image ships.
    await build({ entryPoints: [join(__dirname, 'installer-entry.ts')], bundle: true, minify: true, platform: 'node', target: 'node20', outfile: entry, logLevel: 'warning' });
    const vendor = artifacts(work);
    const argsFor = (nodeRoot: string, api: string[]): string[] => ['install', '--node-root', nodeRoot, '--target', 'containerd', '--runtime', 'crun-wasmtime', '--artifacts', vendor, ...api];
    // The image's own node runs every figure below (what a node runs), minus what launching it in the image's root costs.
    const shipped = shippedNode();
    const once = (args: string[]): { child: ChildRun; processMs: number } => {
      const { stdout, ms: processMs } = shipped.run([entry, ...args]);
      const child = JSON.parse(stdout) as ChildRun;
      if (child.code !== 0) throw new Error(`installer failed in the benchmark: ${child.lines?.join('\n')}`);
      return { child, processMs };
    };
    // Per round, on the same file system and the same (cached) artifacts: the safe floor, a first install as the
    // DaemonSet runs it (API steps: its Node, Events, Knative), and one without a cluster (the node's part only).
    safeFloor(work, vendor, -1);
    const floors: number[] = [];
    const firsts: Array<{ child: ChildRun; processMs: number }> = [];
    const bare: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      floors.push(safeFloor(work, vendor, round));
      firsts.push(once(argsFor(freshNodeRoot(work, `node-${round}`), ['--kubeconfig', kubeconfig, '--node-name', nodeName(round)])));
      bare.push(once(argsFor(freshNodeRoot(work, `bare-${round}`), [])).processMs);
    }
    const first = firsts[0];
    // The figures only count if the API steps really ran.
    const labelled = (await nodeLabels(cluster, nodeName(0)))['knawd.dev/crun-wasm'] === 'installed';
    const flagged = (await configMapData(cluster, 'knative-serving', 'config-features'))['kubernetes.podspec-runtimeclassname'] === 'enabled';
    if (!labelled || !flagged) throw new Error(`the benchmark's install did not label the node (${labelled}) or enable the Knative flag (${flagged})`);
    const noop = once(argsFor(join(work, 'node-0'), ['--kubeconfig', kubeconfig, '--node-name', nodeName(0)]));
    const floor = median(floors);
    const whole = median(firsts.map((f) => f.processMs));
    const ratio = whole / floor;
    const start = await startFigures(shipped, work, vendor);
    const peakMiB = Math.max(first.child.maxRssKiB, noop.child.maxRssKiB) / 1024;
    const noopOk = noop.child.wallMs < 150 && noop.child.report?.bytesWritten === 0 && noop.child.report?.restarts === 0;
    return [
      { name: 'installer: first install, 40 MB artifacts, API steps (in process)', value: Math.round(first.child.wallMs), unit: 'ms' },
      { name: 'installer: first install, whole process', value: first.processMs, unit: 'ms' },
      { name: 'installer: first install, bytes written', value: first.child.report?.bytesWritten ?? -1, unit: 'B' },
      { name: 'installer: first install, restarts', value: first.child.report?.restarts ?? -1, unit: '' },
      { name: 'installer: peak RSS incl. API steps (target <= 64 MiB)', value: Number(peakMiB.toFixed(1)), unit: 'MiB', target: 64, pass: peakMiB <= 64 },
      { name: 'installer: no-op re-install, in process (target < 150 ms)', value: Number(noop.child.wallMs.toFixed(1)), unit: 'ms', target: 150, pass: noopOk },
      { name: 'installer: no-op re-install, whole process', value: noop.processMs, unit: 'ms' },
      { name: 'installer: no-op re-install, bytes written (target 0)', value: noop.child.report?.bytesWritten ?? -1, unit: 'B', target: 0, pass: noop.child.report?.bytesWritten === 0 },
      { name: 'installer: no-op re-install, restarts (target 0)', value: noop.child.report?.restarts ?? -1, unit: '', target: 0, pass: noop.child.report?.restarts === 0 },
      { name: 'install: safe floor (one read + copy + fsync, same files, ms)', value: floor, unit: 'ms' },
      { name: 'install: first install whole process (ms)', value: whole, unit: 'ms' },
      { name: 'install: first install / safe floor', value: Number(ratio.toFixed(2)), unit: 'x', target: 1.5, pass: ratio <= 1.5 },
      // Where the rest goes: the same install without a cluster, and the process start alone.
      { name: 'install: first install whole process, no API steps (ms)', value: median(bare), unit: 'ms' },
      { name: 'install: first install, no API steps / safe floor', value: Number((median(bare) / floor).toFixed(2)), unit: 'x' },
      { name: "install: node start, the image's node (-e 0, ms)", value: start.node, unit: 'ms' },
      { name: "install: node start + the image's bundle (plan --help, ms)", value: start.bundle, unit: 'ms' },
      { name: 'install: the same from a V8 startup snapshot (plan --help, ms)', value: start.snapshot, unit: 'ms' },
      { name: "install: sha256 of the artifacts, the image's node (in process, ms)", value: start.sha256, unit: 'ms' },
      { name: "install: launch in the image's root (unshare + mount + chroot, subtracted, ms)", value: shipped.launchMs, unit: 'ms' },
    ];
  } finally {
    await cluster?.stop();
    rmSync(work, { recursive: true, force: true });
  }
}
