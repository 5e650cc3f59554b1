/**
 * A first install of N simulated nodes against a real kube-apiserver, for the rollout test and `npm run bench`
 * (issue 15): N installer processes (node-process.ts), each with its own node root and Node object, all started
 * at once with the restart budget of K slots and a restart that takes T. Optionally one holder is SIGKILLed in
 * the middle of its restart, then started again (as the kubelet restarts a container) once another node took
 * its slot. Measured: the most restarts ever running at once (from the recorded restart intervals), the wall
 * time until the last node finished, how long the killed holder's slot took to come back, and the API
 * requests each node made.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { build } from 'esbuild';
import { NODE_STATE_LABEL, restartLeaseName } from '../../../lib/catalog';
import { connectCluster } from '../../../lib/installer/kube/cluster';
import { renderInstallManifest } from '../../../lib/render/manifests';
import { Cluster, REPO } from '../../../demo/cluster/control-plane';
import { serviceAccountKubeconfig } from '../cluster/node';
import { writeFakeArtifacts } from '../fake-artifacts';

export const NAMESPACE = 'knawd';
const TARGET = 'containerd';
const RUNTIME = 'crun-wasmtime';

export interface RolloutWorld {
  readonly cluster: Cluster;
  /** The installer ServiceAccount's kubeconfig. */
  readonly kubeconfig: string;
  readonly dir: string;
  /** The bundled node process. */
  readonly entry: string;
  readonly artifacts: string;
}

/**
 * The manifests as shipped (with `slots` Leases), the ServiceAccount's token, fake artifacts and the node
 * process bundle, in `dir`.
 */
export async function prepareRollout(cluster: Cluster, dir: string, slots: number): Promise<RolloutWorld> {
  const manifest = path.join(dir, 'install.yaml');
  fs.writeFileSync(manifest, renderInstallManifest({ target: TARGET, ociType: RUNTIME, maxConcurrentRestarts: slots }));
  await cluster.kubectlOk(['apply', '--server-side', '-f', manifest]);
  const kubeconfig = await serviceAccountKubeconfig(cluster, NAMESPACE, 'knawd-installer');
  const entry = path.join(dir, 'node-process.js');
  await build({ entryPoints: [path.join(__dirname, 'node-process.ts')], bundle: true, minify: true, platform: 'node', target: 'node20', outfile: entry, logLevel: 'warning' });
  const artifacts = writeFakeArtifacts(path.join(dir, 'artifacts'), TARGET);
  return { cluster, kubeconfig, dir, entry, artifacts };
}

export interface RolloutOptions {
  /** Node names get this prefix (each run its own nodes). */
  readonly name: string;
  readonly nodes: number;
  /** K: slots this run uses (at most what prepareRollout created). */
  readonly slots: number;
  /** T. */
  readonly restartMs: number;
  /** SIGKILL the holder of a slot once this many restarts have started (then start it again). */
  readonly killAfterRestarts?: number;
  /** Give up (and report the nodes still running) after this long. */
  readonly timeoutMs: number;
  /** Once every node finished, run one drift check (`install --drift-check`) on the first node and count its requests. */
  readonly driftCheck?: boolean;
}

export interface RolloutResult {
  readonly nodes: number;
  readonly slots: number;
  readonly maxConcurrent: number;
  /** From starting the first process to the last one's exit. */
  readonly totalMs: number;
  /** totalMs / (ceil(N/K) * T). */
  readonly ratio: number;
  /** From the first restart's start to the last one's end, over ceil(N/K) * T: the budget's own overhead. */
  readonly restartSpanRatio: number;
  /** From starting the processes to the first restart (process start, install, the first take). */
  readonly firstRestartMs: number;
  readonly requestsPerNode: number;
  /** Nodes whose process did not end in time (killed at the timeout). */
  readonly unfinished: readonly string[];
  /** Nodes whose (last) process did not exit 0, with its output's end. */
  readonly failed: ReadonlyArray<{ node: string; code: number; output: string }>;
  /** Nodes not labelled installed at the end. */
  readonly notInstalled: readonly string[];
  /** Restarts per node, from the restart log. */
  readonly restarts: Readonly<Record<string, number>>;
  /** Lease holders left at the end (all should be free). */
  readonly heldAtEnd: readonly string[];
  readonly killed?: { readonly node: string; readonly slot: string; readonly slotBackMs: number | undefined };
  /** API requests of one drift check on an installed node that did not drift (with {@link RolloutOptions.driftCheck}). */
  readonly driftCheckRequests?: number;
}

