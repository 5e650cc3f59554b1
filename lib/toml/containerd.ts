/**
 * Registers our runtime handler in a containerd config.toml (or microk8s' containerd-template.toml, which
 * is TOML whose strings hold `${SNAP_DATA}`-style placeholders) by appending one managed block.
 *
 * containerd 1.x `imports` replace whole plugin sections (containerd#5837), so a drop-in file would wipe the
 * host's CRI settings; the main file is edited instead, in place.
 */
import { putBlock, removeBlock } from './block';
import { assertCanAddHandler, assertCriEnabled, configVersion, ContainerdConfigVersion, hostSystemdCgroup, runtimeTables } from './containerd-runtime';
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
  /** Names the file in error messages. @default "the containerd config" */
  readonly source?: string;
}

const DEFAULT_SOURCE = 'the containerd config';

/** Config versions each containerd major reads (2.x migrates version 2 on load and no longer reads version 1). */
const READABLE_VERSIONS: Record<1 | 2, readonly ContainerdConfigVersion[]> = { 1: [1, 2], 2: [2, 3] };

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
  assertReadable(version, options.containerdMajor, source);
  assertCanAddHandler(parsed, scanStatements(base, source), version, options.handler, source);

  const tables = runtimeTables({
    handler: options.handler,
    binaryPath: options.binaryPath,
    version,
    systemdCgroup: hostSystemdCgroup(parsed, version),
    declareVersion: onDefaults,
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

function assertReadable(version: ContainerdConfigVersion, major: 1 | 2, source: string): void {
  if (!READABLE_VERSIONS[major].includes(version)) {
    throw new ConfigPatchError(
      `${source} is a version ${version} config, which containerd ${major}.x cannot read; ` +
        `containerd ${major}.x accepts config versions ${READABLE_VERSIONS[major].join(' and ')}`,
    );
  }
}
