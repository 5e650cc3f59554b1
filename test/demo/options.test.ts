/**
 * The demo's argument parsing and its disk refusal, without a cluster: bad input is one line naming what is
 * accepted; the engine order ends with the chosen one; too little disk says how much is needed.
 */
import * as os from 'os';
import { BadInput, DEFAULT_PORT, engineOrder, parseArgs, SHIPPED } from '../../demo/options';
import { Refusal, requireDisk } from '../../demo/preflight';

describe('npm run demo arguments', () => {
  test('defaults, --keep, --knative, --runtime, --port, down', () => {
    expect(parseArgs([])).toEqual({ command: 'run', keep: false, knative: false, runtime: 'crun-wasmedge', port: DEFAULT_PORT });
    expect(parseArgs(['--keep', '--runtime', 'crun-wasmtime', '--port', '20000'])).toEqual({ command: 'run', keep: true, knative: false, runtime: 'crun-wasmtime', port: 20000 });
    expect(parseArgs(['--knative'])).toEqual({ command: 'run', keep: false, knative: true, runtime: 'crun-wasmedge', port: DEFAULT_PORT });
    expect(parseArgs(['down'])).toEqual({ command: 'down' });
  });

  test.each([
    [['--runtime'], /^--runtime needs a value; usage: /],
    [['--runtime', 'crun-wasmer'], /^--runtime crun-wasmer: unknown ociType; accepted: crun-wasmedge, crun-wasmtime, crun-wasm-nodejs$/],
    [['--port', '80'], /^--port 80: expected a TCP port from 1024 to 65535$/],
    [['--port', '1e4'], /^--port 1e4: expected a TCP port/],
    [['down', '--knative'], /^down takes no other argument; usage: /],
    [['down', '--keep'], /^down takes no other argument; usage: /],
    [['--keep', 'down'], /^down takes no other argument; usage: /],
  ])('%j is refused: %s', (argv, message) => {
    expect(() => parseArgs(argv)).toThrow(BadInput);
    expect(() => parseArgs(argv)).toThrow(message);
  });

  test('the engines run in catalog order with the chosen one last (the one a kept cluster keeps)', () => {
    expect(SHIPPED).toEqual(['crun-wasmedge', 'crun-wasmtime', 'crun-wasm-nodejs']);
    expect(engineOrder('crun-wasmedge')).toEqual(['crun-wasmtime', 'crun-wasm-nodejs', 'crun-wasmedge']);
    expect(engineOrder('crun-wasmtime')).toEqual(['crun-wasmedge', 'crun-wasm-nodejs', 'crun-wasmtime']);
    expect(engineOrder('crun-wasm-nodejs')).toEqual(['crun-wasmedge', 'crun-wasmtime', 'crun-wasm-nodejs']);
  });
});

describe('the disk refusal', () => {
  test('says what needs how much, where, and what there is', () => {
    const tooMuch = 1024 ** 5;
    expect(() => requireDisk([{ path: os.tmpdir(), bytes: tooMuch, why: 'the node' }])).toThrow(Refusal);
    expect(() => requireDisk([{ path: os.tmpdir(), bytes: tooMuch, why: 'the node' }])).toThrow(
      new RegExp(`^too little disk: the node needs 1048576 GiB free on the file system of ${os.tmpdir()}, which has \\d+\\.\\d GiB$`),
    );
    expect(() => requireDisk([{ path: os.tmpdir(), bytes: 1, why: 'the node' }])).not.toThrow();
  });
});
