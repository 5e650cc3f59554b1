/**
 * `npm run demo` (issue 25) as a user runs it: its refusals (one line, non-zero exit, nothing changed), one run
 * end to end on warm caches, with `--knative` (its summary: every step ok, Knative Serving up, the WASI test Job
 * under each shipped engine, the WASM HTTP service's answer from WasmEdge as a Deployment and as README's Knative
 * Service; then nothing of the run left on the machine), one stopped by SIGTERM in the
 * middle of a step (torn down, exit 143), and a kept cluster (`--keep`: kubectl of this process's own namespace
 * reaches it on loopback, and its WASM service through `kubectl port-forward`; a second `--keep` changes nothing;
 * `down` removes it all).
 */
import { execFileSync, spawn } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { WASM_SERVICE_ANSWER } from '../../lib/catalog/service-image';
import { NODE_NAME } from '../../demo/cluster/cluster';
import { tool } from '../../demo/cluster/control-plane';
import { WASM_LINE } from '../../demo/cluster/images/test-images';
import { REPO } from '../../demo/cluster/process';
import { iptablesRules, leftBehind, parseFootprint } from '../../demo/leftovers';
import { engineOrder } from '../../demo/options';
import { DEMO_DIR, KEPT_STATE, KUBECONFIG } from '../../demo/state';
import { parseSummary } from '../../demo/summary';
import { runDemoCommand } from '../support/demo';

jest.setTimeout(40 * 60_000);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** What the demo may change in the checkout: its build dir (ignored) only. Tracked and untracked files, and build/demo's entries. */
function checkoutState(): { git: string; demoDir: Record<string, number> } {
  const git = execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: REPO, encoding: 'utf8' });
  const demoDir: Record<string, number> = {};
  if (fs.existsSync(DEMO_DIR)) for (const e of fs.readdirSync(DEMO_DIR)) demoDir[e] = fs.statSync(path.join(DEMO_DIR, e)).mtimeMs;
  return { git, demoDir };
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

describe('npm run demo refuses, in one line, changing nothing', () => {
  test('not root (run with a dropped uid): exit 1, says it needs root', async () => {
    const before = checkoutState();
    const r = await runDemoCommand([], { argv0: ['setpriv', '--reuid', '65534', '--regid', '65534', '--clear-groups', '--'], env: { PATH: process.env.PATH, HOME: os.tmpdir() } });
    expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
      code: 1,
      stdout: '',
      stderr: 'npm run demo: needs root: it starts a throwaway node on this machine (namespaces, mounts, cgroups); run it as root\n',
    });
    expect(checkoutState()).toEqual(before);
  });

  test('a port it needs is taken: exit 1, names the port and --port', async () => {
    const taken = net.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as net.AddressInfo).port;
    try {
      const before = checkoutState();
      const r = await runDemoCommand(['--port', String(port)]);
      expect({ code: r.code, stdout: r.stdout, stderr: r.stderr }).toEqual({
        code: 1,
        stdout: '',
        stderr: `npm run demo: port 127.0.0.1:${port} is taken: the demo forwards its API server there; free it or pick another with --port <n>\n`,
      });
      expect(checkoutState()).toEqual(before);
    } finally {
      taken.close();
    }
  });

  test('bad input: an ociType it does not know, an unknown argument (exit 2)', async () => {
    const r = await runDemoCommand(['--runtime', 'crun-wasmer']);
    expect([r.code, r.stderr.split('\n').length, r.stderr]).toEqual([2, 2, expect.stringMatching(/^npm run demo: --runtime crun-wasmer: unknown ociType; accepted: crun-wasmedge, crun-wasmtime, crun-wasm-nodejs/)]);
    const u = await runDemoCommand(['--frobnicate']);
    expect([u.code, u.stderr]).toEqual([2, expect.stringMatching(/^npm run demo: unknown argument --frobnicate; usage: /)]);
  });
});

