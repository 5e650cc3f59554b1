/** Plain-object views of parsed TOML documents, as @iarna/toml returns them. */
export type TomlTable = { [key: string]: unknown };

export function isTable(value: unknown): value is TomlTable {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** The value at `path`, or undefined when a step is missing or not a table. */
export function getPath(root: TomlTable, path: readonly string[]): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (!isTable(node) || !Object.prototype.hasOwnProperty.call(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** Whether `path` is `prefix` or lies below it. */
export function pathStartsWith(path: readonly string[], prefix: readonly string[]): boolean {
  return prefix.length <= path.length && prefix.every((part, i) => path[i] === part);
}

/**
 * `base` with every leaf of `fragment` added, as appending the fragment's tables to the document would do.
 * Returns undefined when the fragment would redefine a value of `base` (TOML forbids that).
 */
export function mergeFragment(base: TomlTable, fragment: TomlTable): TomlTable | undefined {
  const merged: TomlTable = { ...base };
  for (const [key, value] of Object.entries(fragment)) {
    if (!Object.prototype.hasOwnProperty.call(merged, key)) {
      merged[key] = value;
      continue;
    }
    const existing = merged[key];
    if (!isTable(existing) || !isTable(value)) return undefined;
    const child = mergeFragment(existing, value);
    if (child === undefined) return undefined;
    merged[key] = child;
  }
  return merged;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a instanceof Date || b instanceof Date) {
    // @iarna/toml keeps local dates and times as Date subclasses whose toISOString carries the TOML form.
    return a instanceof Date && b instanceof Date && a.constructor === b.constructor && a.toISOString() === b.toISOString();
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (isTable(a) || isTable(b)) {
    if (!isTable(a) || !isTable(b)) return false;
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((key) => Object.prototype.hasOwnProperty.call(b, key) && deepEqual(a[key], b[key]))
    );
  }
  return Object.is(a, b);
}
