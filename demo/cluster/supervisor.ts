/**
 * The test side of the node's PID 1 (supervisor/, a Go program: PID 1 must reap orphans, which Node.js cannot).
 * Its socket is in the node's /run, a directory of the harness, so the test reaches it from outside the node.
 *
 * The systemctl shim is the one fake of the harness (PID 1 is not systemd here). Every call the installer makes
 * is recorded by the supervisor, one JSON line each, and {@link Supervisor.calls} returns them for assertions.
 */
import * as fs from 'fs';
import * as net from 'net';

/** What the supervisor serves; its `--version`. */
export const SUPERVISOR_VERSION = 'node-supervisor 1';

export interface UnitConfig {
  readonly name: string;
  readonly argv: readonly string[];
  readonly env: readonly string[];
  readonly log: string;
  /** Ready once this unix socket accepts connections… */
  readonly readyUnix?: string;
  /** …or this URL answers 200. */
  readonly readyHttp?: string;
  readonly readyTimeoutMs: number;
  readonly stopTimeoutMs: number;
}

export interface SupervisorConfig {
  /** Node path of the systemctl call log. */
  readonly callLog: string;
  /** Started in this order, each once the one before is ready; stopped in reverse. */
  readonly units: readonly UnitConfig[];
}

export interface UnitStatus {
  readonly name: string;
  /** `restarting`: stopped by a requested restart, waiting out its delay. */
  readonly state: 'starting' | 'active' | 'stopping' | 'restarting' | 'inactive' | 'failed';
  /** In the node's PID namespace, NOT the machine's: see TestNode.hostPid. */
  readonly pid: number;
  /** How often the unit was started (1 after boot; +1 per restart). */
  readonly starts: number;
  readonly exit?: string;
}

/** One systemctl call as the supervisor logged it. */
export interface SystemctlCall {
  readonly start: string;
  readonly ms: number;
  readonly args: readonly string[];
  readonly code: number;
  readonly stderr?: string;
  readonly delayMs?: number;
}

interface Answer {
  readonly code: number;
  readonly stdout?: string;
  readonly stderr?: string;
  readonly units?: UnitStatus[];
}

export class Supervisor {
  /** `socket` and `callLog` are host paths (the node's /run is a directory of the harness). */
  constructor(
    private readonly socket: string,
    private readonly callLog: string,
  ) {}

  private request(body: Record<string, unknown>, timeoutMs = 10_000): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const conn = net.connect(this.socket);
      let data = '';
      const timer = setTimeout(() => {
        conn.destroy();
        reject(new Error(`the node supervisor did not answer ${JSON.stringify(body)} within ${timeoutMs} ms`));
      }, timeoutMs);
      conn.on('connect', () => conn.write(JSON.stringify(body) + '\n'));
      conn.on('data', (d) => (data += d.toString('utf8')));
      conn.on('error', (error) => {
        clearTimeout(timer);
        reject(new Error(`cannot reach the node supervisor at ${this.socket}: ${error.message}`));
      });
      conn.on('end', () => {
        clearTimeout(timer);
        try {
          resolve(JSON.parse(data) as Answer);
        } catch {
          reject(new Error(`the node supervisor answered ${JSON.stringify(data)}`));
        }
      });
    });
  }

  async status(): Promise<UnitStatus[]> {
    return (await this.request({ cmd: 'status' })).units ?? [];
  }

  /** Every later restart of `unit` waits `ms` between stopping and starting it (a slow runtime restart). */
  async delayRestarts(unit: string, ms: number): Promise<void> {
    const a = await this.request({ cmd: 'delay', unit, ms });
    if (a.code !== 0) throw new Error(`delay ${unit}: ${a.stderr}`);
  }

  /** The systemctl calls so far, oldest first. */
  calls(): SystemctlCall[] {
    if (!fs.existsSync(this.callLog)) return [];
    return fs
      .readFileSync(this.callLog, 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as SystemctlCall);
  }

  /** Whether the socket accepts connections yet. */
  listening(): Promise<boolean> {
    return new Promise((resolve) => {
      const conn = net.connect(this.socket);
      conn.on('connect', () => {
        conn.destroy();
        resolve(true);
      });
      conn.on('error', () => resolve(false));
    });
  }
}
