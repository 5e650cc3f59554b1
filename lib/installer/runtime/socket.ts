/** After a restart: wait, bounded, until the container runtime accepts connections on its socket again. */
import * as net from 'net';

/** Resolves true once a connection to the unix socket at `localPath` succeeds, false at the deadline. */
export type SocketWaiter = (localPath: string, timeoutMs: number) => Promise<boolean>;

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
