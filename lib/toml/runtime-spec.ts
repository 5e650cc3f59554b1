import { ConfigPatchError } from './errors';

/** The runtime handler to register with the container runtime. */
export interface RuntimeSpec {
  /** Name of the handler that a RuntimeClass refers to, e.g. `crun-wasm`. */
  readonly handler: string;
  /** Absolute path of the crun binary on the node, e.g. `/opt/knawd/bin/crun-wasmtime`. */
  readonly binaryPath: string;
}

// Kubernetes requires RuntimeClass handlers to be DNS labels; that also keeps them bare TOML keys.
const HANDLER_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const MAX_HANDLER_LENGTH = 63;

export function validateHandler(handler: string): void {
  if (handler.length > MAX_HANDLER_LENGTH || !HANDLER_PATTERN.test(handler)) {
    throw new ConfigPatchError(
      `invalid runtime handler name ${JSON.stringify(handler)}: use 1-${MAX_HANDLER_LENGTH} lower-case letters, ` +
        `digits or '-', starting and ending with a letter or digit (e.g. "crun-wasm")`,
    );
  }
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
