/**
 * The installer's effects, in one visible sequence per command:
 *   install: node lock → node object → target (auto: which one this node is; given: refused when the node
 *            contradicts it) → locate artifacts → detect (state, runtime binary) → plan → [drift check: stop
 *            here unless the node drifted] → the host can take it → pre-flight (the node's runtime loads the new
 *            config) → node pending, host changed → apply (state intent; each artifact copied to its temp file
 *            and verified, then all put in place; the other files; state) → take a restart slot → restart →
 *            verify (socket, CRI Status, the Node's runtimeHandlers; else roll back) → release the slot → record →
 *            node installed (readiness marker) / startup taint / Knative flag
 *   remove:  node lock → node object (with auto: the target, never refused) → state (else what is found) →
 *            node unlabelled → wait for pods using the handler → restore Knative → plan → apply configs → take a
 *            restart slot → restart → verify (handler gone) → release the slot → remove our files, directories
 *            and the state → host restored
 * A node this image has no build for (its architecture has none: lib/catalog/architectures.ts; or the image lacks
 * the ociType's build) is refused first, before the node lock: install labels it `failed` with the reason and
 * touches nothing on the host, plan refuses alike, status says why, remove runs as anywhere (node-support.ts).
 * A failed install labels the node `failed` and records the reason as an Event on it. Planning is pure
 * (plan/); everything that touches the node goes through {@link Effects}. `plan`, `status` (and its
 * `--cluster` view) and `wait-removed` live in commands/.
 *
 * Faults: before the first write the host must be able to take the run (host/prewrite.ts: writable, room,
 * configs unchanged since planned), or it is refused with nothing changed; a runtime that was not running is
 * not restarted (unless --start-stopped-runtime); a stop requested by SIGTERM/SIGINT (host/signals.ts) is
 * honoured at the step boundaries, with the step in progress finished first.
 *
 * The sequences live in install.ts and remove.ts, each a list of named steps; what both use is in
 * shared-steps.ts.
 */
export type { Effects, RunReport } from './effects';
export { install } from './install';
export { remove } from './remove';
