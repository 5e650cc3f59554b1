import { IConstruct } from 'constructs';

/**
 * Objects that exist only under a condition. With concrete props the constructs decide on their own; when the
 * deciding prop is a value reference they create the objects and mark them, and a renderer wraps them.
 */
export type RenderCondition =
  /** The target is an OpenShift one. */
  | 'openshift'
  /** The installer works with Knative Serving (patchKnative true, or auto on a cluster that serves it). */
  | 'knative'
  /** config-deployment's runtime-class-name is managed too (nested inside `knative`). */
  | 'knativeRuntimeClass'
  /** The node-restriction admission policy is installed (true, or auto where the cluster serves it). */
  | 'nodeRestriction';

const METADATA_TYPE = 'knawd:condition';

/** Whether an optional part is present: yes, no, or decided at render time by a condition. */
export type Inclusion = boolean | RenderCondition;

export function markConditional(scope: IConstruct, condition: RenderCondition): void {
  scope.node.addMetadata(METADATA_TYPE, condition);
}

/** Creates an optional part unless it is excluded, marked when its presence is decided at render time. */
export function includePart<T extends IConstruct>(inclusion: Inclusion, create: () => T): T | undefined {
  if (inclusion === false) return undefined;
  const part = create();
  if (inclusion !== true) markConditional(part, inclusion);
  return part;
}

/** The conditions a construct depends on, its own and its ancestors'. */
export function conditionsOf(construct: IConstruct): RenderCondition[] {
  return construct.node.scopes.flatMap((scope) =>
    scope.node.metadata.filter((m) => m.type === METADATA_TYPE).map((m) => m.data as RenderCondition),
  );
}
