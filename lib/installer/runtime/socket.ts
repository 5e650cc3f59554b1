/**
 * The container runtime's socket: whether the runtime is running at all before a run (one connection
 * attempt), and, after a restart, the bounded wait until it accepts connections again.
 */
import * as net from 'net';

/** Resolves true once a connection to the unix socket at `localPath` succeeds, false at the deadline. */
export type SocketWaiter = (localPath: string, timeoutMs: number) => Promise<boolean>;

/** Resolves whether the unix socket at `localPath` accepts a connection now. */
export type SocketProbe = (localPath: string) => Promise<boolean>;

/** A runtime that is up accepts at once; a missing or dead socket fails at once (ENOENT, ECONNREFUSED). */
const PROBE_MS = 2000;

export const socketAnswers: SocketProbe = (localPath) => connects(localPath, PROBE_MS);

export const waitForSocket: SocketWaiter = async (localPath, timeoutMs) => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await connects(localPath, Math.max(100, Math.min(2000, deadline - Date.now())))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, Math.min(500, Math.max(0, deadline - Date.now()))));
  }
};

function connects(localPath: string, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ path: localPath });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
