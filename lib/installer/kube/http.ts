/**
 * A minimal JSON client for the Kubernetes API over node:https: one request at a time, bounded in time and
 * size, no retries (callers decide), TLS and credentials from an {@link Endpoint}. Credential files are read
 * per request so that a rotated ServiceAccount token is used as soon as the kubelet writes it.
 *
 * One streaming call, {@link KubeHttp.stream}, for a watch (the restart budget's waiting, issue 32): a waiting
 * node keeps one open answer and reads its newline-delimited JSON events as they come, instead of asking again
 * and again. It is kept to what a watch needs: lines handed over one by one (each bounded in size), an idle
 * bound instead of a total one (a watch is quiet for as long as nothing changes), its own connection (the
 * kept-alive one stays free for requests), and an end the caller can bring about.
 */
import * as fs from 'fs';
import * as https from 'https';
import { Endpoint, Source } from './endpoint';

/** A failed API request; `status` is the HTTP status, undefined when no answer came. */
export class KubeApiError extends Error {
  constructor(
    readonly status: number | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'KubeApiError';
  }
}

export interface KubeRequest {
  readonly method: 'GET' | 'PATCH' | 'POST' | 'PUT' | 'DELETE';
  /** Absolute API path, e.g. `/api/v1/nodes/n1`; path segments already encoded. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string | undefined>>;
  readonly body?: unknown;
  /** @default 'application/json' */
  readonly contentType?: string;
  /** @default 'application/json' */
  readonly accept?: string;
}

export interface KubeHttpOptions {
  /** Bound on one request, connect to last byte. @default 30000 */
  readonly timeoutMs?: number;
  /** Larger answers are refused rather than held in memory. @default 32 MiB */
  readonly maxResponseBytes?: number;
  /** @default fs.readFileSync */
  readonly readFile?: (file: string) => Buffer;
}

const USER_AGENT = 'knawd-installer';

/** An open streaming answer: `done` settles when it ends (resolves when the server closed it or `stop` was called). */
export interface KubeStream {
  readonly done: Promise<void>;
  stop(): void;
}

export interface KubeStreamOptions {
  /** The stream is given up (done rejects) when nothing arrived for this long. */
  readonly idleMs: number;
}

export class KubeHttp {
  private readonly timeoutMs: number;
  private readonly maxResponseBytes: number;
  private readonly readFile: (file: string) => Buffer;
  /**
   * One kept-alive connection for a run's few requests (each TLS handshake costs more than the request). Node
   * unrefs idle sockets, so none keeps a finished command alive, and the socket timeout closes an idle one.
   */
  private readonly agent: https.Agent;

