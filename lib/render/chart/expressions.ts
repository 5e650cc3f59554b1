/**
 * How each value reference the chart passes to the constructs becomes a Helm expression. Expressions use `$`
 * so they work inside `with` blocks.
 */
export type ValueExpression =
  /** A string scalar: rendered quoted. */
  | { readonly kind: 'scalar'; readonly expr: string }
  /** A map or list filling a field as a whole; left out when empty. */
  | { readonly kind: 'structured'; readonly expr: string }
  /** A list of names rendered as `- name: <n>` objects (imagePullSecrets). */
  | { readonly kind: 'names'; readonly expr: string };

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
  testImage: { kind: 'scalar', expr: '$.Values.test.image' },
  nodeSelector: { kind: 'structured', expr: '$.Values.nodeSelector' },
  tolerations: { kind: 'structured', expr: '$.Values.tolerations' },
  resources: { kind: 'structured', expr: '$.Values.resources' },
  updateStrategy: { kind: 'structured', expr: '$.Values.updateStrategy' },
  imagePullSecrets: { kind: 'names', expr: '$.Values.imagePullSecrets' },
};

export function expressionFor(path: string): ValueExpression {
  const e = VALUE_EXPRESSIONS[path];
  if (!e) throw new Error(`chart renderer: no Helm expression for value reference "${path}"`);
  return e;
}