interface Interval {
  readonly node: string;
  readonly start: number;
  end?: number;
}

/** The most intervals open at one instant (an end at t closes before a start at t opens). */
export function maxOverlap(intervals: ReadonlyArray<{ start: number; end: number }>): number {
  const points = intervals.flatMap((i) => [{ at: i.start, step: 1 }, { at: i.end, step: -1 }]).sort((a, b) => a.at - b.at || a.step - b.step);
  let open = 0;
  let most = 0;
  for (const p of points) most = Math.max(most, (open += p.step));
  return most;
}

function readIntervals(log: string): Interval[] {
  if (!fs.existsSync(log)) return [];
  const intervals: Interval[] = [];
  for (const line of fs.readFileSync(log, 'utf8').split('\n').filter(Boolean)) {
    const e = JSON.parse(line) as { node: string; event: 'start' | 'end'; at: number };
    // An end belongs to the node's latest start: a restart cut off by a kill has none.
    if (e.event === 'start') intervals.push({ node: e.node, start: e.at });
    else {
      const latest = intervals.filter((i) => i.node === e.node).pop();
      if (latest) latest.end = e.at;
    }
  }
  return intervals;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function createNodes(cluster: Cluster, names: readonly string[]): Promise<void> {
  const list = { apiVersion: 'v1', kind: 'List', items: names.map((name) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } })) };
  await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(list) });
}

