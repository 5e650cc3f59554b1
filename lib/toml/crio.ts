/**
 * Registers our runtime handler with CRI-O through a drop-in file of its own in /etc/crio/crio.conf.d/;
 * crio.conf itself is only read. Removal is deleting that file, so no removal function is needed here.
 */
import { blockText, putBlock } from './block';
import { ConfigPatchError } from './errors';
import { RenderedValue, renderTable } from './render';
import { RuntimeSpec, validateAbsolutePath, validateRuntimeSpec } from './runtime-spec';
import { getPath, isTable, TomlTable } from './tree';
import { parseToml, tomlReader, verifyAddition } from './verify';

export interface CrioConfigFile {
  /** File name (for drop-ins the name decides the order CRI-O applies them in) or path, used in messages. */
  readonly name: string;
  readonly text: string;
}

export interface CrioDropInOptions extends RuntimeSpec {
  /** Directory crun keeps its container state in for this handler. @default "/run/crun-wasm" */
  readonly runtimeRoot?: string;
  /** The host's crio.conf, if it has one. @default none: CRI-O's built-in settings */
  readonly hostConfig?: CrioConfigFile;
  /** The files already in /etc/crio/crio.conf.d, in any order; ours among them is ignored. @default none */
  readonly dropIns?: readonly CrioConfigFile[];
  /** Sorts the file among the other drop-ins. @default 50 */
  readonly priority?: number;
  /**
   * The handler's `allowed_annotations`: what the node's CRI-O release needs for crun's WASM annotations
   * (crioAnnotationDecision in crio-annotations.ts). Each entry once: older CRI-O drops a handler that repeats one.
   * @default none: the key is left out
   */
  readonly allowedAnnotations?: readonly string[];
}

export interface CrioDropIn {
  /** File name inside /etc/crio/crio.conf.d. */
  readonly fileName: string;
  readonly text: string;
}

const DEFAULT_RUNTIME_ROOT = '/run/crun-wasm';
const DEFAULT_PRIORITY = 50;
/** CRI-O's built-in default runtime: runc, and crun since CRI-O 1.31; either may exist without any config. */
const BUILTIN_RUNTIMES = ['runc', 'crun'];
/** Per-runtime monitor settings, and the global settings of older CRI-O they replaced. */
const MONITOR_KEYS = [
  ['monitor_path', 'conmon'],
  ['monitor_cgroup', 'conmon_cgroup'],
  ['monitor_env', 'conmon_env'],
] as const;

export function crioDropInFileName(handler: string, priority = DEFAULT_PRIORITY): string {
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) {
    throw new ConfigPatchError(`invalid drop-in priority ${priority}: use a whole number from 0 to 99`);
  }
  return `${String(priority).padStart(2, '0')}-knawd-${handler}.conf`;
}

/**
 * The full text of our drop-in. The handler's conmon settings follow the host's default runtime, since
 * CRI-O otherwise falls back to built-in values that may not match the host (conmon path, cgroup).
 */
export function renderCrioDropIn(options: CrioDropInOptions): CrioDropIn {
  validateRuntimeSpec(options);
  const runtimeRoot = options.runtimeRoot ?? DEFAULT_RUNTIME_ROOT;
  validateAbsolutePath(runtimeRoot, 'runtimeRoot');
  const fileName = crioDropInFileName(options.handler, options.priority);
  const effective = effectiveConfig(options, fileName);
  const defaultRuntime = defaultRuntimeName(effective);
  assertFreeHandler(options.handler, effective, defaultRuntime);

  const entries: Array<[string, RenderedValue]> = [
    ['runtime_path', options.binaryPath],
    ['runtime_type', 'oci'],
    ['runtime_root', runtimeRoot],
    ...monitorSettings(effective, defaultRuntime),
    ...allowedAnnotationsEntry(options.allowedAnnotations),
  ];
  const header = [
    `# Managed by knawd-deployer: adds the CRI-O runtime handler "${options.handler}" (crun with WebAssembly support).`,
    '# Written on install and deleted by `knawd-installer remove`; edits here are overwritten.',
  ];
  const tablePath = ['crio', 'runtime', 'runtimes', options.handler];
  const base = header.join('\n') + '\n';
  const text = putBlock(base, options.handler, renderTable(tablePath, entries));
  const read = tomlReader(fileName);
  verifyAddition({
    base,
    parsedBase: read(base),
    result: text,
    handler: options.handler,
    fragment: { crio: { runtime: { runtimes: { [options.handler]: Object.fromEntries(entries) } } } },
    source: fileName,
    read,
  });
  return { fileName, text };
}

