import { IConstruct } from 'constructs';

/**
 * A value reference stands in for a prop whose value is decided later, at render time. It renders as a unique
 * placeholder string that a renderer (the Helm chart renderer) replaces with an expression of its own. The
 * constructs know nothing about Helm: they only pass references through and skip checks that need a value.
 */
const PREFIX = '__knawd_value__';
const SUFFIX = '__';
const PATTERN = /__knawd_value__([A-Za-z0-9_.]+)__/g;

/** A reference to the value at `path` (for example `nodeSelector` or `image.pullPolicy`), typed as the prop it fills. */
export function valueRef<T>(path: string): T {
  return `${PREFIX}${path}${SUFFIX}` as unknown as T;
}

export function isValueRef(value: unknown): boolean {
  return typeof value === 'string' && value.startsWith(PREFIX) && value.endsWith(SUFFIX);
}

/** The paths of every reference inside a string, in order. */
export function valueRefPaths(text: string): string[] {
  return [...text.matchAll(PATTERN)].map((m) => m[1]);
}

const FIELD_METADATA = 'knawd:value-field';

/** A field of a rendered object that a value reference fills as a whole (a map or a list). */
export interface ValueField {
  /** JSON pointer into the rendered object. */
  readonly pointer: string;
  /** The referenced value's path. */
  readonly path: string;
}

/**
 * Structured values (maps, lists) cannot pass through the typed Kubernetes converters as a placeholder string,
 * so a construct leaves such a field out and records here which reference fills it; a renderer inserts it.
 */
export function bindValueField(apiObject: IConstruct, pointer: string, ref: unknown): void {
  const [path] = valueRefPaths(String(ref));
  apiObject.node.addMetadata(FIELD_METADATA, { pointer, path } satisfies ValueField);
}

export function valueFieldsOf(apiObject: IConstruct): ValueField[] {
  return apiObject.node.metadata.filter((m) => m.type === FIELD_METADATA).map((m) => m.data as ValueField);
}
