/**
 * `npm run demo`: the whole product on a throwaway single-node cluster of this machine, in one command.
 *
 *   npm run demo                         build what is missing, run every step, print the summary, tear down
 *   npm run demo -- --keep               the same, but leave the cluster running (prints `export KUBECONFIG=…`)
 *   npm run demo -- --knative            Knative Serving too, and the same module as README's Knative Service
 *   npm run demo -- down                 remove a kept cluster
 *   npm run demo -- --runtime <ociType>  the engine the chart ends with (and keeps); the others run first
 *   npm run demo -- --port <n>           the loopback port of the API server (default 16443)
 *
 * This process checks (refusals: one line, exit 1, nothing changed), builds (tools/install-tools.sh demo, or
 * demo-knative, with a progress line per step) and prints the summary; the cluster is run by a runner process of its own
 * (run.ts, detached, over IPC; its log is build/demo/demo.log), so that a kept cluster outlives this one.
 * SIGINT/SIGTERM at any step: the build or the runner is stopped, the runner tears everything down, exit 130/143.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { sweepStale } from './cluster/cluster';
import { kubernetesBin, pinnedVersion, sweepStaleDirs } from './cluster/control-plane';
import { CACHE } from './cluster/images/built-image';
import { REPO, sleep } from './cluster/process';
import { RUNTIMES } from '../lib/catalog/runtimes';
import { BadInput, parseArgs } from './options';
import { BUILD_BYTES, holdPort, Refusal, requireCgroups, requireDisk, requireNamespaces, requireRoot, RUN_BYTES } from './preflight';
import { DEMO_DIR, KEPT_STATE, KeptState, KNATIVE_DEMO_NAMESPACE, KUBECONFIG, LOG, RunnerMessage, RunnerOptions } from './state';
import { formatSummary, Row } from './summary';

const RUNNER_FLAG = '--runner';

function exportLine(kubeconfig: string): string {
  return `export KUBECONFIG=${kubeconfig}`;
}

/** The kept cluster's state, when its runner still runs (a stale state file is removed). */
function keptCluster(): KeptState | undefined {
  let state: KeptState;
  try {
    state = JSON.parse(fs.readFileSync(KEPT_STATE, 'utf8')) as KeptState;
  } catch {
    return undefined;
  }
  let cmdline = '';
  try {
    cmdline = fs.readFileSync(`/proc/${state.pid}/cmdline`, 'utf8');
  } catch {
    // gone
  }
  if (cmdline.includes(RUNNER_FLAG)) return state;
  // Its runner was killed without a teardown: what it left is an orphan, swept like any killed run's.
  sweepStale();
  sweepStaleDirs();
  for (const f of [KEPT_STATE, KUBECONFIG]) fs.rmSync(f, { force: true });
  return undefined;
}

