/**
 * containerd 2.x drop-ins: where a config imports them, and the drop-in file that registers our handler there
 * while the importing file stays as it is.
 *
 * containerd 2.x loads the file it is started with, then every file that file's `imports` name (a glob expands
 * to its matches in lexical order) and merges them deeply, so a drop-in adds our handler and nothing else.
 * Measured with the real 2.2.9 and 2.3.7 loaders:
 * - only imports the file itself lists are read: `config dump` prints the default
 *   `imports = ['/etc/containerd/conf.d/*.toml']` also for a file without any `imports` (and for no file at
 *   all), whose drop-in directory is then never read. So the decision reads the file, and the pre-flight proves
 *   it with the loader (the dump with the drop-in in place shows the handler).
 * - the merged config takes the `version` of the last file: on 2.2.9 a `version = 3` drop-in beside a
 *   `version = 2` file silently drops that file's 1.x-named CRI settings (sandbox image, SystemdCgroup). The
 *   drop-in therefore declares the importing file's version and writes under the plugin name it uses.
 * containerd 1.x replaces a whole plugin section with an imported file's (containerd#5837): no drop-ins there.
 */
import { putBlock } from './block';
import { assertReadable, pluginFor } from './containerd';
import { assertCriEnabled, configVersion, hostSystemdCgroup, runtimesPath, runtimeTables } from './containerd-runtime';
import { ConfigPatchError } from './errors';
import { RuntimeSpec, validateHandler, validateRuntimeSpec } from './runtime-spec';
import { scanStatements } from './statements';
import { getPath, TomlTable } from './tree';
import { parseToml, tomlReader, verifyAddition } from './verify';

/** Our drop-in's name: sorts among the usual `NN-name.toml` drop-ins, after distribution defaults (00-49). */
export function containerdDropInFileName(handler: string): string {
  validateHandler(handler);
  return `50-knawd-${handler}.toml`;
}

/** Where our drop-in goes, and the import that reads it. */
export interface DropInLocation {
  /** Host path of our drop-in. */
  readonly path: string;
  /** Its directory. */
  readonly dir: string;
  /** The `imports` entry that reads it, as written in the file. */
  readonly entry: string;
  /** The entry's file pattern: the files of `dir` that containerd reads. */
  readonly pattern: string;
}

/** The drop-in location, or why there is none (for the plan's note). */
export type DropInDecision = { readonly location: DropInLocation } | { readonly location?: undefined; readonly why: string };

/**
 * Whether the config at `configPath` imports a directory our drop-in can go into: the first `imports` entry
 * whose directory is a plain path (no glob, no `${...}` placeholder) and whose file pattern matches our name.
 * Relative entries resolve against the config's directory, as containerd resolves them.
 */
export function findDropInLocation(config: string, configPath: string, handler: string): DropInDecision {
  const name = containerdDropInFileName(handler);
  const entries = importsOf(parseToml(config, configPath), configPath);
  if (entries.length === 0) return { why: `${configPath} imports no other files` };
  for (const entry of entries) {
    const resolved = resolveImport(entry, configPath);
    const slash = resolved.lastIndexOf('/');
    const dir = resolved.slice(0, slash) || '/';
    if (/[*?[\\$]/.test(dir)) continue;
    const pattern = resolved.slice(slash + 1);
    if (globMatch(pattern, name)) return { location: { path: `${dir}/${name}`, dir, entry, pattern } };
  }
  return { why: `none of ${configPath}'s imports (${entries.join(', ')}) is a directory pattern that reads ${name}` };
}

/** The config's `imports` entries as written (strings only; containerd refuses anything else). */
function importsOf(parsed: TomlTable, source: string): string[] {
  const imports = parsed.imports;
  if (imports === undefined) return [];
  if (!Array.isArray(imports) || !imports.every((e) => typeof e === 'string')) {
    throw new ConfigPatchError(`${source} has an imports value that is not an array of strings; containerd accepts imports = ["/path/*.toml", ...]`);
  }
  return imports as string[];
}

/** An `imports` entry as containerd resolves it: cleaned, relative to the importing file's directory. */
function resolveImport(entry: string, configPath: string): string {
  const base = configPath.slice(0, configPath.lastIndexOf('/')) || '/';
  const joined = entry.startsWith('/') ? entry : `${base}/${entry}`;
  const parts: string[] = [];
  for (const part of joined.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return '/' + parts.join('/');
}

/** Go's filepath.Match for one path element: `*`, `?`, `[...]` / `[^...]` classes and `\` escapes. */
export function globMatch(pattern: string, name: string): boolean {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) source += escapeRegExp(pattern[++i]);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return false; // Go: ErrBadPattern, which containerd reports; nothing matches
      const body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^');
      source += `[${negated ? '^' : ''}${(negated ? body.slice(1) : body).replace(/[\]\\^]/g, '\\$&')}]`;
      i = end;
    } else source += escapeRegExp(c);
  }
  return new RegExp(`^${source}$`).test(name);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

