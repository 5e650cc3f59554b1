/**
 * The project's WASM HTTP service image (runtime-artifacts/wasm-http): a module that answers `GET /` and
 * `GET /healthz` on $PORT, what the README's Deployment and Knative Service run and the tests and the demo
 * request. `npm run image` builds it and records its name and digest in wasm-service-image.json (a test keeps it
 * current). It serves only under a build whose engine can serve (RuntimeSpec.serves).
 */
import recorded from './wasm-service-image.json';

/** The image by the name it is imported and published under (`quay.io/knawd/wasm-http:1`). */
export const WASM_SERVICE_IMAGE_NAME = recorded.name;
/** The same image pinned by its digest. */
export const WASM_SERVICE_IMAGE = `${recorded.name.slice(0, recorded.name.lastIndexOf(':'))}@${recorded.digest}`;
/** What `GET /` answers: one line, `hello from wasm: engine=<engine> host=<$HOSTNAME> requests=<n>`. */
export const WASM_SERVICE_ANSWER = /^hello from wasm: engine=(\S+) host=(\S+) requests=(\d+)$/;
