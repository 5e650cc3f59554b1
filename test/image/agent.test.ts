/**
 * The installer pod's long-running process, the static knawd-agent as the image ships it (extracted from the
 * built image's layer, runtime-artifacts/agent/knawd-agent.c): the readiness probe's answer, running the
 * installer (here: a shell script that records how it was called) with the readiness marker's path, the
 * periodic drift-check runs, SIGTERM forwarded to a running installer and answered at once while idle, the
 * installer's failure passed on, and what it costs while it idles (resident memory, CPU time from /proc).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_PATH, DRIFT_CHECK_FLAG } from '../../lib/catalog';
import { builtImage } from '../../demo/cluster/images/built-image';

jest.setTimeout(120_000);

let agent: string;
let dir: string;

beforeAll(() => {
  agent = join(builtImage().installers['crun-wasmtime'].rootfs, AGENT_PATH);
  dir = mkdtempSync(join(tmpdir(), 'knawd-agent-'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Running {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exit: Promise<number>;
}

function start(args: readonly string[]): Running {
  const child = spawn(agent, [...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString('utf8')));
  const exit = new Promise<number>((resolve) => child.on('close', (code, signal) => resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : 15))));
  return { child, output: () => output, exit };
}

/** A fake installer: appends its arguments and KNAWD_READY_FILE to `calls`, then runs `then` (shell). */
function installer(name: string, then = 'exit 0'): { script: string; calls: () => string[] } {
  const calls = join(dir, `${name}.calls`);
  const script = join(dir, `${name}.sh`);
  writeFileSync(script, `#!/bin/sh\necho "$* ready=$KNAWD_READY_FILE" >> ${calls}\n${then}\n`, { mode: 0o755 });
  return { script, calls: () => (existsSync(calls) ? readFileSync(calls, 'utf8').trim().split('\n') : []) };
}

async function until(what: string, check: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const logLines = (r: Running): Array<{ level: string; msg: string; component: string }> =>
  r.output().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));

it('is static: nothing of the image (which has a glibc for Node.js only) or the host is loaded', () => {
  const headers = execFileSync('readelf', ['-lW', agent], { encoding: 'utf8' });
  expect(headers).not.toMatch(/Requesting program interpreter/);
  expect(execFileSync('readelf', ['-dW', agent], { encoding: 'utf8' })).not.toMatch(/\(NEEDED\)/);
});

it('ready FILE: 0 while the marker exists, 1 while it does not (the readiness probe)', () => {
  const marker = join(dir, 'probe-marker');
  const probe = (): number => {
    try {
      execFileSync(agent, ['ready', marker]);
      return 0;
    } catch (error) {
      return (error as { status: number }).status;
    }
  };
  expect(probe()).toBe(1);
  writeFileSync(marker, 'installed\n');
  expect(probe()).toBe(0);
});

it('run: removes a stale marker, runs the installer with the marker path, re-runs it with --drift-check every N s, and stops at once on SIGTERM while idle', async () => {
  const marker = join(dir, 'stale-marker');
  writeFileSync(marker, 'left by an earlier container of this pod\n');
  const fake = installer('periodic', `test -e ${marker} && echo "marker still there" >> ${join(dir, 'periodic.calls')}; exit 0`);
  const r = start(['run', '--ready-file', marker, '--check-every', '1', '--', fake.script, 'install']);
  await until('three runs', () => fake.calls().length >= 3);
  expect(fake.calls().slice(0, 3)).toEqual([`install ready=${marker}`, `install ${DRIFT_CHECK_FLAG} ready=${marker}`, `install ${DRIFT_CHECK_FLAG} ready=${marker}`]);
  const stoppedAt = Date.now();
  r.child.kill('SIGTERM');
  expect(await r.exit).toBe(0);
  expect(Date.now() - stoppedAt).toBeLessThan(1000);
  expect(logLines(r).map((l) => l.msg)).toContain('SIGTERM while idle: stopping; the node is left as it is');
  expect(logLines(r).every((l) => l.component === 'knawd-agent')).toBe(true);
});

it('SIGTERM while the installer runs is passed on to it, and the agent ends with its status once it ended', async () => {
  const fake = installer('busy', `trap 'echo got-term >> ${join(dir, 'busy.calls')}; exit 7' TERM; sleep 30 </dev/null >/dev/null 2>&1 & wait`);
  const r = start(['run', '--check-every', '300', '--', fake.script, 'install']);
  await until('the installer started', () => fake.calls().length === 1);
  await new Promise((resolve) => setTimeout(resolve, 200));
  r.child.kill('SIGTERM');
  expect(await r.exit).toBe(7);
  expect(fake.calls()).toEqual(['install ready=', 'got-term']);
  expect(logLines(r).map((l) => l.msg)).toEqual([expect.stringMatching(/^SIGTERM: passing it on to the running installer \(pid \d+\) and waiting for it$/), 'the installer ended (exit 7) after SIGTERM; stopping']);
});

it("an installer that fails ends the agent with the installer's status (the kubelet restarts the container)", async () => {
  const first = start(['run', '--', installer('failing', 'exit 3').script, 'install']);
  expect(await first.exit).toBe(3);
  // A failing drift check likewise.
  const fake = installer('failing-check', `case "$*" in *${DRIFT_CHECK_FLAG}*) exit 4;; esac; exit 0`);
  const later = start(['run', '--check-every', '1', '--', fake.script, 'install']);
  expect(await later.exit).toBe(4);
  expect(fake.calls()).toEqual(['install ready=', `install ${DRIFT_CHECK_FLAG} ready=`]);
});

it.each<[string, string[], RegExp]>([
  ['no command', ['run', '--ready-file', '/x'], /no command given after --/],
  ['a relative marker', ['run', '--ready-file', 'x', '--', '/bin/true'], /--ready-file takes an absolute path/],
  ['a bad interval', ['run', '--check-every', 'soon', '--', '/bin/true'], /--check-every takes a whole number of seconds from 0 \(never\) to 86400/],
  ['an unknown command', ['serve'], /the command is ready or run/],
])('refuses %s with exit 2 and one line saying what is accepted', async (_what, args, message) => {
  const r = start(args);
  expect(await r.exit).toBe(2);
  expect(r.output().split('\n')[0]).toMatch(message);
});

it('idle, it costs next to nothing: well under 1 MiB resident, no CPU time over 3 s', async () => {
  const r = start(['run', '--check-every', '0', '--', installer('idle').script, 'install']);
  await until('idle', () => r.output().includes('idle until SIGTERM'));
  const stat = (): { rssKiB: number; cpuTicks: number } => {
    const status = readFileSync(`/proc/${r.child.pid}/status`, 'utf8');
    const fields = readFileSync(`/proc/${r.child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return { rssKiB: Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) };
  };
  const before = stat();
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = stat();
  r.child.kill('SIGTERM');
  expect(await r.exit).toBe(0);
  console.log(`knawd-agent idle: ${after.rssKiB} KiB resident, ${after.cpuTicks - before.cpuTicks} CPU ticks in 3 s`);
  expect(after.rssKiB).toBeLessThan(1024);
  expect(after.cpuTicks - before.cpuTicks).toBe(0);
});
