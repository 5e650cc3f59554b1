/**
 * Registers our runtime handler with k3s / rke2 through their containerd config template
 * (`config.toml.tmpl`, or `config-v3.toml.tmpl` on containerd-2.x releases). The rendered config.toml is
 * rewritten by k3s on every start, so it is only read, never edited.
 *
 * A template is Go text/template, not TOML. Verification reads it as TOML after blanking the lines that hold
 * nothing but template actions (such as `{{ template "base" . }}`) and quoting actions that stand alone as a
 * key's value (`SystemdCgroup = {{ .SystemdCgroup }}`). Templates that still are not TOML after that (for
 * instance `{{ if }}` branches that each define a table) are refused: we could not check our edit.
 */
import { putBlock, removeBlock } from './block';
import { assertCanAddHandler, CriPluginName, defaultPluginName, hostSystemdCgroup, runtimesPath, runtimeTables, usesPlugin } from './containerd-runtime';
import { ConfigPatchError } from './errors';
import { PatchResult, RemovalResult } from './results';
import { RuntimeSpec, validateHandler, validateRuntimeSpec } from './runtime-spec';
import { scanStatements } from './statements';
import { pathStartsWith, TomlTable } from './tree';
import { parseToml, TomlReader, tomlReader, verifyAddition, verifyRemoval } from './verify';

/** What a template we create starts with: k3s' own config, which our block then extends. */
export const K3S_TEMPLATE_BASE = '{{ template "base" . }}\n';

export interface K3sTemplateOptions extends RuntimeSpec {
  /** 2 for `config.toml.tmpl`, 3 for `config-v3.toml.tmpl`: the config version k3s renders from it. */
  readonly configVersion: 2 | 3;
  /**
   * The config.toml k3s rendered last. k3s adds handlers for runtimes it finds on PATH (crun among them);
   * defining one of those again makes containerd fail on a duplicated table. Also the source of the host's
   * `SystemdCgroup`. @default none: neither check can be made
   */
  readonly renderedConfig?: string;
  /** Names the template in error messages. @default "the k3s containerd template" */
  readonly source?: string;
}

const DEFAULT_SOURCE = 'the k3s containerd template';
const RENDERED_SOURCE = "k3s' rendered containerd config.toml";
const ACTION_LINE = /^[ \t]*\{\{.*\}\}[ \t]*$/;
const ACTION_VALUE = /^([ \t]*[A-Za-z0-9_."'-]+[ \t]*=[ \t]*)(\{\{.*?\}\})([ \t]*(#.*)?)$/;

/** Adds (or updates) our handler; `template` undefined means there is no template yet and one is created. */
export function addK3sTemplateRuntime(template: string | undefined, options: K3sTemplateOptions): PatchResult {
  validateRuntimeSpec(options);
  const source = options.source ?? DEFAULT_SOURCE;
  const original = template ?? K3S_TEMPLATE_BASE;
  const base = removeBlock(original, options.handler);
  const read = templateReader(source);
  const parsed = read(base);
  if (parsed.version !== undefined && parsed.version !== options.configVersion) {
    throw new ConfigPatchError(
      `${source} sets version = ${String(parsed.version)} but is used as a version ${options.configVersion} template; ` +
        `use config.toml.tmpl for version 2 and config-v3.toml.tmpl for version 3`,
    );
  }
  const plugin = defaultPluginName(options.configVersion);
  assertCanAddHandler(parsed, scanStatements(templateAsToml(base), source), plugin, options.handler, source);
  const rendered = options.renderedConfig === undefined ? undefined : readRendered(options.renderedConfig, options.handler, base !== original);

  const tables = runtimeTables({
    handler: options.handler,
    binaryPath: options.binaryPath,
    plugin,
    version: options.configVersion,
    systemdCgroup: rendered && hostSystemdCgroup(rendered, renderedPlugin(rendered)),
  });
  const text = putBlock(original, options.handler, tables.lines);
  verifyAddition({ base, parsedBase: parsed, result: text, handler: options.handler, fragment: tables.fragment, source, read });
  return { text, changed: template === undefined || text !== original };
}

/** Takes our handler's block out of the template; `deletable` when only the template we create is left. */
export function removeK3sTemplateRuntime(template: string | undefined, handler: string, source = DEFAULT_SOURCE): RemovalResult {
  validateHandler(handler);
  if (template === undefined) return { text: '', changed: false, deletable: true };
  const text = removeBlock(template, handler);
  if (text !== template) verifyRemoval({ before: template, result: text, handler, source, read: templateReader(source) });
  return { text, changed: text !== template, deletable: text === K3S_TEMPLATE_BASE };
}

/**
 * Parses the rendered config and refuses a handler that k3s defines itself. When the template already holds
 * our block, the rendered file is expected to define the handler once: from our block.
 */
function readRendered(rendered: string, handler: string, templateHasBlock: boolean): TomlTable {
  const handlerPaths = (['grpc', 'runtime'] as const).map((plugin) => [...runtimesPath(plugin), handler]);
  const definitions = scanStatements(rendered, RENDERED_SOURCE).filter((s) =>
    handlerPaths.some(
      (path) => pathStartsWith(s.path, path) && (s.kind === 'key' ? s.tableDepth < path.length : s.path.length === path.length),
    ),
  );
  if (definitions.length > (templateHasBlock ? 1 : 0)) {
    throw new ConfigPatchError(
      `k3s already defines runtime "${handler}" in its rendered config.toml (line ${definitions[0].line}), ` +
        `usually because that binary is on PATH; choose another handler name so the two do not collide`,
    );
  }
  return parseToml(rendered, RENDERED_SOURCE);
}

/** The plugin name k3s rendered its runtimes under (its containerd 1.7 releases render version 2). */
function renderedPlugin(rendered: TomlTable): CriPluginName {
  return usesPlugin(rendered, 'runtime') ? 'runtime' : 'grpc';
}

function templateReader(source: string): TomlReader {
  const read = tomlReader(`${source} (read as TOML without its template actions)`);
  return (text) => read(templateAsToml(text));
}

/** The template's TOML: action-only lines blanked (keeping line numbers), lone action values quoted. */
function templateAsToml(template: string): string {
  return template
    .split('\n')
    .map((line) => {
      const content = line.endsWith('\r') ? line.slice(0, -1) : line;
      const cr = line.slice(content.length);
      if (ACTION_LINE.test(content)) return cr;
      const value = ACTION_VALUE.exec(content);
      return value ? `${value[1]}${JSON.stringify(value[2])}${value[3]}${cr}` : line;
    })
    .join('\n');
}
