import { IConstruct } from 'constructs';
import { isValueRef, valueRefPaths } from './value-ref';

/**
 * Objects that exist once per slot of a count. With a concrete count a construct creates the copies itself;
 * when the count is a value reference it creates one object, marked, whose per-copy fields are references too,
 * and a renderer repeats it (the chart: a `range` over the count).
 */
const METADATA_TYPE = 'knawd:repeat';

/** What a renderer needs to repeat an object: the path of the count's value reference. */
export interface Repetition {
  readonly countPath: string;
}

/** The copies' indices for a concrete count, or one marked object for a reference. */
export function repeatOver(count: number, create: (index: number | undefined) => IConstruct): void {
  if (!isValueRef(count)) {
    for (let i = 0; i < count; i++) create(i);
    return;
  }
  const [countPath] = valueRefPaths(String(count));
  create(undefined).node.addMetadata(METADATA_TYPE, { countPath } satisfies Repetition);
}

export function repetitionOf(construct: IConstruct): Repetition | undefined {
  for (const scope of construct.node.scopes) {
    const found = scope.node.metadata.find((m) => m.type === METADATA_TYPE);
    if (found) return found.data as Repetition;
  }
  return undefined;
}
