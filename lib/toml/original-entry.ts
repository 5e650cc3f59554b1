/**
 * The runtime entry the original knawd-deployer (1.x) put into a runtime's main config, recognised by its exact
 * shape and taken out with every other byte kept. Its manager rewrote the whole file from a parsed document, so
 * the entry is a run of `[header]` tables (`…runtimes.crun`, `…runtimes.crun.options`); an entry of that name
 * with any other content, or written in another form, is someone else's and is never touched.
 */
import { ConfigPatchError } from './errors';
import { scanStatements } from './statements';
import { deepEqual, getPath, isTable, pathStartsWith, TomlTable } from './tree';
import { parseToml } from './verify';

/** Which config the entry is in: containerd's (config.toml v2, microk8s' template) or CRI-O's crio.conf. */
export type OriginalConfigKind = 'containerd' | 'crio';

/** What the original's manager wrote, as parsed TOML, for a handler name and a crun path. */
export interface OriginalEntryShape {
  readonly kind: OriginalConfigKind;
  readonly handler: string;
  readonly crunPath: string;
  /** containerd: the entry's pod_annotations, in the manager's order. */
  readonly podAnnotations: readonly string[];
  /** CRI-O: the entry's runtime_root. */
  readonly runtimeRoot: string;
}

export type OriginalEntryFinding =
  | { readonly state: 'absent' }
  | { readonly state: 'original'; readonly path: readonly string[] }
  /** An entry of the handler's name that is not the original's: left alone, `why` says how it differs. */
  | { readonly state: 'foreign'; readonly path: readonly string[]; readonly why: string };

export function entryPath(shape: Pick<OriginalEntryShape, 'kind' | 'handler'>): string[] {
  return shape.kind === 'containerd'
    ? ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', shape.handler]
    : ['crio', 'runtime', 'runtimes', shape.handler];
}

function expectedEntry(shape: OriginalEntryShape): TomlTable {
  return shape.kind === 'containerd'
    ? {
        runtime_type: 'io.containerd.runc.v2',
        privileged_without_host_devices: false,
        pod_annotations: [...shape.podAnnotations],
        options: { BinaryName: shape.crunPath },
      }
    : { runtime_type: 'oci', runtime_path: shape.crunPath, runtime_root: shape.runtimeRoot };
}

/** The tables (by header) that hold the entry, and whether it is written only in them. */
function entryTables(text: string, path: readonly string[], source: string): { lines: number[]; headersOnly: boolean } {
  const lines: number[] = [];
  let headersOnly = true;
  for (const s of scanStatements(text, source)) {
    if (s.kind === 'table' && pathStartsWith(s.path, path)) lines.push(s.line);
    else if (s.kind === 'array-table' && pathStartsWith(s.path, path)) headersOnly = false;
    else if (s.kind === 'key' && pathStartsWith(s.path, path) && !pathStartsWith(s.path.slice(0, s.tableDepth), path)) headersOnly = false;
  }
  return { lines, headersOnly: headersOnly && lines.length > 0 };
}

/** Whether `text` holds the original's entry, someone else's of the same name, or none. */
export function findOriginalEntry(text: string, shape: OriginalEntryShape, source: string): OriginalEntryFinding {
  const path = entryPath(shape);
  const found = getPath(parseToml(text, source), path);
  if (found === undefined) return { state: 'absent' };
  if (!isTable(found)) return { state: 'foreign', path, why: 'it is not a table' };
  const expected = expectedEntry(shape);
  if (!deepEqual(found, expected)) {
    const differing = [...new Set([...Object.keys(found), ...Object.keys(expected)])].filter((k) => !deepEqual(found[k], expected[k])).sort();
    return { state: 'foreign', path, why: `${differing.join(', ')} differ from what the original knawd-deployer wrote` };
  }
  if (!entryTables(text, path, source).headersOnly) return { state: 'foreign', path, why: 'it is not written as [table] headers, as the original wrote it' };
  return { state: 'original', path };
}

/**
 * `text` without the original's entry: the lines from each of its table headers up to the next statement
 * outside it, and the blank lines that separated it from what came before when it ends the file. Checked:
 * the result parses as `text` without the entry, nothing else.
 */
export function removeOriginalEntry(text: string, shape: OriginalEntryShape, source: string): string {
  const finding = findOriginalEntry(text, shape, source);
  if (finding.state !== 'original') return text;
  const path = finding.path;
  const statements = scanStatements(text, source);
  const lines = text.split('\n');
  const drop = new Set<number>();
  let first = Infinity;
  let endsFile = false;
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i];
    if (s.kind !== 'table' || !pathStartsWith(s.path, path)) continue;
    first = Math.min(first, s.line);
    const next = statements.slice(i + 1).find((n) => n.kind !== 'key');
    let last = next ? next.line - 1 : lines.length;
    // Up to the next table's header, keeping comments written right above it (they belong to it).
    if (next && !pathStartsWith(next.path, path)) {
      while (last >= s.line && /^\s*#/.test(lines[last - 1] ?? '')) last--;
    }
    for (let line = s.line; line <= last; line++) drop.add(line);
    if (!next) endsFile = true;
  }
  if (endsFile) {
    for (let line = first - 1; line >= 1 && lines[line - 1].trim() === ''; line--) drop.add(line);
  }
  let result = lines.filter((_, i) => !drop.has(i + 1)).join('\n');
  if (text.endsWith('\n') && !result.endsWith('\n')) result += '\n';
  const expected = parseToml(text, source);
  const parent = getPath(expected, path.slice(0, -1)) as TomlTable;
  delete parent[path[path.length - 1]];
  if (!deepEqual(withoutEmptyTables(parseToml(result, source)), withoutEmptyTables(expected))) {
    throw new ConfigPatchError(`refusing to write ${source}: self-check failed (the document without the original knawd-deployer's ${path.join('.')} lost or changed other settings); the file is left as it was`);
  }
  return result;
}

/** Tables that hold nothing are dropped (the entry's header made its parents; without it they are not there). */
function withoutEmptyTables(table: TomlTable): TomlTable {
  const out: TomlTable = {};
  for (const [key, value] of Object.entries(table)) {
    if (!isTable(value)) out[key] = value;
    else {
      const inner = withoutEmptyTables(value);
      if (Object.keys(inner).length > 0) out[key] = inner;
    }
  }
  return out;
}