describe('npm run demo, end to end on warm caches', () => {
  test('--knative: every step ok: Knative Serving up, WASI test Job under each shipped engine, the WASM service answers as a Deployment and as a Knative Service; nothing left behind', async () => {
    const rulesBefore = iptablesRules();
    const before = checkoutState().git;
    const port = await freePort();
    const r = await runDemoCommand(['--knative', '--port', String(port)]);
    const output = `${r.stdout}\n--- stderr:\n${r.stderr}`;
    if (r.code !== 0) throw new Error(`npm run demo exited ${r.code ?? r.signal}:\n${output}`);
    console.log(`npm run demo (warm) took ${r.seconds.toFixed(1)} s:\n${r.stdout.slice(r.stdout.indexOf('npm run demo: summary'))}`);

    const { rows, totals } = parseSummary(r.stdout);
    expect(rows.filter((row) => !row.result.startsWith('ok: '))).toEqual([]);
    expect(rows[0]).toMatchObject({ step: 'build what is missing (tools/install-tools.sh demo-knative)', result: 'ok: everything cached' });
    expect(rows.find((row) => row.step.startsWith('cluster up'))?.result).toMatch(new RegExp(`^ok: node ${NODE_NAME} Ready \\(containerd v2\\.`));
    expect(rows.find((row) => row.step.startsWith("API server on this machine's loopback"))?.result).toBe(`ok: node/${NODE_NAME}`);
    const wasi = rows.filter((row) => row.step === 'WASI test Job (helm test)');
    expect(wasi.map((row) => [row.engine, row.result])).toEqual(engineOrder('crun-wasmedge').map((e) => [e, `ok: Succeeded, printed "${WASM_LINE}"`]));
    const answered = rows.filter((row) => row.step.startsWith('WASM HTTP service answered'));
    expect(answered.map((row) => row.engine)).toEqual(['crun-wasmedge']);
    const m = WASM_SERVICE_ANSWER.exec(answered[0].result.replace(/^ok: /, ''));
    expect(m?.[1]).toBe('WasmEdge');
    expect(m?.[2]).toMatch(/^wasm-http-/);
    expect(rows.find((row) => row.step.startsWith('Knative Serving up'))?.result).toMatch(/^ok: knative\.dev\/serving v\S+: controller, webhook, activator, autoscaler Ready$/);
    expect(rows.find((row) => row.step.startsWith('helm install'))?.result).toMatch(/, Knative wired up \(kubernetes\.podspec-runtimeclassname: enabled\)$/);
    const knativeRows = rows.filter((row) => row.step.startsWith("README's Knative Service Ready") || row.step.startsWith('Knative Service answered'));
    expect(knativeRows.map((row) => row.engine)).toEqual(['crun-wasmedge', 'crun-wasmedge']);
    const k = WASM_SERVICE_ANSWER.exec(knativeRows[1].result.replace(/^ok: /, ''));
    expect(k?.[1]).toBe('WasmEdge');
    // A pod of the README Service's first revision answered: the module, behind queue-proxy.
    expect(k?.[2]).toMatch(/^wasm-http-00001-deployment-/);
    expect(rows.map((row) => row.step).slice(-2)).toEqual(['helm uninstall (node restored byte for byte)', 'teardown (processes, mounts, network namespace, cgroups, iptables, files)']);
    expect(rows[rows.length - 1].result).toBe('ok: nothing left behind');
    expect(totals.answered).toBeGreaterThan(0);
    expect(totals.total).toBeGreaterThanOrEqual(rows.reduce((a, row) => a + row.seconds, 0) - 1);

    // Checked here too, from what the run said it made.
    const footprint = parseFootprint(r.stdout);
    expect(footprint.dirs).toHaveLength(2);
    expect(leftBehind(footprint, rulesBefore)).toEqual([]);
    expect(await portIsFree(port)).toBe(true);
    expect([fs.existsSync(KEPT_STATE), fs.existsSync(KUBECONFIG)]).toEqual([false, false]);
    expect(checkoutState().git).toBe(before);
  });
});

