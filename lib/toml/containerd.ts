/**
 * Registers our runtime handler in a containerd config.toml (or microk8s' containerd-template.toml, which
 * is TOML whose strings hold `${SNAP_DATA}`-style placeholders) by appending one managed block.
 *
 * containerd 1.x `imports` replace whole plugin sections (containerd#5837), so a drop-in file would wipe the
 * host's CRI settings; the main file is edited instead, in place.
 */
import { putBlock, removeBlock } from './block';
import {
  assertCanAddHandler,
  assertCriEnabled,
  configVersion,
  ContainerdConfigVersion,
  CriPluginName,
  defaultPluginName,
  hostSystemdCgroup,
  losesDefaultRunc,
  runtimeTables,
  usesPlugin,
} from './containerd-runtime';
import { TomlTable } from './tree';
import { ConfigPatchError } from './errors';
import { PatchResult, RemovalResult } from './results';
import { RuntimeSpec, validateHandler, validateRuntimeSpec } from './runtime-spec';
import { scanStatements } from './statements';
import { parseToml, tomlReader, verifyAddition, verifyRemoval } from './verify';

export interface ContainerdPatchOptions extends RuntimeSpec {
  /**
   * Major version of the containerd that reads the file. A file without settings gets `version = 2` for
   * containerd 1 and `version = 3` for containerd 2, and a config that version cannot read is refused.
   */
  readonly containerdMajor: 1 | 2;
  /** Minor version of that containerd, when known: `version = 4` needs 2.3 or later. @default unknown */
  readonly containerdMinor?: number;
  /** Names the file in error messages. @default "the containerd config" */
  readonly source?: string;
}

const DEFAULT_SOURCE = 'the containerd config';

/**
 * Config versions each containerd major reads: 2.0 removed version 1 and migrates version 2 on load; version 4
 * (server settings moved into plugins, the CRI runtime name unchanged) came with 2.3.
 */
const READABLE_VERSIONS: Record<1 | 2, readonly ContainerdConfigVersion[]> = { 1: [1, 2], 2: [2, 3, 4] };
const FIRST_MINOR_READING_V4 = 3;

/**
 * Adds (or updates) our handler. `config` undefined, empty or without any setting means containerd runs on
 * its defaults: the result is then a minimal config holding just our block.
 */
export function addContainerdRuntime(config: string | undefined, options: ContainerdPatchOptions): PatchResult {
  validateRuntimeSpec(options);
  const source = options.source ?? DEFAULT_SOURCE;
  const original = config ?? '';
  const base = removeBlock(original, options.handler);
  const parsed = parseToml(base, source);
  const onDefaults = Object.keys(parsed).length === 0;
  assertCriEnabled(parsed, source);
  const version = onDefaults ? defaultVersion(options.containerdMajor) : configVersion(parsed, source);
  assertReadable(version, options.containerdMajor, options.containerdMinor, source);
  const plugin = pluginFor(parsed, version, options.containerdMajor);
  assertCanAddHandler(parsed, scanStatements(base, source), plugin, options.handler, source);

  const tables = runtimeTables({
    handler: options.handler,
    binaryPath: options.binaryPath,
    plugin,
    version,
    systemdCgroup: hostSystemdCgroup(parsed, plugin),
    declareVersion: onDefaults,
    keepDefaultRunc: options.containerdMajor === 1 && losesDefaultRunc(parsed, plugin),
  });
  const text = putBlock(original, options.handler, tables.lines);
  verifyAddition({ base, parsedBase: parsed, result: text, handler: options.handler, fragment: tables.fragment, source, read: tomlReader(source) });
  return { text, changed: text !== original };
}

/** Takes our handler's block out again; the rest of the file comes back byte for byte. */
export function removeContainerdRuntime(config: string | undefined, handler: string, source = DEFAULT_SOURCE): RemovalResult {
  validateHandler(handler);
  const original = config ?? '';
  const text = removeBlock(original, handler);
  if (text !== original) {
    parseToml(original, source);
    verifyRemoval({ before: original, result: text, handler, source, read: tomlReader(source) });
  }
  return { text, changed: text !== original, deletable: text.trim() === '' };
}

function defaultVersion(major: 1 | 2): ContainerdConfigVersion {
  return major === 1 ? 2 : 3;
}

export function assertReadable(version: ContainerdConfigVersion, major: 1 | 2, minor: number | undefined, source: string): void {
  if (!READABLE_VERSIONS[major].includes(version)) {
    throw new ConfigPatchError(
      `${source} is a version ${version} config, which containerd ${major}.x cannot read; ` +
        `containerd ${major}.x accepts config versions ${READABLE_VERSIONS[major].join(', ')}`,
    );
  }
  if (version === 4 && minor !== undefined && minor < FIRST_MINOR_READING_V4) {
    throw new ConfigPatchError(
      `${source} is a version 4 config, which containerd ${major}.${minor} cannot read; version 4 needs containerd 2.${FIRST_MINOR_READING_V4} or later (2.0-2.2 read versions 2 and 3)`,
    );
  }
}

/**
 * Where this node's containerd reads runtime handlers in this file: containerd 2.x reads its own section
 * wherever the file has one (whatever the `version` line says), else the 1.x section of a version 2 file
 * through its migration; containerd 1.x reads the short IDs of version 1 and the 1.x names of version 2 only.
 */
export function pluginFor(parsed: TomlTable, version: ContainerdConfigVersion, major: 1 | 2): CriPluginName {
  if (major === 2) return version >= 3 || usesPlugin(parsed, 'runtime') ? 'runtime' : 'grpc';
  return defaultPluginName(version);
}

/**
 * What the file itself says about the containerd that reads it, for when neither the Node object nor a host
 * binary tells the version: only containerd 2.x reads config versions 3 and 4, and only containerd 2.x has
 * plugins named `io.containerd.cri.v1.runtime`. The plugin names win over a `version = 2` line: AKS writes
 * version 2 files with 2.x names for containerd 2, where a block under the 1.x name would be ignored.
 * Undefined when the file could be read by either (then the catalog's default stands).
 */
export function containerdMajorOfFile(config: string, source = DEFAULT_SOURCE): { readonly major: 2; readonly why: string } | undefined {
  const parsed = parseToml(config, source);
  if (Object.keys(parsed).length === 0) return undefined;
  const version = configVersion(parsed, source);
  if (version >= 3) return { major: 2, why: `the config declares version = ${version}, which only containerd 2.x reads` };
  if (usesPlugin(parsed, 'runtime')) {
    return { major: 2, why: `the config uses containerd 2.x plugin names (io.containerd.cri.v1.runtime) under version = ${version}` };
  }
  return undefined;
}
