/**
 * The image `helm test` (WasmTestPod) runs: the project's own WASI test image, pinned by digest, whose entry
 * point is a `.wasm` module (so crun's compat-smart handler takes it) and whose config names a numeric
 * non-root user (so `runAsNonRoot` needs no fixed `runAsUser`, which OpenShift's restricted-v2 refuses).
 *
 * PENDING: that image, and the data file with its digest, come from the installer-image work (branch
 * `image`). Until it lands this is the one place naming it, and the digest is a placeholder that no registry
 * serves: `helm test` cannot pass with it. Set test.image (chart) or `image` (WasmTestPod) meanwhile.
 */
export const WASM_TEST_IMAGE_REPOSITORY = 'quay.io/knawd/wasi-test';
export const PENDING_WASM_TEST_IMAGE_DIGEST = `sha256:${'0'.repeat(64)}`;
export const WASM_TEST_IMAGE = `${WASM_TEST_IMAGE_REPOSITORY}@${PENDING_WASM_TEST_IMAGE_DIGEST}`;