describe('npm run demo, interrupted', () => {
  test('SIGTERM during helm install: the runner tears everything down, exit 143, nothing left behind', async () => {
    const rulesBefore = iptablesRules();
    const port = await freePort();
    let signalled = false;
    const r = await runDemoCommand(['--port', String(port)], {
      argv0: [],
      onOutput: (stdout, signal) => {
        if (signalled || !stdout.includes('→ helm install')) return;
        signalled = true;
        signal('SIGTERM');
      },
    });
    expect(signalled).toBe(true);
    expect([r.code, r.stdout]).toEqual([143, expect.stringContaining('SIGTERM: stopping (the runner tears the cluster down) ...')]);
    expect(leftBehind(parseFootprint(r.stdout), rulesBefore)).toEqual([]);
    expect(await portIsFree(port)).toBe(true);
    expect([fs.existsSync(KEPT_STATE), fs.existsSync(KUBECONFIG)]).toEqual([false, false]);
  });
});

describe('npm run demo -- --keep, a second --keep, down', () => {
  test('the kept cluster answers kubectl on loopback from this shell, its service through port-forward; a second --keep changes nothing; down leaves nothing', async () => {
    const rulesBefore = iptablesRules();
    const port = await freePort();
    const kept = await runDemoCommand(['--keep', '--port', String(port)]);
    try {
      if (kept.code !== 0) throw new Error(`npm run demo -- --keep exited ${kept.code ?? kept.signal}:\n${kept.stdout}\n${kept.stderr}`);
      expect(kept.stdout).toContain(`export KUBECONFIG=${KUBECONFIG}`);
      const state = fs.readFileSync(KEPT_STATE, 'utf8');

      // The kubectl of the cluster's own release (`npm run tools`): a clean machine has none on PATH, and kubectl
      // supports API servers one minor release either side of it only.
      const nodes = execFileSync(tool('kubectl'), ['get', 'nodes', '-o', 'name'], { env: { ...process.env, KUBECONFIG }, encoding: 'utf8', timeout: 60_000 });
      expect(nodes.trim()).toBe(`node/${NODE_NAME}`);
      // The kept service, through kubectl port-forward on this machine's loopback.
      const local = await freePort();
      const forward = spawn(tool('kubectl'), ['port-forward', 'service/wasm-http', `${local}:80`], { env: { ...process.env, KUBECONFIG }, stdio: ['ignore', 'pipe', 'pipe'] });
      try {
        await new Promise<void>((resolve, reject) => {
          forward.stdout.on('data', (d: Buffer) => d.toString().includes('Forwarding from') && resolve());
          forward.on('exit', (code) => reject(new Error(`kubectl port-forward exited ${code}`)));
        });
        const body = await new Promise<string>((resolve, reject) =>
          http.get(`http://127.0.0.1:${local}/`, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve(text.trim()));
          }).on('error', reject),
        );
        expect(WASM_SERVICE_ANSWER.exec(body)?.[1]).toBe('WasmEdge');
      } finally {
        forward.kill();
      }

      const again = await runDemoCommand(['--keep', '--port', String(port)]);
      expect([again.code, again.stdout]).toEqual([0, expect.stringMatching(/^a demo cluster already runs \(runner pid \d+, since .*\); nothing changed/)]);
      expect(fs.readFileSync(KEPT_STATE, 'utf8')).toBe(state);
    } finally {
      const down = await runDemoCommand(['down']);
      expect([down.code, down.stdout]).toEqual([0, expect.stringMatching(/^stopping the kept demo cluster[\s\S]*torn down: nothing left behind\n$/)]);
    }
    expect(leftBehind(parseFootprint(kept.stdout), rulesBefore)).toEqual([]);
    expect(await portIsFree(port)).toBe(true);
    expect([fs.existsSync(KEPT_STATE), fs.existsSync(KUBECONFIG)]).toEqual([false, false]);
  });
});
