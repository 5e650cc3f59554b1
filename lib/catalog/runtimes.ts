/**
 * The runtime catalog: each crun build we ship, the engine library crun dlopen()s at run time, and the targets
 * it is built for.
 */
import { TARGET_NAMES, TargetName } from './targets';

export interface RuntimeSpec {
  /** Name accepted as ociType / OCI_TYPE / --runtime; also the name of its build in the image's artifacts. */
  readonly name: string;
  /** The WebAssembly engine crun's handler uses. */
  readonly engine: string;
  /** File name of the engine library crun dlopen()s. */
  readonly library: string;
  /**
   * Whether a module can serve (open a listening socket) under this build, and why. WASI preview 1 has no call
   * that opens a socket: a module serves only where the engine adds one and crun's handler passes it on.
   */
  readonly serves: { readonly able: boolean; readonly because: string };
  /** Targets this build is shipped for. */
  readonly targets: readonly TargetName[];
}

const ALL_BUT_PLUGINS = TARGET_NAMES.filter((t) => t !== 'rhel8_plugins');

/**
 * Which runtime ships for which target: the one place that says it (the image's artifacts.json records which build
 * serves each pair, from this list). Every build is hermetic (its own loader and libraries under the host
 * prefix), so it runs on every target's userland, Ubuntu 18.04's glibc 2.27 included. rhel8_plugins is the
 * target of the WasmEdge build with plugins: it ships that one only.
 */
export const RUNTIMES = [
  {
    name: 'crun-wasmedge',
    engine: 'WasmEdge',
    library: 'libwasmedge.so.0',
    serves: { able: true, because: "WasmEdge's socket extension of WASI preview 1 (sock_open_v2, sock_bind_v2, sock_listen_v2, sock_accept_v2) is part of the WASI module crun's handler instantiates" },
    targets: TARGET_NAMES,
  },
  {
    name: 'crun-wasmtime',
    engine: 'wasmtime',
    library: 'libwasmtime.so',
    serves: { able: false, because: "wasmtime 26's C API preopens directories but no sockets (no wasi_config_preopen_socket), and WASI preview 1 cannot open one: crun's wasmtime handler can run jobs, not services" },
    targets: ALL_BUT_PLUGINS,
  },
  {
    name: 'crun-wasm-nodejs',
    // Our wasm_nodejs handler (runtime-artifacts/crun-patches/0004) on Debian's libnode (Node.js 20).
    engine: 'Node.js (node:wasi)',
    library: 'libnode.so.115',
    serves: { able: false, because: "Node.js's WASI (node:wasi) has no sockets" },
    targets: ALL_BUT_PLUGINS,
  },
] as const satisfies readonly RuntimeSpec[];

export type RuntimeName = (typeof RUNTIMES)[number]['name'];

export const RUNTIME_NAMES: readonly RuntimeName[] = RUNTIMES.map((r) => r.name);
