/**
 * One changing installer run at a time on a node. Two can meet: during a Helm uninstall the installer
 * DaemonSet's pod may restart while the remover's pod runs, and an operator may run the CLI by hand. Both
 * edit the same runtime config and state file; interleaved, the state could lose the unpatched original.
 *
 * The lock is a directory in the host's /run (proper-lockfile: mkdir is atomic, and the holder refreshes its
 * mtime, so a lock left by a killed run goes stale and is taken over; /run is emptied at boot). It works
 * across containers and PID namespaces, which a pid file would not.
 */
import * as fs from 'fs';
import * as lockfile from 'proper-lockfile';
import { InstallerError, messageOf } from '../errors';
import { Logger } from '../log';

/** Host path of the lock directory. */
export const NODE_LOCK = '/run/knawd-installer.lock';

/** A holder that has not refreshed the lock for this long is taken to be dead. */
const STALE_MS = 30_000;
const POLL_MS = 1000;

export interface NodeLock {
  /** Releases the lock; fails if another run took it over meanwhile (this one was too slow to refresh it). */
  release(): Promise<void>;
}

/**
 * Runs `work` holding the node lock (`lockDir`: {@link NODE_LOCK} in this process's file system), waiting up to
 * `timeoutSeconds` for another run. A failure of `work` is reported as is, not hidden by a release problem.
 */
export async function withNodeLock<T>(lockDir: string, timeoutSeconds: number, log: Logger, work: () => Promise<T>): Promise<T> {
  const lock = await lockNode(lockDir, timeoutSeconds, log);
  let result: T;
  try {
    result = await work();
  } catch (error) {
    await lock.release().catch(() => undefined);
    throw error;
  }
  await lock.release();
  return result;
}

/** Takes the node lock, waiting up to `timeoutSeconds` for another run; `staleMs` is shortened by tests only. */
export async function lockNode(lockDir: string, timeoutSeconds: number, log: Logger, staleMs = STALE_MS): Promise<NodeLock> {
  let compromised: Error | undefined;
  const options = (retries: number): lockfile.LockOptions => ({
    lockfilePath: lockDir,
    realpath: false,
    fs,
    stale: staleMs,
    retries: { retries, factor: 1, minTimeout: POLL_MS, maxTimeout: POLL_MS },
    onCompromised: (error) => {
      compromised = error;
    },
  });
  let release: () => Promise<void>;
  try {
    release = await lockfile.lock(lockDir, options(0));
  } catch (first) {
    if (!isLocked(first)) throw lockError(first);
    log.warn(`another knawd-installer run on this node holds ${NODE_LOCK}; waiting up to ${timeoutSeconds} s`);
    try {
      release = await lockfile.lock(lockDir, options(Math.max(0, Math.ceil((timeoutSeconds * 1000) / POLL_MS))));
    } catch (error) {
      if (!isLocked(error)) throw lockError(error);
      throw new InstallerError(
        `another knawd-installer run on this node still holds ${NODE_LOCK} after ${timeoutSeconds} s; nothing was changed`,
        `let it finish (see the logs of the knawd pods on this node) and run again; a lock whose holder died expires after ${staleMs / 1000} s`,
      );
    }
  }
  return {
    async release() {
      if (compromised) {
        throw new InstallerError(`the node lock ${NODE_LOCK} was taken over during this run (${messageOf(compromised)})`, 'run the same command again: install resumes, remove reverts');
      }
      await release();
    },
  };
}

function isLocked(error: unknown): boolean {
  return (error as { code?: string } | undefined)?.code === 'ELOCKED';
}

function lockError(error: unknown): InstallerError {
  return new InstallerError(`cannot take the node lock ${NODE_LOCK}: ${messageOf(error)}; nothing was changed`, 'check that the host /run is writable from the installer pod');
}
