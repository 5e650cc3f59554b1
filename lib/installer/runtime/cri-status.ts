/**
 * The container runtime's own answer to "which handlers do you serve": one CRI call,
 * `runtime.v1.RuntimeService/Status` with `verbose`, over the runtime's unix socket. The kubelet builds
 * `node.status.runtimeHandlers` from the same answer.
 *
 * Why hand-written (HTTP/2 from node:http2 plus a few lines of protobuf) and not @grpc/grpc-js with the CRI
 * protos: the installer makes this one unary call per restart, stays resident on every node, and its RSS
 * budget is measured (`npm run bench`); grpc-js and protobufjs would load several MB of code for it. The
 * message shapes read here are stable parts of the CRI v1 API (k8s.io/cri-api, api.proto):
 *   StatusRequest  { bool verbose = 1; }
 *   StatusResponse { RuntimeStatus status = 1; map<string,string> info = 2; repeated RuntimeHandler runtime_handlers = 3; }
 *   RuntimeStatus  { repeated RuntimeCondition conditions = 1; }
 *   RuntimeCondition { string type = 1; bool status = 2; string reason = 3; string message = 4; }
 *   RuntimeHandler { string name = 1; ... }
 */
import * as http2 from 'http2';
import * as net from 'net';

export interface RuntimeCondition {
  readonly type: string;
  readonly status: boolean;
  readonly reason: string;
  readonly message: string;
}

export interface CriStatus {
  readonly conditions: readonly RuntimeCondition[];
  /** `info` of the verbose answer (containerd puts its effective config as JSON under `config`). */
  readonly info: Readonly<Record<string, string>>;
  /** `runtime_handlers` (CRI since Kubernetes 1.30); empty when the runtime does not report them. */
  readonly runtimeHandlers: readonly string[];
}

/** Asks the runtime at `socketPath` (a path in this process's file system) for its status. */
export type CriStatusReader = (socketPath: string, timeoutMs: number) => Promise<CriStatus>;

const METHOD = '/runtime.v1.RuntimeService/Status';
const VERBOSE_REQUEST = Buffer.from([0x08, 0x01]);

export const readCriStatus: CriStatusReader = (socketPath, timeoutMs) => unaryCall(socketPath, METHOD, VERBOSE_REQUEST, timeoutMs, 'CRI Status', decodeStatusResponse);

/** A pod sandbox as the runtime lists it (CRI `PodSandbox`): its pod, its handler, whether it is ready. */
export interface CriSandbox {
  readonly namespace: string;
  readonly name: string;
  readonly runtimeHandler: string;
  readonly ready: boolean;
}

/** Lists the runtime's pod sandboxes (CRI ListPodSandbox, no filter). */
export type CriSandboxLister = (socketPath: string, timeoutMs: number) => Promise<CriSandbox[]>;

/**
 *   ListPodSandboxResponse { repeated PodSandbox items = 1; }
 *   PodSandbox { string id = 1; PodSandboxMetadata metadata = 2; PodSandboxState state = 3; ...; string runtime_handler = 7; }
 *   PodSandboxMetadata { string name = 1; string uid = 2; string namespace = 3; uint32 attempt = 4; }
 *   PodSandboxState { SANDBOX_READY = 0; SANDBOX_NOTREADY = 1; }
 */
export const listPodSandboxes: CriSandboxLister = (socketPath, timeoutMs) =>
  unaryCall(socketPath, '/runtime.v1.RuntimeService/ListPodSandbox', Buffer.alloc(0), timeoutMs, 'CRI ListPodSandbox', decodeListPodSandboxResponse);

/** Exported for tests: decodes a ListPodSandboxResponse message. */
export function decodeListPodSandboxResponse(message: Buffer): CriSandbox[] {
  return fields(message)
    .filter((f) => f.number === 1 && f.bytes)
    .map((item) => {
      let namespace = '';
      let name = '';
      let runtimeHandler = '';
      let state = 0;
      for (const f of fields(item.bytes as Buffer)) {
        if (f.number === 2 && f.bytes) {
          for (const m of fields(f.bytes)) {
            if (m.number === 1 && m.bytes) name = m.bytes.toString('utf8');
            if (m.number === 3 && m.bytes) namespace = m.bytes.toString('utf8');
          }
        }
        if (f.number === 3 && f.varint !== undefined) state = f.varint;
        if (f.number === 7 && f.bytes) runtimeHandler = f.bytes.toString('utf8');
      }
      return { namespace, name, runtimeHandler, ready: state === 0 };
    });
}

