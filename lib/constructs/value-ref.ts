import { ApiObject, JsonPatch } from 'cdk8s';
import { IConstruct } from 'constructs';

/**
 * A value reference stands in for a prop whose value is decided later, at render time. It renders as a unique
 * placeholder string that a renderer (the Helm chart renderer) replaces with an expression of its own. The
 * constructs know nothing about Helm: they only pass references through and skip checks that need a value.
 */
const PREFIX = '__knawd_value__';
const SUFFIX = '__';

/**
 * Regular expression source matching one reference and capturing its path, for a renderer that must match a
 * reference in context (a whole YAML line) rather than on its own.
 */
export const VALUE_REF_SOURCE = `${PREFIX}([A-Za-z0-9_.]+)${SUFFIX}`;
const PATTERN = new RegExp(VALUE_REF_SOURCE, 'g');

/** A reference to the value at `path` (for example `nodeSelector` or `image.pullPolicy`), typed as the prop it fills. */
export function valueRef<T>(path: string): T {
  return `${PREFIX}${path}${SUFFIX}` as unknown as T;
}

export function isValueRef(value: unknown): boolean {
  return typeof value === 'string' && value.startsWith(PREFIX) && value.endsWith(SUFFIX);
}

/** Whether `text` holds a reference anywhere, even a malformed one that no pattern would match. */
export function containsValueRef(text: string): boolean {
  return text.includes(PREFIX);
}

/** The paths of every reference inside a string, in order. */
export function valueRefPaths(text: string): string[] {
  return [...text.matchAll(PATTERN)].map((m) => m[1]);
}

/** `text` with every reference in it replaced by what `replace` makes of its path. */
export function replaceValueRefs(text: string, replace: (path: string) => string): string {
  return text.replace(PATTERN, (_, path: string) => replace(path));
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

/**
 * Sets a structured field of `apiObject`, or binds it when `value` is a reference; undefined leaves it out.
 * Patches apply to the L1 props form (Quantity and IntOrString objects), so `toProps` converts a concrete value.
 */
export function setValueField<T>(
  apiObject: ApiObject,
  pointer: string,
  value: T | undefined,
  toProps: (v: T) => unknown = structuredClone,
): void {
  if (value === undefined) return;
  if (isValueRef(value)) bindValueField(apiObject, pointer, value);
  else apiObject.addJsonPatch(JsonPatch.add(pointer, toProps(value)));
}

export function valueFieldsOf(apiObject: IConstruct): ValueField[] {
  return apiObject.node.metadata.filter((m) => m.type === FIELD_METADATA).map((m) => m.data as ValueField);
}
