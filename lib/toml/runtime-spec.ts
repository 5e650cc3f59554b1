import { HANDLER_RULE, isHandlerName } from '../catalog/node-contract';
import { ConfigPatchError } from './errors';

/** The runtime handler to register with the container runtime. */
export interface RuntimeSpec {
  /** Name of the handler that a RuntimeClass refers to, e.g. `crun-wasm`. */
  readonly handler: string;
  /** Absolute path of the crun binary on the node, e.g. `/opt/knawd/bin/crun-wasmtime`. */
  readonly binaryPath: string;
}

export function validateHandler(handler: string): void {
  if (!isHandlerName(handler)) throw new ConfigPatchError(`invalid runtime handler name ${JSON.stringify(handler)}: use ${HANDLER_RULE}`);
}

// A lone surrogate cannot be encoded as UTF-8, so it cannot be written into a config file.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Checks a host path that we write into a config as a TOML string. */
export function validateAbsolutePath(path: string, what: string): void {
  // Control characters would need escapes that some runtimes' parsers mishandle; no real path has them.
  if (!path.startsWith('/') || /[\u0000-\u001f\u007f]/.test(path) || LONE_SURROGATE.test(path)) {
    throw new ConfigPatchError(
      `invalid ${what} ${JSON.stringify(path)}: give an absolute path (starting with "/") without control characters`,
    );
  }
}

export function validateRuntimeSpec(spec: RuntimeSpec): void {
  validateHandler(spec.handler);
  validateAbsolutePath(spec.binaryPath, 'binaryPath');
}
