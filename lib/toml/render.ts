/** Writes the few TOML forms our managed tables use, in the style of containerd's and CRI-O's own files. */

const BARE_KEY = /^[A-Za-z0-9_-]+$/;

export type RenderedValue = string | boolean | readonly string[];

export function renderKey(path: readonly string[]): string {
  return path.map((part) => (BARE_KEY.test(part) ? part : renderString(part))).join('.');
}

function renderString(value: string): string {
  // Values are validated free of control characters, so JSON's escapes are all TOML escapes too.
  return JSON.stringify(value);
}

function renderValue(value: RenderedValue): string {
  if (typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return renderString(value);
  return `[${value.map(renderString).join(', ')}]`;
}

/** One `[table]` with its keys, as lines. */
export function renderTable(path: readonly string[], entries: ReadonlyArray<readonly [string, RenderedValue]>): string[] {
  return [`[${renderKey(path)}]`, ...entries.map(([key, value]) => `  ${renderKey([key])} = ${renderValue(value)}`)];
}
