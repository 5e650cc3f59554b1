import { RESTART_LEASE_PREFIX } from '../../catalog';
import { UNINSTALL_DEADLINE_MARGIN_SECONDS, UNINSTALL_RESTORE_SECONDS } from '../../constructs/settings';

/**
 * How each value reference the chart passes to the constructs becomes a Helm expression. Expressions use `$`
 * so they work inside `with` blocks.
 */

/** The loop variable of a repeated object (object-template.ts): the slot's index. */
export const SLOT_VARIABLE = '$slot';

export type ValueExpression =
  /** A string scalar: rendered quoted. */
  | { readonly kind: 'scalar'; readonly expr: string }
  /** An integer field: rendered unquoted. */
  | { readonly kind: 'integer'; readonly expr: string }
  /** A map or list filling a field as a whole; left out when empty. */
  | { readonly kind: 'structured'; readonly expr: string }
  /** A list of names rendered as `- name: <n>` objects (imagePullSecrets). */
  | { readonly kind: 'names'; readonly expr: string }
  /** A list of `count` strings, each `item` with {@link SLOT_VARIABLE} the index (the restart slots' names). */
  | { readonly kind: 'indexed'; readonly count: string; readonly item: string };

/** The value that sets the restart budget's K, as a number. */
const SLOTS = 'int $.Values.maxConcurrentRestarts';
const UNINSTALL_PODS_TIMEOUT = 'int $.Values.uninstallPodsTimeoutSeconds';
const SLOT_NAME = `printf "${RESTART_LEASE_PREFIX}%d" ${SLOT_VARIABLE}`;

export const VALUE_EXPRESSIONS: Readonly<Record<string, ValueExpression>> = {
  target: { kind: 'scalar', expr: '$.Values.target' },
  ociType: { kind: 'scalar', expr: '$.Values.ociType' },
  image: { kind: 'scalar', expr: 'include "knawd-deployer.image" $' },
  pullPolicy: { kind: 'scalar', expr: '$.Values.image.pullPolicy' },
  logLevel: { kind: 'scalar', expr: '$.Values.logLevel' },
  autoRestart: { kind: 'scalar', expr: '$.Values.autoRestart' },
  patchKnative: { kind: 'scalar', expr: 'include "knawd-deployer.patchKnative" $' },
  knativeRuntimeClassSelector: { kind: 'scalar', expr: 'include "knawd-deployer.knativeRuntimeClassSelector" $' },
  namespace: { kind: 'scalar', expr: '$.Release.Namespace' },
  priorityClassName: { kind: 'scalar', expr: '$.Values.priorityClassName' },
  runtimeClassName: { kind: 'scalar', expr: '$.Values.runtimeClass.name' },
  handler: { kind: 'scalar', expr: '$.Values.runtimeClass.handler' },
  hostPrefix: { kind: 'scalar', expr: '$.Values.hostPrefix' },
  maxConcurrentRestarts: { kind: 'scalar', expr: SLOTS },
  driftCheckSeconds: { kind: 'scalar', expr: 'int $.Values.driftCheckSeconds' },
  uninstallPodsTimeoutSeconds: { kind: 'scalar', expr: UNINSTALL_PODS_TIMEOUT },
  uninstallPodsTimeoutSecondsWait: { kind: 'scalar', expr: `add (${UNINSTALL_PODS_TIMEOUT}) ${UNINSTALL_RESTORE_SECONDS}` },
  uninstallPodsTimeoutSecondsDeadline: { kind: 'integer', expr: `add (${UNINSTALL_PODS_TIMEOUT}) ${UNINSTALL_RESTORE_SECONDS + UNINSTALL_DEADLINE_MARGIN_SECONDS}` },
  startupTaint: { kind: 'scalar', expr: 'include "knawd-deployer.startupTaint" $' },
  // A CEL string literal inside the node-restriction policy: JSON's quoting is CEL's (the schema allows only a label key).
  startupTaintKeyCel: { kind: 'scalar', expr: 'toJson $.Values.startupTaint.key' },
  // Only inside a repeated object, where the loop defines the slot.
  restartSlotName: { kind: 'scalar', expr: SLOT_NAME },
  restartLeaseNames: { kind: 'indexed', count: SLOTS, item: SLOT_NAME },
  testImage: { kind: 'scalar', expr: '$.Values.test.image' },
  nodeSelector: { kind: 'structured', expr: '$.Values.nodeSelector' },
  tolerations: { kind: 'structured', expr: '$.Values.tolerations' },
  resources: { kind: 'structured', expr: '$.Values.resources' },
  updateStrategy: { kind: 'structured', expr: '$.Values.updateStrategy' },
  imagePullSecrets: { kind: 'names', expr: '$.Values.imagePullSecrets' },
};

/** The count of a repeated object's copies (repeat.ts), as a Helm expression. */
export function countFor(path: string): string {
  const e = expressionFor(path);
  if (e.kind !== 'scalar') throw new Error(`chart renderer: ${path} is not a scalar, so it cannot count copies`);
  return e.expr;
}

export function expressionFor(path: string): ValueExpression {
  const e = VALUE_EXPRESSIONS[path];
  if (!e) throw new Error(`chart renderer: no Helm expression for value reference "${path}"`);
  return e;
}
