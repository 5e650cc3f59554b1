/**
 * What containerd's CRI plugin needs to know about our runtime handler, per config version, and the checks
 * that decide whether our tables can be appended to a given document.
 */
import { ConfigPatchError } from './errors';
import { RenderedValue, renderKey, renderTable } from './render';
import { RuntimeSpec } from './runtime-spec';
import { Statement } from './statements';
import { getPath, mergeFragment, pathStartsWith, TomlTable } from './tree';

export type ContainerdConfigVersion = 1 | 2 | 3 | 4;

/**
 * The name the CRI plugin's runtime settings live under, which is not tied to the `version` line alone:
 * - `cri`: the short plugin ID of legacy version 1 files (containerd 1.x);
 * - `grpc`: `io.containerd.grpc.v1.cri`, version 2 (containerd 1.x; containerd 2.x migrates it on load);
 * - `runtime`: `io.containerd.cri.v1.runtime`, containerd 2.x (version 3 and 4, and version 2 files written
 *   for 2.x, as AKS does). containerd 2.x's migration copies the 1.x section only into keys the 2.x section
 *   lacks, so a block under the 1.x name in a file that already has the 2.x section is never read there.
 */
export type CriPluginName = 'cri' | 'grpc' | 'runtime';

const PLUGIN_IDS: Record<CriPluginName, string> = {
  cri: 'cri',
  grpc: 'io.containerd.grpc.v1.cri',
  runtime: 'io.containerd.cri.v1.runtime',
};

/** Where the CRI plugin keeps its runtime handlers under each plugin name. */
export function runtimesPath(name: CriPluginName): readonly string[] {
  return ['plugins', PLUGIN_IDS[name], 'containerd', 'runtimes'];
}

/** The plugin name a config of this version uses when it has no section of its own yet. */
export function defaultPluginName(version: ContainerdConfigVersion): CriPluginName {
  return version === 1 ? 'cri' : version === 2 ? 'grpc' : 'runtime';
}

/** Whether the document has a section under the plugin name's ID (any key or table below it). */
export function usesPlugin(parsed: TomlTable, name: CriPluginName): boolean {
  return getPath(parsed, ['plugins', PLUGIN_IDS[name]]) !== undefined;
}

/**
 * Pod annotations containerd hands on to crun. crun picks its WASM handler from `module.wasm.image/variant`
 * or `run.oci.handler`; containerd drops every annotation that no pattern here matches.
 */
export const WASM_POD_ANNOTATIONS: readonly string[] = [
  'module.wasm.image/variant',
  'module.wasm.image/*',
  '*.module.wasm.image',
  'module.wasm.image/variant.*',
  '*.wasm.*',
  'run.oci.handler',
];

/**
 * Names under which `disabled_plugins` switches off the CRI (by plugin ID or full URI; containerd 2.x split
 * the runtime part out as io.containerd.cri.v1.runtime). Docker's containerd ships `disabled_plugins = ["cri"]`.
 */
const CRI_PLUGIN_NAMES: readonly string[] = ['cri', 'io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.runtime'];

/**
 * Refuses a config whose containerd does not serve the CRI: the kubelet talks to another containerd (often
 * a node runs Docker's next to Kubernetes'), and a handler added here would never be seen.
 */
export function assertCriEnabled(parsed: TomlTable, source: string): void {
  const disabled = Array.isArray(parsed.disabled_plugins) ? parsed.disabled_plugins : [];
  const cri = disabled.filter((name) => typeof name === 'string' && CRI_PLUGIN_NAMES.includes(name));
  if (cri.length > 0) {
    throw new ConfigPatchError(
      `${source} disables containerd's CRI plugin (disabled_plugins has ${cri.map((n) => JSON.stringify(n)).join(', ')}): ` +
        `the kubelet does not use this containerd (it is often Docker's); configure the containerd whose CRI socket the kubelet uses`,
    );
  }
}

/** The config version a document declares: no `version` key means the legacy version 1. */
export function configVersion(parsed: TomlTable, source: string): ContainerdConfigVersion {
  const version = parsed.version;
  if (version === undefined) return 1;
  if (version === 1 || version === 2 || version === 3 || version === 4) return version;
  throw new ConfigPatchError(
    `${source} declares unsupported version = ${String(version)}; accepted are version = 1 (or no version key) and 2 (containerd 1.x), 2 and 3 (containerd 2.x), 4 (containerd 2.3 and later)`,
  );
}

interface RuntimeTables {
  /** The block's lines, between the markers. */
  readonly lines: readonly string[];
  /** What the lines define, as parsed TOML. */
  readonly fragment: TomlTable;
}

interface RuntimeTableOptions extends RuntimeSpec {
  /** The plugin name the handler is written under. */
  readonly plugin: CriPluginName;
  /** Written as `version = N` when `declareVersion` is set. */
  readonly version: ContainerdConfigVersion;
  /** Copied from the host's runc options, if the host sets it. */
  readonly systemdCgroup?: boolean;
  /** Set when our block must also declare the config version (a file that had no settings at all). */
  readonly declareVersion?: boolean;
  /**
   * Set when our block must also define containerd's built-in `runc`: containerd 1.x decodes a file's
   * `runtimes` table over its defaults as a whole, so the first runtime a file defines replaces the implicit
   * `runc`, and the CRI plugin then refuses to load ("no corresponding runtime configured … runc").
   */
  readonly keepDefaultRunc?: boolean;
}

