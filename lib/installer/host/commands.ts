/**
 * Commands run in the host's mount namespace (PID 1's, reachable because the DaemonSet shares the host PID
 * namespace): restarting the container runtime, asking its own binary to load a config, SELinux labelling.
 * All of it goes through a small {@link CommandRunner} so tests can record the exact command lines.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

export interface CommandResult {
  /** Exit status; -1 when the command could not be started or was killed at its timeout. */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CommandRunner {
  /** Runs argv (no shell), bounded by timeoutMs. */
  run(argv: readonly string[], timeoutMs: number): Promise<CommandResult>;
}

/** Prefix that runs a command in the host's mount namespace. */
export const IN_HOST = ['nsenter', '-t', '1', '-m', '--'] as const;

/** Runs commands as child processes. */
export class ChildProcessRunner implements CommandRunner {
  run(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let settled = false;
      const finish = (result: CommandResult): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish({ code: -1, stdout, stderr: `${stderr}timed out after ${Math.round(timeoutMs / 1000)} s` });
      }, timeoutMs);
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
      child.on('error', (error) => finish({ code: -1, stdout, stderr: error.message }));
      child.on('close', (code) => finish({ code: code ?? -1, stdout, stderr }));
    });
  }
}

/**
 * Runs host commands (`nsenter -t 1 -m -- <argv>`) as `chroot <node root> <argv>` instead: for a node root
 * that is not the running host's (a mounted disk image, a test's temp root), so that the node's own binaries
 * resolve every path in it. Where the node root has a /proc directory, a proc file system is mounted there
 * for the command only (in a mount namespace of its own: runtimes read /proc/sys). Other commands run unchanged.
 */
export class ChrootRunner implements CommandRunner {
  constructor(
    private readonly nodeRoot: string,
    private readonly inner: CommandRunner = new ChildProcessRunner(),
  ) {}

  run(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
    if (!IN_HOST.every((part, i) => argv[i] === part)) return this.inner.run(argv, timeoutMs);
    const proc = path.join(this.nodeRoot, 'proc');
    const withProc = fs.statSync(proc, { throwIfNoEntry: false })?.isDirectory() ? ['unshare', `--mount-proc=${proc}`] : [];
    return this.inner.run([...withProc, 'chroot', this.nodeRoot, ...argv.slice(IN_HOST.length)], timeoutMs);
  }
}

/** Records every command and answers from a table of canned results (tests, dry runs). */
export class RecordingRunner implements CommandRunner {
  readonly calls: string[][] = [];

  constructor(private readonly answer: (argv: readonly string[]) => Partial<CommandResult> | undefined = () => undefined) {}

  async run(argv: readonly string[]): Promise<CommandResult> {
    this.calls.push([...argv]);
    return { code: 0, stdout: '', stderr: '', ...this.answer(argv) };
  }
}
