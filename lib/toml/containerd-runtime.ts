/**
 * What containerd's CRI plugin needs to know about our runtime handler, per config version, and the checks
 * that decide whether our tables can be appended to a given document.
 */
import { ConfigPatchError } from './errors';
import { RenderedValue, renderKey, renderTable } from './render';
import { RuntimeSpec } from './runtime-spec';
import { Statement } from './statements';
import { getPath, pathStartsWith, TomlTable } from './tree';

export type ContainerdConfigVersion = 1 | 2 | 3;

/** Where the CRI plugin keeps its runtime handlers in each config version. */
const RUNTIMES_PATH: Record<ContainerdConfigVersion, readonly string[]> = {
  1: ['plugins', 'cri', 'containerd', 'runtimes'],
  2: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  3: ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};

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

export function runtimesPath(version: ContainerdConfigVersion): readonly string[] {
  return RUNTIMES_PATH[version];
}

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
  if (version === 2 || version === 3) return version;
  throw new ConfigPatchError(
    `${source} declares unsupported version = ${String(version)}; accepted are no version key (1), version = 2 (containerd 1.x/2.x) and version = 3 (containerd 2.x)`,
  );
}

interface RuntimeTables {
  /** The block's lines, between the markers. */
  readonly lines: readonly string[];
  /** What the lines define, as parsed TOML. */
  readonly fragment: TomlTable;
}

interface RuntimeTableOptions extends RuntimeSpec {
  readonly version: ContainerdConfigVersion;
  /** Copied from the host's runc options, if the host sets it. */
  readonly systemdCgroup?: boolean;
  /** Set when our block must also declare the config version (a file that had no settings at all). */
  readonly declareVersion?: boolean;
}

export function runtimeTables(options: RuntimeTableOptions): RuntimeTables {
  const handlerPath = [...runtimesPath(options.version), options.handler];
  const runtime: Array<[string, RenderedValue]> = [
    ['runtime_type', 'io.containerd.runc.v2'],
    ['privileged_without_host_devices', false],
    ['pod_annotations', WASM_POD_ANNOTATIONS],
  ];
  const runtimeOptions: Array<[string, RenderedValue]> = [['BinaryName', options.binaryPath]];
  if (options.systemdCgroup !== undefined) runtimeOptions.push(['SystemdCgroup', options.systemdCgroup]);

  const lines = [
    ...(options.declareVersion ? [`version = ${options.version}`, ''] : []),
    ...renderTable(handlerPath, runtime),
    '',
    ...renderTable([...handlerPath, 'options'], runtimeOptions),
  ];
  const fragment = nest(handlerPath, { ...Object.fromEntries(runtime), options: Object.fromEntries(runtimeOptions) });
  return { lines, fragment: options.declareVersion ? { version: options.version, ...fragment } : fragment };
}

function nest(path: readonly string[], leaf: TomlTable): TomlTable {
  return path.reduceRight<TomlTable>((inner, key) => ({ [key]: inner }), leaf);
}

/**
 * The host's cgroup driver for runc-based handlers: `SystemdCgroup` of the default runtime's options, else
 * of runc's. A handler that disagrees with the kubelet's cgroup driver breaks every pod that uses it.
 */
export function hostSystemdCgroup(parsed: TomlTable, version: ContainerdConfigVersion): boolean | undefined {
  const runtimes = runtimesPath(version);
  const defaultName = getPath(parsed, [...runtimes.slice(0, -1), 'default_runtime_name']);
  for (const name of typeof defaultName === 'string' ? [defaultName, 'runc'] : ['runc']) {
    const value = getPath(parsed, [...runtimes, name, 'options', 'SystemdCgroup']);
    if (typeof value === 'boolean') return value;
  }
  return undefined;
}

/**
 * Refuses documents where appending `[<runtimes>.<handler>]` would redefine or reopen something: the handler
 * exists already, or a table on the way is an inline table, an array of tables, a plain value, or was
 * created by dotted keys (which TOML forbids to extend with a header and lax parsers accept anyway).
 */
export function assertCanAddHandler(
  parsed: TomlTable,
  statements: readonly Statement[],
  version: ContainerdConfigVersion,
  handler: string,
  source: string,
): void {
  const runtimes = runtimesPath(version);
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
        `cannot add runtime "${handler}" to ${source}: ${renderKey(prefix)} ${problem}; ` +
          `write it as [${renderKey(prefix)}] table sections so a [${renderKey(handlerPath)}] table can be added`,
      );
    }
  }
}

/** Why `statement` keeps us from adding a header-defined sub-table under `prefix`, if it does. */
function obstacle(statement: Statement, prefix: readonly string[]): string | undefined {
  if (!pathStartsWith(statement.path, prefix)) return undefined;
  const at = ` (line ${statement.line})`;
  if (statement.kind !== 'key') {
    return statement.kind === 'array-table' && statement.path.length === prefix.length ? `is an array of tables${at}` : undefined;
  }
  if (statement.path.length === prefix.length) return `${statement.inlineTable ? 'is an inline table' : 'is a plain value'}${at}`;
  return statement.tableDepth < prefix.length ? `is defined with dotted keys${at}` : undefined;
}
