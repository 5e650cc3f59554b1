/**
 * Pure text edits of Knative Serving's config-deployment `runtime-class-name` value: put our entry in, take it
 * out again, every other entry and comment kept.
 *
 * How Knative reads the value (knative.dev/serving pkg/deployment NewConfigFromMap, 1.15 to 1.24 alike):
 * sigs.k8s.io/yaml turns the YAML (1.1: `yes`/`on` are booleans) into JSON and unmarshals it into
 * map[RuntimeClass name]{selector: map[label]value}; unknown fields are ignored, scalars unmarshalled into a
 * string field become their text (`true` → "true"), an empty value means no entries. Every name must be a DNS
 * subdomain and every selector a valid label set, or Knative refuses the whole ConfigMap. A revision gets the
 * entry with the most selector labels that all match its labels, ties broken by the smaller name.
 * So: the existing text is read as YAML 1.1, and we write our name, keys and values double-quoted, which no
 * YAML version can read as anything but those strings. test/cluster/knative-configs.test.ts checks what we
 * write with Knative's own parser (tools/knative-serving).
 */
import { Document, isMap, parseDocument, Scalar, visit } from 'yaml';

export type Selector = Readonly<Record<string, string>>;

/** The outcome of an edit: the new value (null: remove the key), nothing to do, or why it is left alone. */
export type EditResult =
  | { readonly kind: 'write'; readonly value: string | null }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'refused'; readonly reason: string };

type Parsed = { readonly ok: true; readonly doc: Document } | { readonly ok: false; readonly reason: string };

function parse(text: string | undefined): Parsed {
  const doc: Document = parseDocument(text ?? '', { version: '1.1' });
  if (doc.errors.length > 0) return { ok: false, reason: `it is not YAML Knative can read (${doc.errors[0].message.split('\n')[0]})` };
  if (doc.contents === null || (doc.contents instanceof Scalar && doc.contents.value === null)) doc.contents = doc.createNode({});
  if (!isMap(doc.contents)) return { ok: false, reason: 'it is not a map of RuntimeClass names, so Knative refuses it as it is' };
  return { ok: true, doc };
}

/** An entry's selector as Knative sees it: no selector (null) matches every revision. */
function selectorOf(entry: unknown): Record<string, string> | null {
  const selector = entry && typeof entry === 'object' ? (entry as { selector?: unknown }).selector : undefined;
  if (!selector || typeof selector !== 'object') return null;
  return Object.fromEntries(Object.entries(selector).map(([k, v]) => [k, String(v)]));
}

function sameSelector(a: Record<string, string> | null, b: Selector): boolean {
  if (a === null) return false;
  const keys = Object.keys(b);
  return Object.keys(a).length === keys.length && keys.every((k) => a[k] === b[k]);
}

/** What a parsed value means, to compare two texts: sorted-key JSON, an empty value as `{}`. */
function meaning(doc: Document): string {
  const sorted = (v: unknown): unknown =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]))
      : v;
  return JSON.stringify(sorted(doc.toJS() ?? {}));
}

function quoted(doc: Document, value: unknown): ReturnType<Document['createNode']> {
  const node = doc.createNode(value);
  visit(node, {
    Scalar(_, scalar) {
      scalar.type = Scalar.QUOTE_DOUBLE;
    },
  });
  return node;
}

function quotedKey(name: string): Scalar {
  const key = new Scalar(name);
  key.type = Scalar.QUOTE_DOUBLE;
  return key;
}

/** `current` with the entry `name: {selector}` (replacing an entry of that name), other entries kept. */
export function withEntry(current: string | undefined, name: string, selector: Selector): EditResult {
  const parsed = parse(current);
  if (!parsed.ok) return { kind: 'refused', reason: parsed.reason };
  const { doc } = parsed;
  if (sameSelector(selectorOf(doc.toJS()[name]), selector)) return { kind: 'unchanged' };
  const ordered = Object.fromEntries(Object.keys(selector).sort().map((k) => [k, selector[k]]));
  doc.set(quotedKey(name), quoted(doc, { selector: ordered }));
  return { kind: 'write', value: doc.toString() };
}

/**
 * `current` without our entry, put back as it was in `previous` (the value before our first change; null when
 * the key was absent). Only while the entry is still ours — `name` with exactly `selector` — otherwise someone
 * changed it since and it is theirs. When nothing else changed since, the result is `previous` itself, byte
 * for byte.
 */
export function withoutEntry(current: string | undefined, previous: string | null, name: string, selector: Selector): EditResult {
  const parsed = parse(current);
  if (!parsed.ok) return { kind: 'refused', reason: parsed.reason };
  const { doc } = parsed;
  if (!sameSelector(selectorOf(doc.toJS()[name]), selector)) return { kind: 'unchanged' };
  const before = parse(previous ?? '');
  const previousEntry = before.ok ? before.doc.toJS()[name] : undefined;
  if (previousEntry === undefined) doc.delete(name);
  else doc.set(quotedKey(name), quoted(doc, previousEntry));
  if (before.ok && meaning(doc) === meaning(before.doc)) return { kind: 'write', value: previous };
  return { kind: 'write', value: doc.toString() };
}