/** crio.conf with the drop-ins applied in CRI-O's order (lexical by file name, last wins), ours left out. */
function effectiveConfig(options: CrioDropInOptions, fileName: string): TomlTable {
  const dropIns = [...(options.dropIns ?? [])]
    .filter((file) => baseName(file.name) !== fileName && blockText(file.text, options.handler) === undefined)
    .sort((a, b) => (baseName(a.name) < baseName(b.name) ? -1 : baseName(a.name) > baseName(b.name) ? 1 : 0));
  const files = options.hostConfig ? [options.hostConfig, ...dropIns] : dropIns;
  return files.reduce<TomlTable>((merged, file) => overlay(merged, parseToml(file.text, file.name)), {});
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Later files override single keys and add tables, as CRI-O's decoding into one struct does. */
function overlay(base: TomlTable, top: TomlTable): TomlTable {
  const result: TomlTable = { ...base };
  for (const [key, value] of Object.entries(top)) {
    const below = result[key];
    result[key] = isTable(below) && isTable(value) ? overlay(below, value) : value;
  }
  return result;
}

function defaultRuntimeName(config: TomlTable): string | undefined {
  const configured = getPath(config, ['crio', 'runtime', 'default_runtime']);
  if (typeof configured === 'string' && configured !== '') return configured;
  return BUILTIN_RUNTIMES.find((name) => isTable(getPath(config, ['crio', 'runtime', 'runtimes', name])));
}

function assertFreeHandler(handler: string, config: TomlTable, defaultRuntime: string | undefined): void {
  const reason =
    handler === defaultRuntime
      ? "is the host's default runtime"
      : BUILTIN_RUNTIMES.includes(handler)
        ? 'is a runtime CRI-O defines itself (runc; crun since CRI-O 1.31)'
        : getPath(config, ['crio', 'runtime', 'runtimes', handler]) !== undefined
          ? 'is already defined in the host CRI-O config'
          : undefined;
  if (reason) {
    throw new ConfigPatchError(
      `runtime handler "${handler}" ${reason}; defining it again would replace that runtime, so choose another name (e.g. "crun-wasm")`,
    );
  }
}

/**
 * The monitor settings the default runtime runs with: a global conmon setting where the host has one (CRI-O
 * applies it to every handler over the handler's own, TranslateMonitorFieldsForHandler in
 * pkg/config/config.go), else the default runtime's own.
 */
function monitorSettings(config: TomlTable, defaultRuntime: string | undefined): Array<[string, RenderedValue]> {
  const runtime = defaultRuntime === undefined ? undefined : getPath(config, ['crio', 'runtime', 'runtimes', defaultRuntime]);
  const settings: Array<[string, RenderedValue]> = [];
  for (const [key, legacyKey] of MONITOR_KEYS) {
    const global = getPath(config, ['crio', 'runtime', legacyKey]);
    const value = isSetting(global) ? global : isTable(runtime) ? runtime[key] : undefined;
    if (isSetting(value)) settings.push([key, value]);
  }
  return settings;
}

function allowedAnnotationsEntry(annotations: readonly string[] | undefined): Array<[string, RenderedValue]> {
  if (annotations === undefined) return [];
  const bad = annotations.find((a, i) => !/^[A-Za-z0-9][A-Za-z0-9./_-]*$/.test(a) || annotations.indexOf(a) !== i);
  if (annotations.length === 0 || bad !== undefined) {
    throw new ConfigPatchError(
      `invalid allowed_annotations ${JSON.stringify(annotations)}${bad === undefined ? '' : ` (${JSON.stringify(bad)})`}: give annotation keys or prefixes CRI-O knows, each once`,
    );
  }
  return [['allowed_annotations', [...annotations]]];
}

function isSetting(value: unknown): value is RenderedValue {
  return (typeof value === 'string' && value !== '') || (Array.isArray(value) && value.length > 0 && value.every((v) => typeof v === 'string'));
}