function nodeRoot(dir: string, config: string): string {
  for (const d of ['etc/containerd', 'opt', 'run']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  fs.writeFileSync(path.join(dir, 'etc/containerd/config.toml'), config);
  return dir;
}

interface NodeRun {
  child: ChildProcess;
  output: string;
  exit: Promise<{ code: number; requests: number }>;
}

export async function runRollout(world: RolloutWorld, options: RolloutOptions): Promise<RolloutResult> {
  const { cluster } = world;
  const admin = connectCluster(cluster.kubeconfig, {})!;
  const names = Array.from({ length: options.nodes }, (_, i) => `${options.name}-${String(i).padStart(2, '0')}`);
  await createNodes(cluster, names);
  const config = fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'toml', 'containerd-1.6-default.toml'), 'utf8');
  const runDir = fs.mkdtempSync(path.join(world.dir, `${options.name}-`));
  const log = path.join(runDir, 'restarts.jsonl');

  const roots = new Map(names.map((n) => [n, nodeRoot(path.join(runDir, n), config)]));
  const start = (node: string, extra: readonly string[] = []): NodeRun => {
    const root = roots.get(node)!;
    const args = [
      world.entry, 'install', '--target', TARGET, '--runtime', RUNTIME, '--node-root', root, '--artifacts', world.artifacts, '--node-name', node,
      '--kubeconfig', world.kubeconfig, '--patch-knative', 'false', '--namespace', NAMESPACE, '--max-concurrent-restarts', String(options.slots), ...extra,
    ];
    const child = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ROLLOUT_LOG: log, ROLLOUT_RESTART_MS: String(options.restartMs) }, stdio: ['ignore', 'pipe', 'pipe'] });
    const run: NodeRun = { child, output: '', exit: Promise.resolve({ code: -1, requests: 0 }) };
    child.stdout!.on('data', (d: Buffer) => (run.output += d.toString('utf8')));
    child.stderr!.on('data', (d: Buffer) => (run.output += d.toString('utf8')));
    run.exit = new Promise((resolve) =>
      child.on('close', (code, signal) => {
        const last = run.output.trim().split('\n').pop() ?? '';
        let requests = 0;
        try {
          requests = (JSON.parse(last) as { requests?: number }).requests ?? 0;
        } catch {
          // killed: no summary line
        }
        resolve({ code: code ?? (signal ? -1 : 0), requests });
      }),
    );
    return run;
  };

  const began = Date.now();
  const runs = new Map(names.map((n) => [n, start(n)]));
  const requests: number[] = [];
  let killed: RolloutResult['killed'];
  let killedInterval: Interval | undefined;

  if (options.killAfterRestarts !== undefined) {
    // Wait for the restart to kill in, then take its holder down without warning.
    let victim: Interval | undefined;
    while (!victim && Date.now() - began < options.timeoutMs) {
      const intervals = readIntervals(log);
      if (intervals.length >= options.killAfterRestarts) victim = intervals.find((i) => i.end === undefined);
      if (!victim) await sleep(20);
    }
    if (victim) {
      const run = runs.get(victim.node)!;
      run.child.kill('SIGKILL');
      const killedAt = Date.now();
      killedInterval = victim;
      await run.exit;
      let slot: string | undefined;
      for (let i = 0; i < options.slots && !slot; i++) if ((await admin.getLease(NAMESPACE, restartLeaseName(i)))?.spec.holderIdentity === victim.node) slot = restartLeaseName(i);
      let slotBackMs: number | undefined;
      while (slot && Date.now() - began < options.timeoutMs) {
        const holder = (await admin.getLease(NAMESPACE, slot))?.spec.holderIdentity;
        if (holder !== victim.node) {
          slotBackMs = Date.now() - killedAt;
          break;
        }
        await sleep(100);
      }
      killed = { node: victim.node, slot: slot ?? '(none held)', slotBackMs };
      // The kubelet starts the container again: the node finishes its install.
      runs.set(victim.node, start(victim.node));
    }
  }

  const unfinished: string[] = [];
  const timer = setTimeout(() => {
    for (const [node, r] of runs) {
      if (r.child.exitCode === null && r.child.signalCode === null) {
        unfinished.push(node);
        r.child.kill('SIGKILL');
      }
    }
  }, Math.max(0, options.timeoutMs - (Date.now() - began)));
  const exits = await Promise.all([...runs].map(async ([node, r]) => ({ node, ...(await r.exit), output: r.output })));
  clearTimeout(timer);
  const totalMs = Date.now() - began;
  requests.push(...exits.map((e) => e.requests));

  // A killed holder's restart is counted as running for the whole T (the real systemctl would go on).
  const isKilled = (i: Interval): boolean => i.node === killedInterval?.node && i.start === killedInterval.start;
  const intervals = readIntervals(log).map((i) => ({ start: i.start, end: i.end ?? (isKilled(i) ? i.start + options.restartMs : Date.now()) }));
  if (killedInterval && !readIntervals(log).some((i) => isKilled(i) && i.end === undefined)) {
    throw new Error(`the restart of ${killedInterval.node} that was killed has an end in the restart log: it was not killed mid-restart`);
  }
  const restarts: Record<string, number> = {};
  for (const i of readIntervals(log)) restarts[i.node] = (restarts[i.node] ?? 0) + 1;
  const ideal = Math.ceil(options.nodes / options.slots) * options.restartMs;
  const nodes = await admin.listNodeMetadata();
  const notInstalled = names.filter((n) => nodes.find((x) => x.name === n)?.labels[NODE_STATE_LABEL] !== 'installed');
  let driftCheckRequests: number | undefined;
  if (options.driftCheck) {
    const check = start(names[0], ['--drift-check']);
    const { code, requests: made } = await check.exit;
    if (code !== 0 || /DriftDetected|repairing/.test(check.output)) throw new Error(`the drift check on ${names[0]} did not pass quietly (exit ${code}): ${check.output.trim().split('\n').slice(-5).join('\n')}`);
    driftCheckRequests = made;
  }
  const heldAtEnd: string[] = [];
  for (let i = 0; i < options.slots; i++) {
    const holder = (await admin.getLease(NAMESPACE, restartLeaseName(i)))?.spec.holderIdentity;
    if (holder) heldAtEnd.push(`${restartLeaseName(i)}: ${holder}`);
  }
  return {
    nodes: options.nodes,
    slots: options.slots,
    maxConcurrent: maxOverlap(intervals),
    totalMs,
    ratio: totalMs / ideal,
    restartSpanRatio: (Math.max(...intervals.map((i) => i.end)) - Math.min(...intervals.map((i) => i.start))) / ideal,
    firstRestartMs: Math.min(...intervals.map((i) => i.start)) - began,
    requestsPerNode: requests.reduce((a, b) => a + b, 0) / options.nodes,
    unfinished,
    failed: exits.filter((e) => e.code !== 0).map((e) => ({ node: e.node, code: e.code, output: e.output.trim().split('\n').slice(-5).join('\n') })),
    notInstalled,
    restarts,
    heldAtEnd,
    killed,
    driftCheckRequests,
  };
}
