/**
 * The faults a node's file systems and host commands hand the installer, each turned into one line that names
 * the host path (never the node-root mount) and what the operator can do. Only what is listed here is known;
 * anything else stays the original error and the CLI edge calls it unexpected.
 *
 * Why these: full /var or /opt (ENOSPC, EDQUOT; inodes too), read-only or immutable paths (EROFS; EPERM from
 * chattr +i on RHCOS/Bottlerocket/Talos-style hosts), a security module refusing root (EACCES: SELinux), a file
 * bind-mounted in place that rename(2) cannot replace (EBUSY, EXDEV), a disk failing (EIO), a busy executable
 * (ETXTBSY), and host commands that are missing or hang (nsenter, chroot, systemctl).
 */
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError, oneLine } from '../errors';
import type { CommandResult } from './commands';

/** What the installer was doing to which host path when the error came. */
export interface EffectContext {
  readonly op: 'write' | 'stage' | 'commit' | 'rename' | 'mkdir' | 'remove' | 'rmdir' | 'read';
  readonly hostPath: string;
  /** Where the host's `/` is mounted here: to look at the file system, and to strip it from messages. */
  readonly nodeRoot: string;
}

const AGAIN = 'then run the same command again (install resumes, remove reverts)';

const VERB: Record<EffectContext['op'], string> = {
  write: 'writing',
  stage: 'writing',
  commit: 'replacing',
  rename: 'replacing',
  mkdir: 'creating directory',
  remove: 'removing',
  rmdir: 'removing directory',
  read: 'reading',
};

/** The errno code of a Node.js system error, if it is one. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * `error` as one clear line when it is a known file-system fault, else `error` itself. An InstallerError
 * passes through unchanged.
 */
export function effectError(error: unknown, context: EffectContext): unknown {
  if (error instanceof InstallerError) return error;
  const code = errnoOf(error);
  if (code === undefined) return error;
  const { hostPath, op } = context;
  const dir = parentOf(hostPath);
  const doing = `${VERB[op]} ${hostPath}`;
  switch (code) {
    case 'ENOSPC': {
      const free = freeOn(context);
      const what = free?.inodesOut ? 'no free inodes' : 'no space';
      return new InstallerError(
        `${what} left on the file system of ${dir} while ${doing}${free ? ` (${free.text} free)` : ''}`,
        `free ${free?.inodesOut ? 'inodes (df -i' : 'space (df -h'} ${dir} on the node), ${AGAIN}`,
      );
    }
    case 'EDQUOT':
      return new InstallerError(`disk quota exceeded on the file system of ${dir} while ${doing}`, `raise root's quota there or free space (quota -u root), ${AGAIN}`);
    case 'EROFS':
      return new InstallerError(`${dir} is on a read-only file system: ${doing} failed`, `${writableFix(hostPath)}, ${AGAIN}`);
    case 'EPERM':
      return new InstallerError(
        `${doing} is not permitted: ${hostPath} or ${dir} is immutable or append-only (chattr +i / +a), or the installer lacks a capability`,
        `look with \`lsattr -d ${dir} ${hostPath}\` on the node and clear the attribute (chattr -i), or run the installer privileged; ${AGAIN}`,
      );
    case 'EACCES':
      return new InstallerError(
        selinuxOn(context.nodeRoot)
          ? `permission denied ${doing}: SELinux denies it (root cannot write there under the node's policy)`
          : `permission denied ${doing}: the installer is not root with CAP_DAC_OVERRIDE, or a security module denies it`,
        selinuxOn(context.nodeRoot)
          ? `look at the denial (\`ausearch -m avc -ts recent\` on the node) and allow the installer's domain to write there, ${AGAIN}`
          : `run the installer as root in a privileged pod (the chart does), ${AGAIN}`,
      );
    case 'EBUSY':
    case 'EXDEV':
      return new InstallerError(
        `${hostPath} is a mount point (a file or directory mounted in place): it cannot be replaced by rename, and the installer never writes it in place`,
        `edit the file where it is mounted from, or unmount it, ${AGAIN}`,
      );
    case 'ETXTBSY':
      return new InstallerError(`${hostPath} is a program being executed: ${doing} failed (text file busy)`, `wait until it has finished, ${AGAIN}`);
    case 'EIO':
      return new InstallerError(`I/O error ${doing}: the disk holding ${dir} reports errors`, 'check the node\'s disk (dmesg, smartctl) before running again');
    case 'ENOTDIR':
    case 'EISDIR':
      return new InstallerError(`${doing} failed: something else than expected is at ${hostPath} or on its path (${code})`, `move what is there away, ${AGAIN}`);
    default:
      return error;
  }
}

