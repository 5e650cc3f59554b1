/**
 * The runtime catalog: each crun build we ship, the engine library crun dlopen()s at run time, and the targets
 * it is built for.
 */
import { TARGET_NAMES, TargetName } from './targets';

export interface RuntimeSpec {
  /** Name accepted as ociType / OCI_TYPE / --runtime; also the crun binary's file name in the artifacts. */
  readonly name: string;
  /** The WebAssembly engine crun's handler uses. */
  readonly engine: string;
  /** File name of the engine library next to the binary in the artifacts. */
  readonly library: string;
  /** Targets this build is shipped for. */
  readonly targets: readonly TargetName[];
}

const ALL_BUT_PLUGINS = TARGET_NAMES.filter((t) => t !== 'rhel8_plugins');
// Current WasmEdge releases and libnode need glibc >= 2.28; Ubuntu 18.04 has 2.27, so only wasmtime ships there.
const NEEDS_GLIBC_2_28 = TARGET_NAMES.filter((t) => t !== 'ubuntu_18_04');

export const RUNTIMES = [
  { name: 'crun-wasmedge', engine: 'WasmEdge', library: 'libwasmedge.so.0', targets: NEEDS_GLIBC_2_28 },
  { name: 'crun-wasmtime', engine: 'wasmtime', library: 'libwasmtime.so', targets: ALL_BUT_PLUGINS },
  {
    name: 'crun-wasm-nodejs',
    engine: 'Node.js (wasm-nodejs)',
    library: 'libnode.so',
    targets: ALL_BUT_PLUGINS.filter((t) => NEEDS_GLIBC_2_28.includes(t)),
  },
] as const satisfies readonly RuntimeSpec[];

export type RuntimeName = (typeof RUNTIMES)[number]['name'];

export const RUNTIME_NAMES: readonly RuntimeName[] = RUNTIMES.map((r) => r.name);
