/**
 * SIGTERM / SIGINT during install and remove (host/signals.ts). In process: a stop requested at every effect
 * call of a run (each write before and after, each host command, the socket checks, the CRI Status call) ends
 * the run at the next step boundary — or lets it finish when none is left — with a line saying what the node
 * is left as, and the next install and remove converge exactly as after an undisturbed run. As a process (the
 * bundled CLI): a real SIGTERM during the wait for the node lock exits at once with nothing changed; one during
 * a restart that hangs past --grace-seconds exits at the bound, and the next run completes. The worst case with
 * a real containerd restart is measured in test/e2e/sigterm.test.ts.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { status } from '../../lib/installer/commands/status';
import { lockNode } from '../../lib/installer/host/lock';
import { NOTHING_CHANGED, Stopped, StopRequest } from '../../lib/installer/host/signals';
import { install, remove } from '../../lib/installer/installer';
import { MemoryLogger } from '../../lib/installer/log';
import { installHostBinary } from '../support/chroot-runner';
import { bundleInstaller, REPO } from '../support/tools';
import { SCENARIOS, setUp } from './scenarios';
import { diffKeys, effectsFor, makeArtifacts, settingsFor, snapshot, tempDir, TestEffects } from './support';

describe('StopRequest', () => {
  test('a checkpoint passes until a stop is asked for, then stops saying what the node is left as', () => {
    const stop = new StopRequest();
    stop.checkpoint('writing', NOTHING_CHANGED);
    expect(stop.step).toBe('writing');
    stop.request('SIGTERM');
    stop.request('SIGINT');
    expect(() => stop.checkpoint('restarting containerd', 'the files are installed')).toThrow('stopped by SIGTERM before restarting containerd: the files are installed');
    try {
      stop.checkpoint('x', 'y');
    } catch (error) {
      expect(error).toBeInstanceOf(Stopped);
      expect((error as Stopped).exitCode).toBe(143);
    }
  });

  test('a wait that changes nothing is given up at the stop; one that became busy is not', async () => {
    const stop = new StopRequest();
    stop.enter('waiting for the node lock');
    let busy = false;
    const never = new Promise<void>(() => undefined);
    const waiting = stop.unlessStopped(never, NOTHING_CHANGED, () => !busy);
    const working = stop.unlessStopped(new Promise<string>((resolve) => setTimeout(() => resolve('done'), 50)), NOTHING_CHANGED, () => {
      busy = true;
      return false;
    });
    stop.request('SIGINT');
    await expect(waiting).rejects.toThrow('stopped by SIGINT while waiting for the node lock: nothing on the host was changed');
    await expect(working).resolves.toBe('done');
    await expect(waiting.catch((e: Stopped) => e.exitCode)).resolves.toBe(130);
  });
});

/** The effects of a run where a stop is requested at the `at`-th effect call (0-based); counts the calls. */
function stoppingAt(root: string, scenario: (typeof SCENARIOS)[number], at: number): { effects: TestEffects; calls: () => number; stop: StopRequest } {
  const stop = new StopRequest();
  let calls = 0;
  const tick = (): void => {
    if (calls++ === at) stop.request('SIGTERM');
  };
  const base = effectsFor(root, {
    stop,
    hook: () => tick(),
    answer: (argv) => {
      tick();
      return scenario.answer?.(argv);
    },
  });
  const effects: TestEffects = {
    ...base,
    probeSocket: (p) => {
      tick();
      return base.probeSocket(p);
    },
    waitForSocket: (p, ms) => {
      tick();
      return base.waitForSocket(p, ms);
    },
    readCriStatus: (p, ms) => {
      tick();
      return base.readCriStatus(p, ms);
    },
  };
  return { effects, calls: () => calls, stop };
}

