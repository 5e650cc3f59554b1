/**
 * The image `helm test` (WasmTestPod) runs: the project's own WASI test image, pinned by digest, whose entry
 * point is a `.wasm` module (so crun's compat-smart handler takes it) and whose config names a numeric
 * non-root user (so `runAsNonRoot` needs no fixed `runAsUser`, which OpenShift's restricted-v2 refuses).
 * `npm run image` builds it and records its name and digest in wasi-test-image.json (a test keeps it current).
 */
import recorded from './wasi-test-image.json';

const repository = recorded.name.slice(0, recorded.name.lastIndexOf(':'));

export const WASM_TEST_IMAGE_REPOSITORY = repository;
export const WASM_TEST_IMAGE = `${repository}@${recorded.digest}`;
