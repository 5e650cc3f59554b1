/**
 * Errors the installer reports at its edge (the CLI): each carries a one-line message saying what went wrong
 * and a one-line `fix` saying what the operator can do about it. Never a stack trace on a node's log.
 */

/** A failure with a message and what to do about it; `exitCode` is the process's exit status. */
export class InstallerError extends Error {
  constructor(
    message: string,
    /** What the operator can do about it, one line. */
    readonly fix: string,
    /** Process exit status for this failure. */
    readonly exitCode: number = 1,
  ) {
    super(oneLine(message));
    this.name = 'InstallerError';
  }
}

/** Bad command line or environment: exit 2 with a usage hint. */
export class UsageError extends InstallerError {
  constructor(message: string) {
    super(message, 'run `knawd-installer --help` for the usage', 2);
    this.name = 'UsageError';
  }
}

/** Squeezes line breaks out of a message so that it stays one log line. */
export function oneLine(message: string): string {
  return message.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

/** The message of anything thrown, one line. */
export function messageOf(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error));
}

/**
 * This image has no crun build for this node (its architecture, or the requested ociType): refused before the
 * node lock, so nothing on the host is touched; install labels the node failed.
 */
export class NoBuildForNode extends InstallerError {}