describe.each([SCENARIOS[0], SCENARIOS.find((s) => s.target === 'crio') as (typeof SCENARIOS)[number]])('a stop at every effect call: $name', (scenario) => {
  const artifacts = makeArtifacts(scenario.target);
  const args = (command: string, root: string): string[] => [command, '--node-root', root, '--target', scenario.target, '--runtime', scenario.runtime, '--artifacts', artifacts];
  const reference = setUp(scenario);
  const original = snapshot(reference);
  let installed: Record<string, string>;
  let installCalls = 0;
  let removeCalls = 0;

  beforeAll(async () => {
    const counting = stoppingAt(reference, scenario, -1);
    await install(settingsFor(args('install', reference)), counting.effects);
    installed = snapshot(reference);
    installCalls = counting.calls();
    const removing = stoppingAt(reference, scenario, -1);
    await remove(settingsFor(args('remove', reference)), removing.effects);
    removeCalls = removing.calls();
    expect(snapshot(reference)).toEqual(original);
  });

  const settle = async (work: Promise<unknown>): Promise<'completed' | Stopped> => {
    try {
      await work;
      return 'completed';
    } catch (error) {
      if (error instanceof Stopped) return error;
      throw error;
    }
  };

  test('install: stopped at the next step boundary (or finished), saying so; then install and remove converge', async () => {
    expect(installCalls).toBeGreaterThan(10);
    const outcomes = new Set<string>();
    for (let at = 0; at < installCalls; at++) {
      const root = setUp(scenario);
      const run = stoppingAt(root, scenario, at);
      const outcome = await settle(install(settingsFor(args('install', root)), run.effects));
      const tree = snapshot(root);
      if (outcome === 'completed') {
        expect(tree).toEqual(installed);
      } else {
        expect(outcome.exitCode).toBe(143);
        expect(outcome.message).toMatch(/^stopped by SIGTERM (before|while) [a-z ]+: /);
        if (outcome.message.includes(NOTHING_CHANGED)) expect(tree).toEqual(original);
        // What status says is what the node is: not installed, or an install that did not finish.
        const st = status(settingsFor(args('status', root)), run.effects.fs);
        if (JSON.stringify(tree) === JSON.stringify(original)) expect(st.state).toBe('not-installed');
        else expect(st.drift.join(';')).toMatch(/did not finish/);
      }
      outcomes.add(outcome === 'completed' ? 'completed' : outcome.message.replace(/: .*/, ''));
      await install(settingsFor(args('install', root)), effectsFor(root, { answer: scenario.answer }));
      const again = snapshot(root);
      if (JSON.stringify(again) !== JSON.stringify(installed)) throw new Error(`stop at call ${at}, then install: ${diffKeys(installed, again)}`);
      await remove(settingsFor(args('remove', root)), effectsFor(root, { answer: scenario.answer }));
      expect(snapshot(root)).toEqual(original);
    }
    expect([...outcomes]).toEqual(
      expect.arrayContaining([
        ...(scenario.detects ? ['stopped by SIGTERM while reading the node'] : []),
        'stopped by SIGTERM before labelling the node pending',
        `stopped by SIGTERM before restarting ${scenario.target === 'crio' ? 'crio' : 'containerd'}`,
        'completed',
      ]),
    );
  });

  test('remove: stopped before it touches the host, or the revert finished; then remove converges', async () => {
    expect(removeCalls).toBeGreaterThan(5);
    for (let at = 0; at < removeCalls; at++) {
      const root = setUp(scenario);
      await install(settingsFor(args('install', root)), effectsFor(root, { answer: scenario.answer }));
      const run = stoppingAt(root, scenario, at);
      const outcome = await settle(remove(settingsFor(args('remove', root)), run.effects));
      if (outcome === 'completed') expect(snapshot(root)).toEqual(original);
      else {
        expect(outcome.message).toMatch(/^stopped by SIGTERM (before|while) [a-z ]+: nothing on the host was changed/);
        expect(snapshot(root)).toEqual(installed);
      }
      await remove(settingsFor(args('remove', root)), effectsFor(root, { answer: scenario.answer }));
      expect(snapshot(root)).toEqual(original);
    }
  });
});

