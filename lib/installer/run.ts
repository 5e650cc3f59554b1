/**
 * knawd-installer's command runner: parses the command line, builds the real effects (node root, child
 * processes, CRI socket, Kubernetes API), runs the command and turns any error into one JSON log line on
 * stdout plus one human line on stderr — never a stack trace — and a non-zero exit status.
 */
import { parseCommandLine, USAGE } from './cli';
import { readCriStatus } from './runtime/cri-status';
import { waitForSocket } from './runtime/socket';
import { InstallerError, messageOf } from './errors';
import { HostFs } from './host/fs';
import { planCommand } from './commands/plan';
import { Effects, install, remove } from './installer';
import { connectCluster } from './kube/cluster';
import { JsonLogger, LineSink } from './log';
import { ChildProcessRunner, ChrootRunner } from './host/commands';
import { status } from './commands/status';
import { clusterStatus } from './commands/cluster-status';
import { waitRemoved } from './commands/wait-removed';

export interface Io {
  readonly stdout: LineSink;
  readonly stderr: LineSink;
}

export const processIo: Io = {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
};

/** Runs one command; resolves to the exit status. `overrides` replaces real effects (tests). */
export async function run(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: Io = processIo,
  overrides: Partial<Omit<Effects, 'log'>> = {},
): Promise<number> {
  let command = 'knawd-installer';
  let logger = new JsonLogger('info', io.stdout);
  try {
    const parsed = parseCommandLine(argv, env);
    if (parsed.help) {
      io.stdout(USAGE);
      return 0;
    }
    const settings = parsed.settings;
    command = `knawd-installer ${settings.command}`;
    // plan's stdout is the diff; its log lines go to stderr.
    logger = new JsonLogger(settings.logLevel, settings.command === 'plan' ? io.stderr : io.stdout);
    const cluster = 'cluster' in overrides ? overrides.cluster : connectCluster(settings.kubeconfig, env);
    const effects: Effects = {
      fs: overrides.fs ?? new HostFs(settings.nodeRoot),
      runner: overrides.runner ?? (settings.hostExec === 'chroot' ? new ChrootRunner(settings.nodeRoot) : new ChildProcessRunner()),
      waitForSocket: overrides.waitForSocket ?? waitForSocket,
      readCriStatus: overrides.readCriStatus ?? readCriStatus,
      cluster,
      log: logger,
    };
    switch (settings.command) {
      case 'plan': {
        const out = await planCommand(settings, effects);
        io.stdout(out.text.trimEnd());
        return 0;
      }
      case 'install':
        await install(settings, effects);
        return 0;
      case 'remove':
        await remove(settings, effects);
        return 0;
      case 'status': {
        if (settings.cluster) {
          const view = await clusterStatus(cluster);
          view.lines.forEach((line) => io.stdout(line));
          return view.exitCode;
        }
        const report = status(settings, effects.fs);
        io.stdout(JSON.stringify({ level: report.exitCode === 0 ? 'info' : 'warn', msg: `status: ${report.state}`, ...report }));
        return report.exitCode;
      }
      case 'wait-removed':
        await waitRemoved(cluster, logger, { labelSelector: settings.label, timeoutSeconds: settings.timeoutSeconds });
        return 0;
    }
  } catch (error) {
    const known = error instanceof InstallerError;
    const message = messageOf(error);
    const fix = known ? error.fix : 'unexpected error: run the same command again (install resumes, remove reverts) and report this message if it persists';
    logger.error(message, { fix });
    io.stderr(`${command}: error: ${message} (fix: ${fix})`);
    return known ? error.exitCode : 1;
  }
}

/** With --stay: idle until SIGTERM/SIGINT, then exit 0 without touching the node (a rollout is not an uninstall). */
export function stayIdle(log: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => undefined, 1 << 30);
    const stop = (): void => {
      clearInterval(keepAlive);
      resolve();
    };
    // Handlers first, then the line that tells the world we are idle.
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    log(JSON.stringify({ level: 'info', msg: 'done; staying idle until SIGTERM (stopping this pod changes nothing on the node)', time: new Date().toISOString() }));
  });
}