export interface ContainerdDropInOptions extends RuntimeSpec {
  /** The config that imports the directory: its version and plugin names are the drop-in's. */
  readonly config: { readonly path: string; readonly text: string };
  /** The other files in the drop-in directory, in lexical order (read before or after ours). */
  readonly dropIns: ReadonlyArray<{ readonly path: string; readonly text: string }>;
  /** Minor version of the containerd 2.x that reads it, when known: `version = 4` needs 2.3. @default unknown */
  readonly containerdMinor?: number;
}

/** The drop-in's text: a header, then our block with the importing file's `version` and our handler's tables. */
export function renderContainerdDropIn(options: ContainerdDropInOptions): string {
  validateRuntimeSpec(options);
  const { config, handler } = options;
  const parsed = parseToml(config.text, config.path);
  assertCriEnabled(parsed, config.path);
  const version = configVersion(parsed, config.path);
  assertReadable(version, 2, options.containerdMinor, config.path);
  const plugin = pluginFor(parsed, version, 2);
  assertCanAddHandler(parsed, config.text, handler, config.path);

  // The cgroup driver as the loader ends up with it: the last file that sets one wins.
  let systemdCgroup = hostSystemdCgroup(parsed, plugin);
  for (const dropIn of options.dropIns) {
    const other = parseToml(dropIn.text, dropIn.path);
    assertCanAddHandler(other, dropIn.text, handler, dropIn.path);
    systemdCgroup = hostSystemdCgroup(other, plugin) ?? systemdCgroup;
  }

  const tables = runtimeTables({ handler, binaryPath: options.binaryPath, plugin, version, systemdCgroup, declareVersion: true });
  // Like CRI-O's drop-in: a header, then the same delimited block as in every file we edit, found the same way.
  const base = [
    `# Managed by knawd-deployer: adds the containerd runtime handler "${handler}" (crun with WebAssembly support),`,
    `# read through the imports of ${config.path}. Deleted by \`knawd-installer remove\`; edits here are overwritten.`,
    '',
  ].join('\n');
  const text = putBlock(base, handler, tables.lines);
  const read = tomlReader(`our drop-in for ${config.path}`);
  verifyAddition({ base, parsedBase: read(base), result: text, handler, fragment: tables.fragment, source: `our drop-in for ${config.path}`, read });
  return text;
}

/** A handler defined in the importing file or another drop-in would be merged with ours, field by field. */
function assertCanAddHandler(parsed: TomlTable, text: string, handler: string, source: string): void {
  for (const plugin of ['cri', 'grpc', 'runtime'] as const) {
    const path = [...runtimesPath(plugin), handler];
    if (getPath(parsed, path) === undefined) continue;
    const line = scanStatements(text, source).find((s) => s.path.length >= path.length && path.every((p, i) => s.path[i] === p))?.line;
    throw new ConfigPatchError(
      `runtime "${handler}" is already defined in ${source}${line ? ` (line ${line})` : ''}; containerd would merge it with ours field by field: remove that definition or choose another handler name`,
    );
  }
}

/**
 * The config's text with the `imports` entries that read `fromDir` pointing at `toDir` instead (same file
 * patterns), for the pre-flight to load a copy of the drop-in directory that holds our candidate. Every other
 * byte stays; undefined when no entry reads `fromDir`.
 */
export function redirectImports(config: string, configPath: string, fromDir: string, toDir: string): string | undefined {
  const statement = scanStatements(config, configPath).find((s) => s.kind === 'key' && s.tableDepth === 0 && s.path.length === 1 && s.path[0] === 'imports');
  if (statement?.kind !== 'key') return undefined;
  let redirected = false;
  const entries = importsOf(parseToml(config, configPath), configPath).map((entry) => {
    const resolved = resolveImport(entry, configPath);
    const slash = resolved.lastIndexOf('/');
    if (resolved.slice(0, slash) !== fromDir) return entry;
    redirected = true;
    return `${toDir}/${resolved.slice(slash + 1)}`;
  });
  if (!redirected) return undefined;
  const value = `[${entries.map((e) => JSON.stringify(e)).join(', ')}]`;
  return config.slice(0, statement.valueStart) + value + config.slice(statement.valueEnd);
}