/** The fix for a path on a read-only file system: the prefix may move, a runtime's config may not. */
function writableFix(hostPath: string): string {
  return /^\/(etc|var)\//.test(hostPath)
    ? `make ${parentOf(hostPath)} writable on the node (remount it read-write)`
    : `remount ${parentOf(hostPath)} read-write, or choose a --prefix on a writable file system (e.g. /var/opt/knawd on an image-based OS)`;
}

function freeOn(context: EffectContext): { text: string; inodesOut: boolean } | undefined {
  const local = nearestExisting(path.join(context.nodeRoot, context.hostPath));
  try {
    const st = fs.statfsSync(local);
    const bytes = st.bavail * st.bsize;
    return { text: `${formatBytes(bytes)}, ${st.files > 0 ? `${st.ffree} inodes` : 'inodes not limited'}`, inodesOut: st.files > 0 && st.ffree === 0 };
  } catch {
    return undefined;
  }
}

function selinuxOn(nodeRoot: string): boolean {
  return fs.existsSync(path.join(nodeRoot, 'sys/fs/selinux/enforce'));
}

/** The path itself when it exists, else its closest existing ancestor. */
export function nearestExisting(local: string): string {
  let p = local;
  while (!fs.existsSync(p) && path.dirname(p) !== p) p = path.dirname(p);
  return p;
}

function parentOf(hostPath: string): string {
  return hostPath.slice(0, hostPath.lastIndexOf('/')) || '/';
}

/** 40.1 MiB, 512 KiB, 93 B. */
export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${bytes} B`;
}

// ---------------------------------------------------------------------------------------------- host commands

/** A host command that could not be run at all (its program, or the way into the host, is missing): it did nothing. */
export class CommandCannotRun extends InstallerError {}

/** The runners' own programs: when one of them is missing, no host command can run at all. */
const RUNNERS = ['nsenter', 'chroot', 'unshare'];

/**
 * Why a host command failed, when the reason is one of the known ones (the runner missing, the host
 * namespace not enterable, the command missing on the node, a timeout); undefined otherwise, and the caller
 * says what the command printed.
 */
export function commandProblem(argv: readonly string[], result: CommandResult, timeoutMs: number): InstallerError | undefined {
  const stderr = oneLine(result.stderr);
  const runner = argv[0];
  const command = argv[argv.indexOf('--') + 1] ?? argv[0];
  if (result.code === -1 && /timed out/.test(stderr)) {
    return new InstallerError(
      `\`${argv.slice(argv.indexOf('--') + 1).join(' ')}\` on the node did not finish within ${Math.round(timeoutMs / 1000)} s and was stopped`,
      command === 'systemctl' ? 'look at `systemctl status` and `journalctl -u <unit>` on the node for what the unit is waiting for, then run again' : 'look at the node for what hangs, then run again',
    );
  }
  if (result.code === -1 && RUNNERS.includes(runner) && /ENOENT/.test(stderr)) {
    return new CommandCannotRun(`${runner} is not in the installer image, so no command can be run on the host`, 'use the installer image of this release (it ships nsenter)');
  }
  if (runner === 'nsenter' && /nsenter: (cannot open|reassociate).*(Permission denied|Operation not permitted|No such process)/.test(stderr)) {
    return new CommandCannotRun(
      "cannot enter the host's mount namespace (nsenter -t 1 -m): the installer pod needs hostPID and privileged",
      'deploy the installer with the chart or manifests of this release (hostPID: true, privileged: true)',
    );
  }
  const missing = /(?:failed to execute|failed to run command) (\S+?):? No such file or directory/.exec(stderr);
  if (result.code === 127 || missing) {
    const name = (missing?.[1] ?? command).replace(/^[‘']|[’']$/g, '');
    return new CommandCannotRun(
      name === 'systemctl'
        ? 'systemctl is not on the node: the installer restarts the runtime through systemd and cannot on this node'
        : `${name} is not on the node (exit 127 running it in the host's namespace)`,
      name === 'systemctl' ? 'restart the runtime yourself: run with --restart none, restart it, then run the same command again to finish' : `install ${name} on the node, or check that --target matches it`,
    );
  }
  return undefined;
}
