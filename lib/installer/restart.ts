/**
 * Commands run in the host's mount namespace (PID 1's, reachable because the DaemonSet shares the host PID
 * namespace): restarting the container runtime and SELinux labelling. All of it goes through a small
 * {@link CommandRunner} so tests can record the exact command lines.
 */
import { spawn } from 'child_process';
import { InstallerError, oneLine } from './errors';

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

/** Upper bound for one `systemctl` call; a hanging restart is an error, not a hang of the installer. */
export const SYSTEMCTL_TIMEOUT_MS = 120_000;

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

/** Records every command and answers from a table of canned results (tests, dry runs). */
export class RecordingRunner implements CommandRunner {
  readonly calls: string[][] = [];

  constructor(private readonly answer: (argv: readonly string[]) => Partial<CommandResult> | undefined = () => undefined) {}

  async run(argv: readonly string[]): Promise<CommandResult> {
    this.calls.push([...argv]);
    return { code: 0, stdout: '', stderr: '', ...this.answer(argv) };
  }
}

/**
 * The unit to restart: the only one listed, or the first of several (k3s vs k3s-agent) that exists on the
 * node, asked with `systemctl cat`.
 */
export async function detectUnit(runner: CommandRunner, units: readonly string[]): Promise<string> {
  if (units.length === 1) return units[0];
  for (const unit of units) {
    const result = await runner.run([...IN_HOST, 'systemctl', 'cat', unit], SYSTEMCTL_TIMEOUT_MS);
    if (result.code === 0) return unit;
  }
  throw new InstallerError(
    `none of the systemd units ${units.join(', ')} exists on the node`,
    'check that the --target matches this node (run `systemctl list-unit-files` on it)',
  );
}

export async function restartUnit(runner: CommandRunner, unit: string): Promise<void> {
  const result = await runner.run([...IN_HOST, 'systemctl', 'restart', unit], SYSTEMCTL_TIMEOUT_MS);
  if (result.code !== 0) {
    const detail = oneLine(result.stderr).slice(0, 300);
    throw new InstallerError(
      `systemctl restart ${unit} failed (exit ${result.code})${detail ? `: ${detail}` : ''}`,
      `look at \`journalctl -u ${unit}\` on the node`,
    );
  }
}

/**
 * SELinux: the file label of the host's runc (crun on hosts without runc), found on the host's PATH, so our
 * binaries run in the same domain as the runtime the host already trusts.
 */
export async function findReferenceBinary(runner: CommandRunner): Promise<string> {
  const result = await runner.run([...IN_HOST, 'sh', '-c', 'command -v runc || command -v crun'], 30_000);
  const found = result.stdout.trim().split('\n')[0];
  if (result.code !== 0 || !found.startsWith('/')) {
    throw new InstallerError(
      'SELinux is enabled on the node but neither runc nor crun was found on its PATH to copy the file label from',
      'install the distribution\'s runc (or label the files by hand: chcon -t container_runtime_exec_t <prefix>/bin/* <prefix>/libexec/*)',
    );
  }
  return found;
}

export async function labelLike(runner: CommandRunner, reference: string, hostPaths: readonly string[]): Promise<void> {
  for (const file of hostPaths) {
    const result = await runner.run([...IN_HOST, 'chcon', `--reference=${reference}`, file], 30_000);
    if (result.code !== 0) {
      throw new InstallerError(`chcon --reference=${reference} ${file} failed: ${oneLine(result.stderr).slice(0, 300)}`, 'check SELinux on the node (`getenforce`, `ls -Z`)');
    }
  }
}

/** Gives rewritten config files the label the policy wants for their path (a rename carries the temp file's). */
export async function restoreLabels(runner: CommandRunner, hostPaths: readonly string[]): Promise<void> {
  if (hostPaths.length === 0) return;
  const result = await runner.run([...IN_HOST, 'restorecon', ...hostPaths], 30_000);
  if (result.code !== 0) {
    throw new InstallerError(`restorecon ${hostPaths.join(' ')} failed: ${oneLine(result.stderr).slice(0, 300)}`, 'check SELinux on the node (`ls -Z` on the file)');
  }
}