/** Tools and image present already: a run only checks them (no build space needed). */
function warm(knative: boolean): boolean {
  const tools = [
    ...['helm', 'node-supervisor'].map((t) => path.join(REPO, '.tools', 'bin', t)),
    ...['etcd', 'kube-apiserver', 'kubectl', 'kubelet', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'].map((t) => path.join(kubernetesBin('newest'), t)),
  ];
  return (
    tools.every((t) => fs.existsSync(t)) &&
    fs.existsSync(path.join(REPO, 'build', 'image', 'image.json')) &&
    (!knative || fs.existsSync(path.join(REPO, '.tools', 'knative-serving', 'release', 'modules.json')))
  );
}

/** Runs `tools/install-tools.sh <set>` (which prints a line per tool: cached, or building with its usual time and log). */
async function build(knative: boolean, onChild: (c: ChildProcess | undefined) => void): Promise<Row> {
  const started = Date.now();
  const set = knative ? 'demo-knative' : 'demo';
  console.log(`→ build what is missing: bash tools/install-tools.sh ${set} (helm, containerd 2.x, etcd, Kubernetes, node supervisor, ${knative ? 'Knative Serving, ' : ''}image) ...`);
  let output = '';
  const code = await new Promise<number>((resolve) => {
    const child = spawn('bash', [path.join(REPO, 'tools', 'install-tools.sh'), set], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    onChild(child);
    const relay = (d: Buffer): void => {
      output += d.toString('utf8');
      process.stdout.write(d.toString('utf8').replace(/^(?=.)/gm, '  '));
    };
    child.stdout.on('data', relay);
    child.stderr.on('data', relay);
    child.on('close', (c, signal) => resolve(c ?? 128 + (signal ? os.constants.signals[signal] : 0)));
  });
  onChild(undefined);
  const seconds = (Date.now() - started) / 1000;
  const built = [...output.matchAll(/^(?:image: )?(\S+) \S+: built in/gm)].map((m) => m[1]);
  const step = `build what is missing (tools/install-tools.sh ${set})`;
  if (code !== 0) return { step, seconds, result: `FAILED: exit ${code}: ${output.trim().split('\n').pop() ?? ''}`, engine: '-' };
  return { step, seconds, result: built.length ? `ok: built ${built.join(', ')}` : 'ok: everything cached', engine: '-' };
}

async function down(): Promise<number> {
  const kept = keptCluster();
  if (!kept) {
    console.log('npm run demo -- down: no kept demo cluster runs; nothing to do');
    return 0;
  }
  const started = Date.now();
  console.log(`stopping the kept demo cluster (runner pid ${kept.pid}, since ${kept.since}) ...`);
  process.kill(kept.pid, 'SIGTERM');
  while (fs.existsSync(`/proc/${kept.pid}`) && Date.now() - started < 180_000) await sleep(250);
  if (fs.existsSync(`/proc/${kept.pid}`)) {
    console.error(`npm run demo -- down: the runner (pid ${kept.pid}) did not stop within 180 s; see ${LOG}`);
    return 1;
  }
  const last = fs.readFileSync(LOG, 'utf8').trim().split('\n').filter((l) => l.startsWith('torn down')).pop() ?? `no teardown line in ${LOG}`;
  console.log(`demo cluster removed in ${((Date.now() - started) / 1000).toFixed(1)} s; ${last}`);
  return last === 'torn down: nothing left behind' ? 0 : 1;
}

async function run(opts: RunnerOptions): Promise<number> {
  const started = Date.now();
  const kept = keptCluster();
  if (kept) {
    if (opts.keep) {
      console.log(`a demo cluster already runs (runner pid ${kept.pid}, since ${kept.since}, ${kept.runtime}); nothing changed. Use it with: ${exportLine(kept.kubeconfig)}  (remove it: npm run demo -- down)`);
      return 0;
    }
    throw new Refusal(`a kept demo cluster runs (runner pid ${kept.pid}, since ${kept.since}): remove it first with npm run demo -- down`);
  }
  requireNamespaces();
  requireCgroups();
  fs.mkdirSync(CACHE, { recursive: true });
  requireDisk([
    { path: os.tmpdir(), bytes: RUN_BYTES, why: "the node (containerd's images and snapshots, etcd, logs)" },
    ...(warm(opts.knative) ? [] : [{ path: CACHE, bytes: BUILD_BYTES, why: 'a first build (Go and Cargo build caches, the tools, the image)' }]),
  ]);
  const listener = await holdPort(opts.port);

  let buildChild: ChildProcess | undefined;
  let runner: ChildProcess | undefined;
  let interrupted: NodeJS.Signals | undefined;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (interrupted) return;
      interrupted = signal;
      console.log(`\n${signal}: stopping${runner ? ' (the runner tears the cluster down)' : ''} ...`);
      if (buildChild?.pid) process.kill(-buildChild.pid, 'SIGTERM');
      if (runner?.pid) process.kill(runner.pid, 'SIGTERM');
      if (!buildChild && !runner) process.exit(128 + os.constants.signals[signal]);
    });
  }
  const exitCode = (code: number): number => (interrupted ? 128 + os.constants.signals[interrupted] : code);

  const buildRow = await build(opts.knative, (c) => (buildChild = c));
  if (interrupted || buildRow.result.startsWith('FAILED')) {
    listener.close();
    console.log(formatSummary({ rows: [buildRow], totals: { total: (Date.now() - started) / 1000 } }));
    return exitCode(1);
  }

  fs.mkdirSync(DEMO_DIR, { recursive: true });
  const log = fs.openSync(LOG, 'w');
  console.log(`→ the cluster part runs in a process of its own (log: ${path.relative(process.cwd(), LOG) || LOG}) ...`);
  // The held port as the runner's fd 3 (it hands it on to the forwarder); IPC for progress and the result.
  const handle = (listener as unknown as { _handle: unknown })._handle;
  runner = spawn(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, RUNNER_FLAG, JSON.stringify(opts)], {
    cwd: REPO,
    detached: true,
    stdio: ['ignore', log, log, handle as never, 'ipc'],
    env: { ...process.env, TS_NODE_TRANSPILE_ONLY: '1' },
  });
  fs.closeSync(log);
  listener.close();

  const done = await new Promise<Extract<RunnerMessage, { type: 'done' }> | undefined>((resolve) => {
    runner!.on('message', (m: RunnerMessage) => {
      if (m.type === 'line') console.log(`  ${m.text}`);
      else resolve(m);
    });
    runner!.on('exit', () => resolve(undefined));
  });
  if (!done) {
    console.log(`the runner ended${interrupted ? ` after ${interrupted}` : ' without a result'}; its log: ${LOG}`);
    return exitCode(1);
  }
  const rows = [buildRow, ...done.rows];
  console.log(formatSummary({ rows, totals: { answered: done.answeredSeconds, total: (Date.now() - started) / 1000 } }));
  if (done.error) console.error(`\nthe step that failed said:\n${done.error}\n(full log: ${LOG})`);
  if (done.kept) {
    if (runner.connected) runner.disconnect();
    runner.unref();
    const serves = RUNTIMES.find((r) => r.name === done.kept!.runtime)?.serves.able;
    console.log(
      [
        `\nThe cluster keeps running (runner pid ${done.kept.pid}, chart ociType ${done.kept.runtime}). From this shell:\n`,
        `  ${exportLine(done.kept.kubeconfig)}`,
        `  export PATH=${kubernetesBin('newest')}:$PATH   # kubectl ${pinnedVersion('K8S_VERSION')}, the cluster's own (kubectl supports one minor release either side)`,
        '  kubectl get nodes',
        ...(serves ? ['  kubectl port-forward service/wasm-http 8080:80   # then: curl http://127.0.0.1:8080/'] : []),
        ...(serves && opts.knative ? [`  kubectl -n ${KNATIVE_DEMO_NAMESPACE} get ksvc,revisions   # README's Knative Service (no ingress: its URL does not answer)`] : []),
        '\nRemove it with: npm run demo -- down',
      ].join('\n'),
    );
    return 0;
  }
  return exitCode(done.ok ? 0 : 1);
}

async function main(argv: readonly string[]): Promise<number> {
  if (argv[0] === RUNNER_FLAG) {
    const listener = net.createServer();
    await new Promise<void>((resolve) => listener.listen({ fd: 3 }, resolve));
    // Loaded only here: it needs what the build made.
    const { runDemo } = await import('./run');
    await runDemo(JSON.parse(argv[1]) as RunnerOptions, listener);
    return -1;
  }
  try {
    const cmd = parseArgs(argv);
    requireRoot();
    return cmd.command === 'down' ? await down() : await run(cmd);
  } catch (error) {
    if (error instanceof BadInput || error instanceof Refusal) {
      console.error(`npm run demo: ${error.message}`);
      return error instanceof BadInput ? 2 : 1;
    }
    throw error;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (error) => {
    console.error(`npm run demo: ${error instanceof Error ? error.stack : String(error)}`);
    process.exit(1);
  },
);
