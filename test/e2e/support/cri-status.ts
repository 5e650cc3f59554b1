/**
 * One CRI `runtime.v1.RuntimeService/Status` call straight to a runtime's unix socket, for the end-to-end tests'
 * own reading of which runtime handlers the daemon really loaded (crictl prints the same; this does not go
 * through it). gRPC is HTTP/2 with a 5-byte length prefix per message, so node:http2 carries it; the protobuf
 * is read by hand because only three fields matter here (runtime.v1 api.proto: StatusResponse 2 `info`
 * map<string,string>, 3 `runtime_handlers` repeated RuntimeHandler with 1 `name`; StatusRequest 1 `verbose`).
 * Test-only: the installer's own CRI client lives in lib/installer/runtime.
 */
import { connect as http2Connect } from 'node:http2';
import { connect as netConnect } from 'node:net';

export interface CriStatus {
  /** `runtime_handlers[].name`; the default runtime's entry has the empty name. */
  readonly handlers: string[];
  /** `info` (only with verbose): CRI-O sends one key, `config`. */
  readonly info: Record<string, string>;
}

/** Calls Status on the CRI socket at `socketPath`; rejects with the gRPC status when the call fails. */
export function criStatus(socketPath: string, verbose: boolean, timeoutMs = 10_000): Promise<CriStatus> {
  return new Promise((resolve, reject) => {
    const client = http2Connect('http://localhost', { createConnection: () => netConnect(socketPath) });
    const fail = (error: Error): void => {
      client.close();
      reject(error);
    };
    client.once('error', fail);
    const request = client.request({ ':method': 'POST', ':path': '/runtime.v1.RuntimeService/Status', 'content-type': 'application/grpc', te: 'trailers' });
    request.setTimeout(timeoutMs, () => fail(new Error(`CRI Status on ${socketPath}: no answer within ${timeoutMs} ms`)));
    const message = verbose ? Buffer.from([0x08, 0x01]) : Buffer.alloc(0);
    const frame = Buffer.alloc(5);
    frame.writeUInt32BE(message.length, 1);
    request.end(Buffer.concat([frame, message]));
    const chunks: Buffer[] = [];
    let grpcStatus: string | undefined;
    let grpcMessage = '';
    request.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) grpcStatus = String(headers['grpc-status']);
    });
    request.on('trailers', (trailers) => {
      grpcStatus = String(trailers['grpc-status'] ?? grpcStatus);
      grpcMessage = String(trailers['grpc-message'] ?? '');
    });
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('error', fail);
    request.on('end', () => {
      client.close();
      if (grpcStatus !== '0') return reject(new Error(`CRI Status on ${socketPath} failed: grpc-status ${grpcStatus} ${grpcMessage}`));
      const body = Buffer.concat(chunks);
      if (body.length < 5 || body.readUInt32BE(1) !== body.length - 5) return reject(new Error(`CRI Status on ${socketPath}: ${body.length} bytes is not one gRPC message`));
      resolve(decodeStatusResponse(body.subarray(5)));
    });
  });
}

/** The handler names and info map of a protobuf StatusResponse. */
export function decodeStatusResponse(message: Buffer): CriStatus {
  const handlers: string[] = [];
  const info: Record<string, string> = {};
  for (const field of fields(message)) {
    if (field.number === 3 && field.bytes) {
      handlers.push(fields(field.bytes).find((f) => f.number === 1)?.bytes?.toString('utf8') ?? '');
    } else if (field.number === 2 && field.bytes) {
      const entry = fields(field.bytes);
      info[entry.find((f) => f.number === 1)?.bytes?.toString('utf8') ?? ''] = entry.find((f) => f.number === 2)?.bytes?.toString('utf8') ?? '';
    }
  }
  return { handlers, info };
}

interface Field {
  readonly number: number;
  /** Length-delimited fields only. */
  readonly bytes?: Buffer;
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let at = 0;
  const varint = (): number => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (at >= buf.length) throw new Error('truncated protobuf varint');
      const byte = buf[at++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  while (at < buf.length) {
    const key = varint();
    const wire = key % 8;
    const number = Math.floor(key / 8);
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      out.push({ number, bytes: buf.subarray(at, at + length) });
      at += length;
    } else throw new Error(`protobuf wire type ${wire} is not expected in a StatusResponse`);
  }
  return out;
}
