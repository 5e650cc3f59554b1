/**
 * How a rollout across nodes is paced and seen, as the constructs, the chart and the installer agree on it:
 * the restart budget's Leases, the status annotation on the Node, the agent that keeps the installer pod's
 * readiness marker and runs the drift check, and the optional startup taint.
 */
import { isLabelKey } from './knative';

/**
 * The restart budget: at most K nodes restart their container runtime at once. Each slot is a
 * coordination.k8s.io Lease in the installer's namespace named `<prefix><index>`, index 0 … K-1; the constructs
 * create them, the installer only reads and updates them.
 */
export const RESTART_LEASE_PREFIX = 'knawd-restart-';
/** The installer's namespace, where its Leases live, unless the pod says otherwise. */
export const DEFAULT_INSTALLER_NAMESPACE = 'knawd';
export const DEFAULT_MAX_CONCURRENT_RESTARTS = 1;
/** The most slots the constructs and the chart create (and the installer's Role names, one by one). */
export const MAX_CONCURRENT_RESTARTS_LIMIT = 100;

export function restartLeaseName(index: number): string {
  return `${RESTART_LEASE_PREFIX}${index}`;
}

/**
 * A node waiting for a restart slot has a ticket: a Lease `<prefix><node>` in the same namespace, labelled
 * {@link RESTART_TICKET_LABEL}, holder the node; the API server's creationTimestamp orders the queue.
 */
export const RESTART_TICKET_PREFIX = 'knawd-restart-wait-';
export const RESTART_TICKET_LABEL = 'knawd.dev/restart-ticket';

export function restartLeaseNames(slots: number): string[] {
  return Array.from({ length: slots }, (_, i) => restartLeaseName(i));
}

export function isSlotCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_CONCURRENT_RESTARTS_LIMIT;
}

export const SLOT_COUNT_RULE = `a whole number from 1 to ${MAX_CONCURRENT_RESTARTS_LIMIT}`;

/**
 * How long a slot stays taken after its holder's last renewal: a holder that dies frees its slot this long
 * after it last renewed. Holders renew every third of it, so an API server that does not answer for this long
 * is what it takes to lose a slot that is still in use.
 */
export const DEFAULT_RESTART_LEASE_SECONDS = 15;

/**
 * The installer's last report about its node, as JSON (`{"state","since","reason","message","target","runtime"}`):
 * what `knawd-installer status --cluster` prints. Descriptive only: the state label stays what the RuntimeClass
 * schedules on, the host-changed label what the uninstall waits on. Removed once the host is restored.
 */
export const NODE_STATUS_ANNOTATION = 'knawd.dev/crun-wasm-status';
/** The longest annotation value the installer writes (and the node-restriction policy lets it write). */
export const NODE_STATUS_ANNOTATION_MAX_LENGTH = 1024;

/**
 * The installer container's long-running process: a small static program in the image (runtime-artifacts/agent)
 * that runs the installer, stays idle once it succeeded, re-runs it with {@link DRIFT_CHECK_FLAG} every so often,
 * forwards SIGTERM to a running installer and answers the readiness probe from the marker file.
 */
export const AGENT_PATH = '/usr/local/bin/knawd-agent';
/** Where the readiness marker lives in the installer pod: an emptyDir of its own (the root file system is read-only). */
export const READY_DIR = '/run/knawd';
export const READY_FILE = `${READY_DIR}/ready`;
/** The installer flag the agent adds for its periodic runs. */
export const DRIFT_CHECK_FLAG = '--drift-check';
/** How often the staying installer re-checks its node, in seconds; 0 never. */
export const DEFAULT_DRIFT_CHECK_SECONDS = 300;
export const MAX_DRIFT_CHECK_SECONDS = 86400;

/**
 * A taint the installer removes from its node once the node is installed (e.g. a node provisioner's startup
 * taint). Key and effect name a taint on a Node (there is at most one per pair); its value does not matter.
 */
export interface StartupTaint {
  readonly key: string;
  readonly effect: TaintEffect;
}

export const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] as const;
export type TaintEffect = (typeof TAINT_EFFECTS)[number];
export const TAINT_RULE = `KEY:EFFECT with a label key and an effect of ${TAINT_EFFECTS.join(', ')}, such as knawd.dev/crun-wasm-not-ready:NoSchedule`;

/** `key:effect` → the taint, or undefined when it is not one. */
export function parseTaint(text: string): StartupTaint | undefined {
  const colon = text.lastIndexOf(':');
  if (colon < 0) return undefined;
  const key = text.slice(0, colon);
  const effect = text.slice(colon + 1);
  if (!(TAINT_EFFECTS as readonly string[]).includes(effect) || !isLabelKey(key)) return undefined;
  return { key, effect: effect as TaintEffect };
}

export function formatTaint(taint: StartupTaint): string {
  return `${taint.key}:${taint.effect}`;
}
