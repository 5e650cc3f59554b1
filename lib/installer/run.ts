/**
 * knawd-installer's command runner: parses the command line, builds the real effects (node root, child
 * processes, CRI socket, Kubernetes API), runs the command and turns any error into one JSON log line on
 * stdout plus one human line on stderr — never a stack trace — and a non-zero exit status. A file-system fault
 * that reached here unnamed is named (host/errors.ts); only what no mapping knows is an "unexpected error".
 * install and remove run with SIGTERM/SIGINT turned into a stop request (host/signals.ts).
 */
import { parseCommandLine, USAGE } from './cli';
import { listPodSandboxes, readCriStatus } from './runtime/cri-status';
import { socketAnswers, waitForSocket } from './runtime/socket';
import { InstallerError, messageOf } from './errors';
import { effectError, EffectContext, errnoOf } from './host/errors';
import { HostFs } from './host/fs';
import { StopRequest, stopOnSignals } from './host/signals';
import { planCommand } from './commands/plan';
import { Effects, install, remove } from './installer';
import { connectCluster } from './kube/cluster';
import { JsonLogger, LineSink } from './log';
import { ChildProcessRunner, ChrootRunner } from './host/commands';
import { status } from './commands/status';
import { clusterStatus } from './commands/cluster-status';
import { ociArchitecture } from './installer-image';
import { Settings } from './settings';
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
  let release: (() => void) | undefined;
  let nodeRoot: string | undefined;
  const fail = (raw: unknown): number => {
    const error = nodeRoot === undefined ? raw : namedFault(raw, nodeRoot);
    const known = error instanceof InstallerError;
    const message = known ? messageOf(error) : unexpectedMessage(error);
    const fix = known ? error.fix : 'unexpected error: run the same command again (install resumes, remove reverts) and report this message if it persists';
    logger.error(message, { fix });
    io.stderr(`${command}: error: ${message} (fix: ${fix})`);
    return known ? error.exitCode : 1;
  };
  try {
    const parsed = parseCommandLine(argv, env);
    if (parsed.help) {
      io.stdout(USAGE);
      return 0;
    }
    const settings = parsed.settings;
    nodeRoot = settings.nodeRoot;
    command = `knawd-installer ${settings.command}`;
    // plan's stdout is the diff; its log lines go to stderr.
    logger = new JsonLogger(settings.logLevel, settings.command === 'plan' ? io.stderr : io.stdout);
    const cluster = 'cluster' in overrides ? overrides.cluster : connectCluster(settings.kubeconfig, env);
    let stop = overrides.stop;
    if (!stop && (settings.command === 'install' || settings.command === 'remove')) {
      stop = new StopRequest();
      // Out of time: the node is as after a crash at that point; exit before the kubelet's SIGKILL, saying so.
      release = stopOnSignals(stop, settings.graceSeconds, (error) => process.exit(fail(error)));
    }
    const effects: Effects = {
      fs: overrides.fs ?? new HostFs(settings.nodeRoot),
      runner: overrides.runner ?? (settings.hostExec === 'chroot' ? new ChrootRunner(settings.nodeRoot) : new ChildProcessRunner()),
      probeSocket: overrides.probeSocket ?? socketAnswers,
      waitForSocket: overrides.waitForSocket ?? waitForSocket,
      readCriStatus: overrides.readCriStatus ?? readCriStatus,
      listPodSandboxes: 'listPodSandboxes' in overrides ? overrides.listPodSandboxes : listPodSandboxes,
      cluster,
      log: logger,
      stop,
      architecture: overrides.architecture ?? ociArchitecture(),
    };
    return await runCommand(settings, effects, io);
  } catch (error) {
    return fail(error);
  } finally {
    release?.();
  }
}

/** The command itself; every error goes to `run`'s edge. */
async function runCommand(settings: Settings, effects: Effects, io: Io): Promise<number> {
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
        const view = await clusterStatus(effects.cluster);
        view.lines.forEach((line) => io.stdout(line));
        return view.exitCode;
      }
      const report = status(settings, effects.fs, effects.architecture);
      io.stdout(JSON.stringify({ level: report.exitCode === 0 ? 'info' : 'warn', msg: `status: ${report.state}${report.refused ? ` (${report.refused})` : ''}`, ...report }));
      return report.exitCode;
    }
    case 'wait-removed':
      await waitRemoved(effects.cluster, effects.log, { labelSelector: settings.label, timeoutSeconds: settings.timeoutSeconds });
      return 0;
  }
}

const OP_OF_SYSCALL: Record<string, EffectContext['op']> = { mkdir: 'mkdir', rename: 'rename', unlink: 'remove', rm: 'remove', rmdir: 'rmdir', open: 'write', write: 'write', fsync: 'write', fchmod: 'write', fchown: 'write' };

/** A file-system fault under the node root that no step named: named here by its host path and syscall. */
function namedFault(error: unknown, nodeRoot: string): unknown {
  const e = error as NodeJS.ErrnoException | undefined;
  if (!errnoOf(error) || typeof e?.path !== 'string' || !(e.path === nodeRoot || e.path.startsWith(nodeRoot + '/'))) return error;
  const hostPath = e.path.slice(nodeRoot.length) || '/';
  return effectError(error, { op: OP_OF_SYSCALL[e.syscall ?? ''] ?? 'read', hostPath, nodeRoot });
}

/** An error no mapping knows, with its errno code and syscall when it has them (for the report). */
function unexpectedMessage(error: unknown): string {
  const code = errnoOf(error);
  const syscall = (error as NodeJS.ErrnoException | undefined)?.syscall;
  return code && !messageOf(error).includes(code) ? `${messageOf(error)} (${code}${syscall ? ` in ${syscall}` : ''})` : messageOf(error);
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