// ---------------------------------------------------------------------------------------------- the CLI process

const BUNDLE = path.join(tempDir('knawd-bundle-'), 'knawd-installer.js');
beforeAll(() => bundleInstaller(BUNDLE));

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** From the signal to the exit. */
  readonly afterSignalMs: number;
}

/** Starts the CLI, sends `signal` once `ready(stdout)` holds, resolves at its exit. */
function signalled(args: string[], signal: NodeJS.Signals, ready: (stdout: string) => boolean): Promise<Exit> {
  const child = spawn(process.execPath, [BUNDLE, ...args], { cwd: REPO, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
  let stdout = '';
  let stderr = '';
  let sentAt = 0;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no exit; stdout ${stdout}; stderr ${stderr}`)), 60_000);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sentAt && ready(stdout)) {
        sentAt = Date.now();
        child.kill(signal);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, afterSignalMs: sentAt ? Date.now() - sentAt : -1 });
    });
  });
}

describe('the CLI under a real signal', () => {
  const artifacts = makeArtifacts('ubuntu_22_04');

  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s while waiting for the node lock: exits at once, one line, nothing changed', async (signal, code) => {
    const root = setUp(SCENARIOS[0]);
    const before = snapshot(root);
    const held = await lockNode(path.join(root, 'run/knawd-installer.lock'), 1, new MemoryLogger());
    try {
      const exit = await signalled(['install', '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts], signal, (out) => out.includes('holds /run/knawd-installer.lock'));
      expect(exit.code).toBe(code);
      expect(exit.afterSignalMs).toBeLessThan(2000);
      expect(exit.stderr.trim().split('\n')).toEqual([`knawd-installer install: error: stopped by ${signal} while waiting for the node lock: nothing on the host was changed (fix: run the same command again (the next pod of the DaemonSet does): install resumes, remove reverts)`]);
    } finally {
      await held.release();
    }
    expect(snapshot(root)).toEqual(before);
  });

  test('SIGTERM during a restart that hangs past --grace-seconds: exits at the bound saying where; the next install completes', async () => {
    const root = setUp(SCENARIOS[0]);
    // The node's systemctl (chroot: --host-exec chroot) hangs (5 s, well past the 1 s grace; it then ends by itself); busybox is its shell.
    installHostBinary(root, '/bin/busybox', '/bin/busybox');
    fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
    fs.writeFileSync(path.join(root, 'usr/bin/systemctl'), '#!/bin/busybox sh\nexec /bin/busybox sleep 5\n', { mode: 0o755 });
    // No runtime answers here: --start-stopped-runtime makes the install restart it all the same.
    const args = ['install', '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts, '--host-exec', 'chroot', '--grace-seconds', '1', '--start-stopped-runtime'];
    const exit = await signalled(args, 'SIGTERM', (out) => out.includes('"msg":"restarting containerd"'));
    expect(exit.code).toBe(143);
    expect(exit.afterSignalMs).toBeGreaterThanOrEqual(900);
    expect(exit.afterSignalMs).toBeLessThan(5000);
    expect(exit.stderr.trim().split('\n')).toEqual([
      'knawd-installer install: error: stopped (SIGTERM, and the 1 s allowed after it ran out) while restarting containerd; the node is as after a crash at that point, every write being atomic and recorded first (fix: run the same command again (the next pod of the DaemonSet does): install resumes, remove reverts)',
    ]);
    // The lock went with the process; the next run (systemctl answered) restarts and records the install.
    fs.rmSync(path.join(root, 'usr/bin/systemctl'));
    const next = effectsFor(root);
    expect(await install(settingsFor(args.slice(0, 9)), next)).toMatchObject({ restarts: 1, restartPending: false });
    expect(status(settingsFor(['status', '--node-root', root, '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', '--artifacts', artifacts]), next.fs)).toMatchObject({ state: 'installed' });
  });
});
