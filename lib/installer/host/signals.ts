/**
 * SIGTERM and SIGINT during install or remove. A DaemonSet rollout or `helm upgrade` sends the installer pod
 * SIGTERM, then SIGKILL once its terminationGracePeriodSeconds are over. Without a handler Node.js dies at once
 * wherever it is; that is safe (every write is atomic and recorded first: the crash tests), but it can leave a
 * runtime restarted and not verified, or a rollback half-done.
 *
 * With {@link stopOnSignals} the run is asked to stop ({@link StopRequest}) instead, and:
 * - before its first write to the host, any wait (the node lock, the API, the pods of remove) is given up at
 *   once: it stops with nothing changed;
 * - a step already changing the host is finished (the file writes are synchronous: a signal is only seen
 *   between them; the restart and its verification, or the rollback, are waited for), and the run stops at
 *   the next step boundary ({@link StopRequest.checkpoint}), saying what the node is left as: the next run
 *   completes it;
 * - if the step is still not done when the grace given to the installer runs out (`--grace-seconds`, set
 *   below the pod's terminationGracePeriodSeconds), or a second signal comes, the process exits with one line
 *   naming the step: the node is then as after a crash at that point, which the next run completes.
 * The exit status of a stopped run is 128 + the signal number (143 for SIGTERM, 130 for SIGINT).
 */
import { constants } from 'os';
import { InstallerError } from '../errors';

/** The exit status of a run stopped by `signal`: 128 + its number, as a shell reports a death by it. */
export function stopExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 1);
}

/** Whether `code` is the exit status of a stopped run. */
export function isStopExitCode(code: number): boolean {
  return code === stopExitCode('SIGTERM') || code === stopExitCode('SIGINT');
}

/** A run stopped by a signal; the message says what the node is left as. */
export class Stopped extends InstallerError {
  constructor(
    readonly signal: NodeJS.Signals,
    message: string,
    fix: string,
  ) {
    super(message, fix, stopExitCode(signal));
    this.name = 'Stopped';
  }
}

const AGAIN = 'run the same command again (the next pod of the DaemonSet does): install resumes, remove reverts';

/** What a node is left as by a run that stopped before changing anything. */
export const NOTHING_CHANGED = 'nothing on the host was changed';

/** Whether, and when, the run was asked to stop; where it is (for the line when its grace runs out). */
export class StopRequest {
  private received?: { readonly signal: NodeJS.Signals; readonly at: number };
  private current = 'starting';
  private readonly listeners = new Set<() => void>();

  /** The stop already requested, if any. */
  get signal(): NodeJS.Signals | undefined {
    return this.received?.signal;
  }

  /** The step in progress. */
  get step(): string {
    return this.current;
  }

  /** Asks the run to stop (the first request counts). */
  request(signal: NodeJS.Signals): void {
    if (this.received) return;
    this.received = { signal, at: Date.now() };
    for (const listener of [...this.listeners]) listener();
  }

  /** Names the step the run enters now. */
  enter(step: string): void {
    this.current = step;
  }

  /**
   * At a step boundary, before `next`: stops the run (throws {@link Stopped}, `leftAs` saying what the node is
   * left as) when asked to; else enters `next`.
   */
  checkpoint(next: string, leftAs: string): void {
    const signal = this.signal;
    if (signal) throw stopped(signal, `before ${next}`, leftAs);
    this.enter(next);
  }

  /**
   * For a wait that changes nothing (before the first write): settles as `work` does, or, as soon as a stop is
   * asked for while `waiting()` (default: always), rejects with {@link Stopped} saying `leftAs`. `work` is
   * abandoned, not cancelled.
   */
  unlessStopped<T>(work: Promise<T>, leftAs: string, waiting: () => boolean = () => true): Promise<T> {
    if (this.signal) return Promise.reject(stopped(this.signal, `while ${this.current}`, leftAs));
    return new Promise<T>((resolve, reject) => {
      const onStop = (): void => {
        if (waiting()) reject(stopped(this.signal as NodeJS.Signals, `while ${this.current}`, leftAs));
      };
      this.listeners.add(onStop);
      work.then(resolve, reject).finally(() => this.listeners.delete(onStop));
    });
  }

  /** The error for a stop that cannot wait for the current step: `why` (the grace ran out, a second signal). */
  cutShort(why: string): Stopped {
    return new Stopped(
      this.signal ?? 'SIGTERM',
      `stopped (${why}) while ${this.current}; the node is as after a crash at that point, every write being atomic and recorded first`,
      AGAIN,
    );
  }
}

function stopped(signal: NodeJS.Signals, when: string, leftAs: string): Stopped {
  return new Stopped(signal, `stopped by ${signal} ${when}: ${leftAs}`, AGAIN);
}

/**
 * Turns SIGTERM and SIGINT into a {@link StopRequest}; `onOutOfTime` is called `graceSeconds` after the first
 * signal if the run is still going, or at a second signal. Returns the function that removes the handlers.
 */
export function stopOnSignals(stop: StopRequest, graceSeconds: number, onOutOfTime: (error: Stopped) => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let signals = 0;
  const handler = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      onOutOfTime(stop.cutShort(`a second ${signal}`));
      return;
    }
    stop.request(signal);
    timer = setTimeout(() => onOutOfTime(stop.cutShort(`${signal}, and the ${graceSeconds} s allowed after it ran out`)), graceSeconds * 1000);
    // The run ending is what ends the process, never this timer.
    timer.unref();
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    if (timer) clearTimeout(timer);
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
