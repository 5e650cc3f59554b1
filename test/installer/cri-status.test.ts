/**
 * The installer's CRI Status decoding (lib/installer/runtime/cri-status.ts) against the answers real CRI-O
 * daemons gave (test/fixtures/cri, captured with one handler CRI-O loaded and one it ignored).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeListPodSandboxResponse, decodeStatusResponse, servedHandlers } from '../../lib/installer/runtime/cri-status';

const REPO = join(__dirname, '..', '..');

const FIXTURES = join(REPO, 'test', 'fixtures', 'cri');

describe.each(['v1.36.3', 'v1.34.0'])('CRI-O %s Status answer', (version) => {
  const status = decodeStatusResponse(readFileSync(join(FIXTURES, `crio-${version}-status-verbose.pb`)));
  const crictl = JSON.parse(readFileSync(join(FIXTURES, `crio-${version}-crictl-info.json`), 'utf8')) as { runtimeHandlers: Array<{ name?: string }>; config: unknown };

  test('runtime_handlers: the loaded handler and runc (and the default as ""), not the ignored one', () => {
    expect([...status.runtimeHandlers].sort()).toEqual(['', 'crun-ok', 'runc']);
    expect(crictl.runtimeHandlers.map((h) => h.name ?? '').sort()).toEqual([...status.runtimeHandlers].sort());
    expect(servedHandlers(status)).not.toContain('crun-bad');
    expect(status.conditions.find((c) => c.type === 'RuntimeReady')?.status).toBe(true);
  });

  test('verbose info has one key, config: its crio.Runtimes are the loaded handlers only', () => {
    expect(Object.keys(status.info)).toEqual(['config']);
    const config = JSON.parse(status.info.config) as { crio: { Runtimes: Record<string, { AllowedAnnotations?: string[] }> } };
    expect(Object.keys(config.crio.Runtimes).sort()).toEqual(['crun-ok', 'runc']);
    expect(config.crio.Runtimes['crun-ok'].AllowedAnnotations).toEqual(['module.wasm.image/variant', 'run.oci.']);
    expect(config).toEqual(crictl.config);
  });
});

describe('ListPodSandbox answer', () => {
  // protobuf by hand: a length-delimited field is tag (number << 3 | 2), length, bytes; a varint field tag (number << 3), value.
  const bytes = (n: number, value: Buffer): Buffer => Buffer.concat([Buffer.from([(n << 3) | 2, value.length]), value]);
  const text = (n: number, value: string): Buffer => bytes(n, Buffer.from(value));
  const varint = (n: number, value: number): Buffer => Buffer.from([n << 3, value]);
  const sandbox = (name: string, namespace: string, handler: string, state: number): Buffer =>
    bytes(1, Buffer.concat([text(1, `id-${name}`), bytes(2, Buffer.concat([text(1, name), text(2, 'uid'), text(3, namespace), varint(4, 1)])), varint(3, state), varint(4, 99), text(7, handler)]));

  test('each sandbox with its pod, handler and readiness (SANDBOX_READY = 0, SANDBOX_NOTREADY = 1)', () => {
    const message = Buffer.concat([sandbox('old-wasm', 'default', 'crun', 0), sandbox('gone', 'default', 'crun', 1), sandbox('plain', 'kube-system', '', 0)]);
    expect(decodeListPodSandboxResponse(message)).toEqual([
      { namespace: 'default', name: 'old-wasm', runtimeHandler: 'crun', ready: true },
      { namespace: 'default', name: 'gone', runtimeHandler: 'crun', ready: false },
      { namespace: 'kube-system', name: 'plain', runtimeHandler: '', ready: true },
    ]);
    expect(decodeListPodSandboxResponse(Buffer.alloc(0))).toEqual([]);
  });
});
