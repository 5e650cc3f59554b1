/**
 * What the end-to-end tests' runtime daemons (containerd, CRI-O) share: one long-running child process logging
 * to a file, started until a readiness probe answers, stopped with SIGTERM then SIGKILL; and the clean-up of
 * what such a daemon leaves (its helper processes, mounts, base directory and host-side directories).
 */
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { describe as describeRun, exec, mounts, sleep } from '../../../demo/cluster/process';

export class DaemonProcess {
  private child?: ChildProcess;
  private exited?: Promise<void>;
  private exitInfo?: string;
  /** How long each successful start took, in ms. */
  readonly starts: number[] = [];

  constructor(
    /** For messages, e.g. "crio v1.36.3". */
    readonly name: string,
    readonly argv: readonly string[],
    readonly logFile: string,
    readonly cwd: string,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  /** Starts the process and resolves once `ready()` is true; throws with the log if it exits or times out first. */
  async start(ready: () => Promise<boolean>, timeoutMs: number): Promise<void> {
    if (this.running) throw new Error(`${this.name} is already running`);
    const started = Date.now();
    const logFd = openSync(this.logFile, 'a');
    this.exitInfo = undefined;
    const child = spawn(this.argv[0], this.argv.slice(1), { stdio: ['ignore', logFd, logFd], cwd: this.cwd });
    closeSync(logFd);
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitInfo = `exited with ${code === null ? `signal ${signal}` : `code ${code}`}`;
        resolve();
      });
      child.once('error', (e) => {
        this.exitInfo = `could not start: ${e.message}`;
        resolve();
      });
    });
    while (Date.now() - started < timeoutMs) {
      if (this.exitInfo !== undefined) throw new Error(`${this.name} ${this.exitInfo} during start-up; its log:\n${this.logTail()}`);
      if (await ready()) {
        this.starts.push(Date.now() - started);
        return;
      }
      await sleep(100);
    }
    throw new Error(`${this.name} was not ready within ${timeoutMs} ms; its log:\n${this.logTail()}`);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  async stop(graceMs: number): Promise<void> {
    const child = this.child;
    if (!child || this.exitInfo !== undefined) return;
    child.kill('SIGTERM');
    const timer = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
    if ((await Promise.race([this.exited, timer])) === 'timeout') {
      child.kill('SIGKILL');
      await this.exited;
    }
    this.child = undefined;
  }

  /** The last lines of the log, for failure messages. */
  logTail(lines = 60): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** Whether a unix socket at `path` accepts a connection. */
export function socketAnswers(path: string): Promise<boolean> {
  if (!existsSync(path)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Unmounts everything mounted at or below one of `dirs`, latest first (lazily when busy); returns what failed. */
export function unmountUnder(dirs: readonly string[]): string[] {
  const problems: string[] = [];
  const ours = (p: string): boolean => dirs.some((d) => p === d || p.startsWith(d + '/'));
  const mounted = mounts()
    .map((m) => m.mountPoint)
    .filter(ours)
    .reverse();
  for (const mp of mounted) {
    const r = exec('umount', [mp]);
    if (r.code !== 0 && exec('umount', ['-l', mp]).code !== 0) problems.push(`unmounting ${mp}: ${describeRun(r)}`);
  }
  return problems;
}

/**
 * Removes those of `dirs` (in order) that are empty now and were not in `preexisting`. Returns the new ones
 * left because something is still in them (another user's entry, or state the test failed to clean).
 */
export function removeNewEmptyDirs(dirs: readonly string[], preexisting: ReadonlySet<string>): string[] {
  const left: string[] = [];
  for (const dir of dirs) {
    if (preexisting.has(dir) || !existsSync(dir)) continue;
    try {
      const entries = readdirSync(dir);
      if (entries.length === 0) rmdirSync(dir);
      else left.push(`${dir} (${entries.join(', ')})`);
    } catch (e) {
      left.push(`${dir} (${String(e)})`);
    }
  }
  return left;
}

/** Pids of the processes whose command line (and pid) `matches`; processes that go meanwhile are skipped. */
export function processesMatching(matches: (argv: readonly string[], pid: number) => boolean): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (matches(readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0'), Number(entry))) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}

/** A test daemon to tear down: how to stop it, its helper processes (shims, conmon), what it mounts under. */
export interface DaemonLeftovers {
  readonly name: string;
  readonly stop: () => Promise<void>;
  readonly helper: string;
  readonly helperPids: () => number[];
  readonly mountRoots: readonly string[];
  readonly base: string;
}

/**
 * Stops the daemon, kills its helpers still running, unmounts what is mounted under its roots (deepest / latest
 * first) and removes its base directory. Never throws; returns what it did not manage.
 */
export async function tearDownDaemon(d: DaemonLeftovers): Promise<string[]> {
  const problems: string[] = [];
  try {
    await d.stop();
  } catch (e) {
    problems.push(`stopping ${d.name}: ${String(e)}`);
  }
  for (const pid of d.helperPids()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      problems.push(`killing ${d.helper} ${pid}: ${String(e)}`);
    }
  }
  // Give killed helpers' children (container processes in their own pid namespaces) a moment to go.
  if (d.helperPids().length > 0) await sleep(500);
  problems.push(...unmountUnder(d.mountRoots));
  try {
    rmSync(d.base, { recursive: true, force: true });
  } catch (e) {
    problems.push(`removing ${d.base}: ${String(e)}`);
  }
  return problems;
}