export function runtimeTables(options: RuntimeTableOptions): RuntimeTables {
  const handlerPath = [...runtimesPath(options.plugin), options.handler];
  const runtime: Array<[string, RenderedValue]> = [
    ['runtime_type', 'io.containerd.runc.v2'],
    ['privileged_without_host_devices', false],
    ['pod_annotations', WASM_POD_ANNOTATIONS],
  ];
  const runtimeOptions: Array<[string, RenderedValue]> = [['BinaryName', options.binaryPath]];
  if (options.systemdCgroup !== undefined) runtimeOptions.push(['SystemdCgroup', options.systemdCgroup]);

  const runcPath = [...runtimesPath(options.plugin), DEFAULT_RUNTIME];
  const lines = [
    ...(options.declareVersion ? [`version = ${options.version}`, ''] : []),
    ...(options.keepDefaultRunc ? [...renderTable(runcPath, DEFAULT_RUNC), ''] : []),
    ...renderTable(handlerPath, runtime),
    '',
    ...renderTable([...handlerPath, 'options'], runtimeOptions),
  ];
  let fragment = nest(handlerPath, { ...Object.fromEntries(runtime), options: Object.fromEntries(runtimeOptions) });
  if (options.keepDefaultRunc) fragment = mergeFragment(fragment, nest(runcPath, Object.fromEntries(DEFAULT_RUNC))) as TomlTable;
  return { lines, fragment: options.declareVersion ? { version: options.version, ...fragment } : fragment };
}

/** containerd 1.x's built-in default runtime, as its own default config defines it. */
const DEFAULT_RUNTIME = 'runc';
const DEFAULT_RUNC: Array<[string, RenderedValue]> = [['runtime_type', 'io.containerd.runc.v2']];

/**
 * Whether adding our handler to this document makes containerd 1.x lose its implicit `runc`: the file defines
 * no runtime of its own and names no other default runtime (which would be broken already).
 */
export function losesDefaultRunc(parsed: TomlTable, plugin: CriPluginName): boolean {
  const runtimes = runtimesPath(plugin);
  const defined = getPath(parsed, runtimes);
  const defaultName = getPath(parsed, [...runtimes.slice(0, -1), 'default_runtime_name']);
  return defined === undefined && (defaultName === undefined || defaultName === DEFAULT_RUNTIME);
}

function nest(path: readonly string[], leaf: TomlTable): TomlTable {
  return path.reduceRight<TomlTable>((inner, key) => ({ [key]: inner }), leaf);
}

/**
 * The host's cgroup driver for runc-based handlers: `SystemdCgroup` of the default runtime's options, else
 * of runc's. A handler that disagrees with the kubelet's cgroup driver breaks every pod that uses it.
 */
export function hostSystemdCgroup(parsed: TomlTable, plugin: CriPluginName): boolean | undefined {
  const runtimes = runtimesPath(plugin);
  const defaultName = getPath(parsed, [...runtimes.slice(0, -1), 'default_runtime_name']);
  for (const name of typeof defaultName === 'string' ? [defaultName, 'runc'] : ['runc']) {
    const value = getPath(parsed, [...runtimes, name, 'options', 'SystemdCgroup']);
    if (typeof value === 'boolean') return value;
  }
  return undefined;
}

/**
 * Refuses documents where appending `[<runtimes>.<handler>]` is impossible in TOML: the handler exists
 * already, or a table on the way is an inline table (closed: nothing may be added to it), an array of tables
 * or a plain value. A table made by dotted keys is no obstacle: TOML 1.0 allows a `[header]` sub-table below
 * it (only the dotted table itself may not be reopened by a header, and our header names a new table).
 */
export function assertCanAddHandler(
  parsed: TomlTable,
  statements: readonly Statement[],
  plugin: CriPluginName,
  handler: string,
  source: string,
): void {
  const runtimes = runtimesPath(plugin);
  const handlerPath = [...runtimes, handler];
  const existing = statements.find((s) => pathStartsWith(s.path, handlerPath));
  if (existing || getPath(parsed, handlerPath) !== undefined) {
    const where = existing ? ` (line ${existing.line})` : '';
    throw new ConfigPatchError(
      `runtime "${handler}" is already defined in ${source}${where} outside the knawd-deployer block; remove that definition or choose another handler name`,
    );
  }
  for (let depth = 1; depth <= runtimes.length; depth++) {
    const prefix = runtimes.slice(0, depth);
    const problem = statements.map((s) => obstacle(s, prefix)).find((p) => p !== undefined);
    if (problem) {
      throw new ConfigPatchError(
        `cannot add runtime "${handler}" to ${source}: ${renderKey(prefix)} ${problem}, and TOML allows no [${renderKey(handlerPath)}] table below it; ` +
          `write ${renderKey(prefix)} as [${renderKey(prefix)}] table sections instead`,
      );
    }
  }
}

/** Why `statement` keeps us from adding a header-defined sub-table under `prefix`, if it does. */
function obstacle(statement: Statement, prefix: readonly string[]): string | undefined {
  if (statement.path.length !== prefix.length || !pathStartsWith(statement.path, prefix)) return undefined;
  const at = ` (line ${statement.line})`;
  if (statement.kind === 'array-table') return `is an array of tables${at}`;
  if (statement.kind === 'key') return `${statement.inlineTable ? 'is an inline table' : 'is a plain value'}${at}`;
  return undefined;
}
