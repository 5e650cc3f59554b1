/**
 * Small child-process helpers for the end-to-end test: every command's output is kept so that a failure
 * message says what the command printed, and a missing binary fails with what provides it.
 */
import { spawnSync, SpawnSyncOptions } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..');

export interface Result {
  readonly command: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs a command to completion; never throws for a non-zero exit (see {@link must}). */
export function exec(command: string, args: readonly string[], options: SpawnSyncOptions & { timeoutMs?: number } = {}): Result {
  const started = Date.now();
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 64 * 1024 * 1024,
    timeout: options.timeoutMs ?? 120_000,
    ...options,
  });
  const line = [command, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (r.error) {
    return { command: line, code: null, signal: null, stdout: String(r.stdout ?? ''), stderr: `${String(r.stderr ?? '')}\n${r.error.message}`, ms: Date.now() - started };
  }
  return { command: line, code: r.status, signal: r.signal, stdout: String(r.stdout ?? ''), stderr: String(r.stderr ?? ''), ms: Date.now() - started };
}

/** Describes a finished command for an error message. */
export function describe(r: Result): string {
  const status = r.code === null ? `signal ${r.signal ?? '?'} / did not run` : `exit ${r.code}`;
  return `\`${r.command}\` → ${status} after ${r.ms} ms\n--- stdout ---\n${r.stdout.trimEnd()}\n--- stderr ---\n${r.stderr.trimEnd()}`;
}

/** Runs a command and throws, with its whole output, unless it exits 0. */
export function must(command: string, args: readonly string[], options: SpawnSyncOptions & { timeoutMs?: number } = {}): Result {
  const r = exec(command, args, options);
  if (r.code !== 0) throw new Error(`command failed: ${describe(r)}`);
  return r;
}

/** An executable that must exist; the error says what provides it. */
export function requireExecutable(path: string, providedBy: string): string {
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing or not executable (${providedBy}); the end-to-end test cannot run without it`);
  }
  return path;
}

/** A tool that `npm run tools` links into <repo>/.tools/bin. */
export function repoTool(name: string): string {
  return requireExecutable(join(REPO, '.tools', 'bin', name), 'run `npm run tools` (tools/install-tools.sh) to provide it');
}

/** This process's mounts (mount point, fs type), from /proc/self/mountinfo, in mount order. */
export function mounts(): Array<{ mountPoint: string; fsType: string }> {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [left, right] = l.split(' - ');
      const fields = left.split(' ');
      return { mountPoint: unescapeMount(fields[4]), fsType: right.split(' ')[0] };
    });
}

function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A `timed(what, fn)` that runs fn and appends [what, ms] to `timings`, for a test's summary. */
export function timer(timings: Array<[string, number]>): <T>(what: string, fn: () => T | Promise<T>) => Promise<T> {
  return async (what, fn) => {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      timings.push([what, Date.now() - started]);
    }
  };
}