  constructor(
    readonly endpoint: Endpoint,
    options: KubeHttpOptions = {},
  ) {
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxResponseBytes = options.maxResponseBytes ?? 32 * 1024 * 1024;
    this.readFile = options.readFile ?? ((file) => fs.readFileSync(file));
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 1, timeout: this.timeoutMs });
  }

  async request<T>(req: KubeRequest): Promise<T> {
    const { url, options, body } = this.prepare(req);
    const { status, text } = await this.send(url, options, body);
    if (status < 200 || status > 299) throw new KubeApiError(status, statusMessage(status, text));
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeApiError(status, `the API server's answer to ${req.method} ${req.path} is not JSON`);
    }
  }

  /**
   * A GET whose answer is read line by line as it arrives (a watch): `onLine` gets each complete line. `done`
   * rejects with a KubeApiError for an answer other than 200 (its Status message), a line larger than the
   * response bound, a broken connection, or `idleMs` without a byte.
   */
  stream(req: KubeRequest, onLine: (line: string) => void, streamOptions: KubeStreamOptions): KubeStream {
    let request: ReturnType<typeof https.request> | undefined;
    let stopped = false;
    const done = new Promise<void>((resolve, reject) => {
      const { url, options } = this.prepare(req);
      const fail = (error: Error): void => reject(error instanceof KubeApiError ? error : new KubeApiError(undefined, `${url.host}: ${error.message}`));
      // agent false: a connection of its own, closed with the stream.
      request = https.request(url, { ...options, agent: false }, (response) => {
        const status = response.statusCode ?? 0;
        let pending = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => {
          pending += chunk;
          if (status !== 200) return;
          let newline: number;
          while ((newline = pending.indexOf('\n')) >= 0) {
            const line = pending.slice(0, newline);
            pending = pending.slice(newline + 1);
            if (line.trim()) onLine(line);
          }
          if (pending.length > this.maxResponseBytes) request?.destroy(new KubeApiError(status, `a line of the API server's stream is larger than ${this.maxResponseBytes} bytes`));
        });
        response.on('end', () => (status === 200 ? resolve() : reject(new KubeApiError(status, statusMessage(status, pending)))));
        response.on('error', (error) => (stopped ? resolve() : fail(error)));
      });
      request.setTimeout(streamOptions.idleMs, () => request?.destroy(new Error(`nothing from the API server for ${streamOptions.idleMs / 1000} s`)));
      request.on('error', (error) => (stopped ? resolve() : fail(error)));
      // A connection cut mid-answer may end without an error event: the first settlement counts.
      request.on('close', () => (stopped ? resolve() : fail(new Error('the connection closed'))));
      request.end();
    });
    return {
      done,
      stop: () => {
        stopped = true;
        request?.destroy();
      },
    };
  }

  private prepare(req: KubeRequest): { url: URL; options: https.RequestOptions; body: Buffer | undefined } {
    const url = new URL(this.endpoint.server + req.path);
    for (const [key, value] of Object.entries(req.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, value);
    }
    const body = req.body === undefined ? undefined : Buffer.from(JSON.stringify(req.body));
    const headers: Record<string, string> = { Accept: req.accept ?? 'application/json', 'User-Agent': USER_AGENT };
    const token = this.read(this.endpoint.token)?.toString('utf8').trim();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body) {
      headers['Content-Type'] = req.contentType ?? 'application/json';
      headers['Content-Length'] = String(body.length);
    }
    const options: https.RequestOptions = {
      method: req.method,
      headers,
      agent: this.agent,
      ca: this.read(this.endpoint.ca),
      cert: this.read(this.endpoint.clientCertificate),
      key: this.read(this.endpoint.clientKey),
      rejectUnauthorized: this.endpoint.insecureSkipTlsVerify !== true,
      servername: this.endpoint.tlsServerName,
    };
    return { url, options, body };
  }

  private read(source: Source | undefined): Buffer | undefined {
    if (source === undefined) return undefined;
    if ('data' in source) return Buffer.from(source.data, 'utf8');
    try {
      return this.readFile(source.file);
    } catch (error) {
      throw new KubeApiError(undefined, `cannot read ${source.file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }

  private send(url: URL, options: https.RequestOptions, body: Buffer | undefined): Promise<{ status: number; text: string }> {
    return new Promise((resolve, reject) => {
      const fail = (error: Error): void => reject(error instanceof KubeApiError ? error : new KubeApiError(undefined, `${url.host}: ${error.message}`));
      const request = https.request(url, options, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > this.maxResponseBytes) {
            request.destroy(new KubeApiError(response.statusCode, `the API server's answer is larger than ${this.maxResponseBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        response.on('error', fail);
      });
      request.setTimeout(this.timeoutMs, () => request.destroy(new Error(`no answer within ${this.timeoutMs / 1000} s`)));
      request.on('error', fail);
      request.end(body);
    });
  }
}

/** The `message` of a Kubernetes Status answer, else the start of whatever came back. */
function statusMessage(status: number, text: string): string {
  try {
    const parsed = JSON.parse(text) as { kind?: string; message?: string };
    if (parsed.kind === 'Status' && parsed.message) return parsed.message;
  } catch {
    // Not JSON (a proxy's error page, say): fall through to the raw text.
  }
  return text.trim().slice(0, 200) || `HTTP ${status}`;
}