function unaryCall<T>(socketPath: string, method: string, requestMessage: Buffer, timeoutMs: number, what: string, decode: (message: Buffer) => T): Promise<T> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const session = http2.connect('http://localhost', { createConnection: () => net.connect({ path: socketPath }) });
    const finish = (error: Error | undefined, answer?: T): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      session.destroy();
      if (error) reject(error);
      else resolve(answer as T);
    };
    const timer = setTimeout(() => finish(new Error(`no ${what} answer on ${socketPath} within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    session.on('error', (error) => finish(new Error(`${what} on ${socketPath}: ${error.message}`)));
    const request = session.request({ ':method': 'POST', ':path': method, 'content-type': 'application/grpc', te: 'trailers' });
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    const noteStatus = (headers: http2.IncomingHttpHeaders): void => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
      if (headers['grpc-message'] !== undefined) grpcMessage = decodeURIComponent(String(headers['grpc-message']));
    };
    request.on('response', noteStatus);
    request.on('trailers', noteStatus);
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', (error) => finish(new Error(`${what} on ${socketPath}: ${error.message}`)));
    request.on('end', () => {
      if (grpcStatus !== '0') {
        finish(new Error(`${what} on ${socketPath} failed: grpc-status ${grpcStatus ?? 'missing'}${grpcMessage ? `: ${grpcMessage}` : ''}`));
        return;
      }
      try {
        // An empty message (every field at its default) comes as a zero-length frame.
        finish(undefined, decode(unframe(Buffer.concat(chunks))));
      } catch (error) {
        finish(new Error(`${what} on ${socketPath}: ${error instanceof Error ? error.message : String(error)}`));
      }
    });
    request.end(frame(requestMessage));
  });
}

/** gRPC's length-prefixed message framing: a compression flag, a 4-byte length, the message. */
function frame(message: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

function unframe(body: Buffer): Buffer {
  if (body.length < 5) throw new Error('empty gRPC answer');
  if (body[0] !== 0) throw new Error('compressed gRPC answer (not requested)');
  const length = body.readUInt32BE(1);
  if (body.length < 5 + length) throw new Error('truncated gRPC answer');
  return body.subarray(5, 5 + length);
}

/** Exported for tests: decodes a StatusResponse message. */
export function decodeStatusResponse(message: Buffer): CriStatus {
  const conditions: RuntimeCondition[] = [];
  const info: Record<string, string> = {};
  const runtimeHandlers: string[] = [];
  for (const field of fields(message)) {
    if (field.number === 1 && field.bytes) {
      for (const c of fields(field.bytes)) if (c.number === 1 && c.bytes) conditions.push(decodeCondition(c.bytes));
    } else if (field.number === 2 && field.bytes) {
      let key = '';
      let value = '';
      for (const e of fields(field.bytes)) {
        if (e.number === 1 && e.bytes) key = e.bytes.toString('utf8');
        if (e.number === 2 && e.bytes) value = e.bytes.toString('utf8');
      }
      info[key] = value;
    } else if (field.number === 3 && field.bytes) {
      const name = fields(field.bytes).find((f) => f.number === 1 && f.bytes)?.bytes;
      runtimeHandlers.push(name ? name.toString('utf8') : '');
    }
  }
  return { conditions, info, runtimeHandlers };
}

function decodeCondition(message: Buffer): RuntimeCondition {
  let type = '';
  let status = false;
  let reason = '';
  let text = '';
  for (const f of fields(message)) {
    if (f.number === 1 && f.bytes) type = f.bytes.toString('utf8');
    if (f.number === 2 && f.varint !== undefined) status = f.varint !== 0;
    if (f.number === 3 && f.bytes) reason = f.bytes.toString('utf8');
    if (f.number === 4 && f.bytes) text = f.bytes.toString('utf8');
  }
  return { type, status, reason, message: text };
}

interface Field {
  readonly number: number;
  readonly varint?: number;
  readonly bytes?: Buffer;
}

/** The top-level fields of a protobuf message (varints and length-delimited; fixed-width ones skipped). */
function fields(message: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  const varint = (): number => {
    let result = 0;
    let shift = 0;
    for (;;) {
      if (pos >= message.length) throw new Error('truncated protobuf varint');
      const byte = message[pos++];
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
      if (shift > 63) throw new Error('protobuf varint too long');
    }
  };
  while (pos < message.length) {
    const key = varint();
    const number = Math.floor(key / 8);
    switch (key & 7) {
      case 0:
        out.push({ number, varint: varint() });
        break;
      case 1:
        pos += 8;
        break;
      case 2: {
        const length = varint();
        if (pos + length > message.length) throw new Error('truncated protobuf field');
        out.push({ number, bytes: message.subarray(pos, pos + length) });
        pos += length;
        break;
      }
      case 5:
        pos += 4;
        break;
      default:
        throw new Error(`unsupported protobuf wire type ${key & 7}`);
    }
  }
  return out;
}

/**
 * The handlers the runtime serves: `runtime_handlers` when it reports them, else (containerd before 2.0)
 * the runtimes of the effective config it puts under `info.config`; undefined when it tells neither.
 */
export function servedHandlers(status: CriStatus): string[] | undefined {
  if (status.runtimeHandlers.length > 0) return [...status.runtimeHandlers];
  const config = status.info.config;
  if (config === undefined) return undefined;
  try {
    const runtimes = (JSON.parse(config) as { containerd?: { runtimes?: Record<string, unknown> } }).containerd?.runtimes;
    return runtimes ? Object.keys(runtimes) : undefined;
  } catch {
    return undefined;
  }
}
