/**
 * The one place where the catalog's `configEdit` kinds meet lib/toml: for each kind, which host file holds our
 * handler (for containerd 2.x: our drop-in where the config imports a directory), what it should contain, and
 * how our part is taken out again. Pure: reads go through a {@link ConfigReader}; nothing is written here.
 */
import type { ConfigEdit } from '../../catalog';
import {
  addContainerdRuntime,
  addK3sTemplateRuntime,
  ConfigPatchError,
  containerdMajorOfFile,
  findDropInLocation,
  globMatch,
  renderContainerdDropIn,
  crioDropInFileName,
  RemovalResult,
  removeContainerdRuntime,
  removeK3sTemplateRuntime,
  renderCrioDropIn,
  crioAnnotationDecision,
  parseCrioVersion,
} from '../../toml';
import type { FileRole } from '../plan/state';
import { formatVersion, RuntimeVersion } from './version';

export interface ConfigReader {
  /** A host file's text, or undefined when it does not exist. */
  readText(hostPath: string): string | undefined;
  /** Names in a host directory, or undefined when it does not exist. */
  list(hostDir: string): string[] | undefined;
}

export interface DesiredConfig {
  /** Host path of the file holding our handler. */
  readonly path: string;
  readonly role: FileRole;
  /** Its text now (undefined: missing). */
  readonly current: string | undefined;
  /** Its text with our handler registered. */
  readonly text: string;
  /** Notes for the log (e.g. where the containerd version came from). */
  readonly notes: readonly string[];
  /** What the operator should check (e.g. WASM annotations a CRI-O of unknown version may filter). */
  readonly warnings?: readonly string[];
}

export interface HandlerSpec {
  readonly handler: string;
  /** Host path of the binary the runtime runs for the handler. */
  readonly binaryPath: string;
  /** The node's runtime version (Node object or host binary), if known. */
  readonly runtimeVersion?: RuntimeVersion;
  /** The version as the Node object or the binary printed it (CRI-O's rules tell pre-releases apart). */
  readonly runtimeVersionText?: string;
  /** Where `runtimeVersion` came from, for the notes. */
  readonly runtimeVersionSource?: string;
  /** A handler registered by an earlier install under another name; its block is taken out first. */
  readonly previousHandler?: string;
}

/** What the config file(s) of this target should look like with our handler in. */
export function desiredConfig(edit: ConfigEdit, spec: HandlerSpec, reader: ConfigReader): DesiredConfig {
  const notes: string[] = [];
  const stripPrevious = (text: string | undefined, role: FileRole): string | undefined =>
    text !== undefined && spec.previousHandler !== undefined && spec.previousHandler !== spec.handler
      ? revertConfig(role, text, spec.previousHandler, 'the existing config').text
      : text;

  switch (edit.kind) {
    case 'containerd-config': {
      const current = reader.readText(edit.path);
      const { major, minor } = containerdVersion(edit.defaultContainerdMajor, spec, current, edit.path, notes);
      // Without a config file containerd imports nothing (measured: 2.2.9 and 2.3.7 then read no conf.d).
      if (current === undefined) notes.push(`no drop-in: there is no ${edit.path} (without one containerd imports nothing): it is created`);
      const dropIn = current === undefined ? undefined : containerdDropIn({ path: edit.path, text: current }, major, minor, spec, reader, notes);
      if (dropIn) return dropIn;
      const result = addContainerdRuntime(stripPrevious(current, 'containerd-config'), {
        handler: spec.handler,
        binaryPath: spec.binaryPath,
        containerdMajor: major,
        containerdMinor: minor,
        source: edit.path,
      });
      return { path: edit.path, role: 'containerd-config', current, text: result.text, notes };
    }
    case 'containerd-template': {
      const rendered = reader.readText(edit.rendered);
      const v3 = rendered !== undefined && declaredVersion(rendered) === 3;
      if (rendered !== undefined) {
        // What k3s renders says which containerd reads it when the Node does not: version 3 is 2.x's.
        const major = spec.runtimeVersion ? (spec.runtimeVersion.major >= 2 ? 2 : 1) : v3 ? 2 : 1;
        const dropIn = containerdDropIn({ path: edit.rendered, text: rendered }, major, spec.runtimeVersion?.minor, spec, reader, notes);
        if (dropIn) return dropIn;
      }
      const path = v3 ? edit.templateV3 : edit.template;
      notes.push(
        rendered === undefined
          ? `no rendered ${edit.rendered}: assuming config version 2 (${edit.template})`
          : `rendered config is version ${v3 ? 3 : 2}: using ${path}`,
      );
      const current = reader.readText(path);
      const result = addK3sTemplateRuntime(stripPrevious(current, 'containerd-template'), {
        handler: spec.handler,
        binaryPath: spec.binaryPath,
        configVersion: v3 ? 3 : 2,
        renderedConfig: rendered,
        source: path,
      });
      return { path, role: 'containerd-template', current, text: result.text, notes };
    }
    case 'crio-dropin': {
      const ownName = crioDropInFileName(spec.handler);
      // CRI-O reads every file in the directory, not only *.conf (OpenShift's own is 00-default).
      const names = (reader.list(edit.dropInDir) ?? []).filter((n) => n !== ownName && reader.list(`${edit.dropInDir}/${n}`) === undefined);
      const dropIns = names.flatMap((name) => {
        const text = reader.readText(`${edit.dropInDir}/${name}`);
        return text === undefined ? [] : [{ name, text }];
      });
      const main = reader.readText(edit.mainConfig);
      const crio = parseCrioVersion(spec.runtimeVersionText);
      const decision = crioAnnotationDecision(crio, crio ? (spec.runtimeVersionSource ?? 'unknown') : 'unknown');
      notes.push(decision.note);
      const dropIn = renderCrioDropIn({
        handler: spec.handler,
        binaryPath: spec.binaryPath,
        hostConfig: main === undefined ? undefined : { name: edit.mainConfig, text: main },
        dropIns,
        allowedAnnotations: decision.allowedAnnotations,
      });
      const path = `${edit.dropInDir}/${dropIn.fileName}`;
      const warnings = decision.warning === undefined ? [] : [decision.warning];
      return { path, role: 'crio-dropin', current: reader.readText(path), text: dropIn.text, notes, warnings };
    }
  }
}

/**
 * The containerd major (and minor) the config is written for: the Node object's or the host binary's version;
 * else what the file itself says (its version line, and the plugin names it uses, which win over a
 * `version = 2` line); else the catalog's default.
 */
function containerdVersion(defaultMajor: 1 | 2, spec: HandlerSpec, current: string | undefined, source: string, notes: string[]): { major: 1 | 2; minor?: number } {
  if (spec.runtimeVersion !== undefined) {
    notes.push(`containerd ${formatVersion(spec.runtimeVersion)} ${spec.runtimeVersionSource ?? ''}`.trim());
    return spec.runtimeVersion.major >= 2 ? { major: 2, minor: spec.runtimeVersion.major === 2 ? spec.runtimeVersion.minor : undefined } : { major: 1 };
  }
  const fromFile = current === undefined ? undefined : containerdMajorOfFile(current, source);
  if (fromFile) {
    notes.push(`containerd 2.x (${fromFile.why}; neither the node object nor a host binary said)`);
    return { major: 2 };
  }
  notes.push(`containerd ${defaultMajor}.x (catalog default; neither the node object nor a host binary said)`);
  return { major: defaultMajor };
}

/**
 * Our drop-in, where the containerd 2.x reading `config` imports a directory it fits in; undefined (with the
 * reason in the notes) where the handler goes into the file itself. containerd 1.x never gets one: an imported
 * file's plugin section replaces the whole section of the main file there (containerd#5837).
 */
function containerdDropIn(
  config: { path: string; text: string },
  major: 1 | 2,
  minor: number | undefined,
  spec: HandlerSpec,
  reader: ConfigReader,
  notes: string[],
): DesiredConfig | undefined {
  if (major === 1) {
    notes.push(`no drop-in: containerd 1.x replaces whole plugin sections with those of imported files (containerd#5837)`);
    return undefined;
  }
  const decision = findDropInLocation(config.text, config.path, spec.handler);
  if (!decision.location) {
    notes.push(`no drop-in: ${decision.why}`);
    return undefined;
  }
  const { path, dir, entry, pattern } = decision.location;
  const own = path.slice(dir.length + 1);
  const names = (reader.list(dir) ?? []).filter((n) => n !== own && globMatch(pattern, n) && reader.list(`${dir}/${n}`) === undefined).sort();
  const dropIns = names.flatMap((name) => {
    const text = reader.readText(`${dir}/${name}`);
    return text === undefined ? [] : [{ path: `${dir}/${name}`, text }];
  });
  // A block of ours still in the config (an earlier in-place install; k3s copies the template's into what it
  // renders) is what the plan takes out: the drop-in is judged against the config without it.
  const handlers = [spec.handler, ...(spec.previousHandler === undefined ? [] : [spec.previousHandler])];
  const without = handlers.reduce((text, handler) => removeContainerdRuntime(text, handler, config.path).text, config.text);
  const text = renderContainerdDropIn({ handler: spec.handler, binaryPath: spec.binaryPath, config: { path: config.path, text: without }, dropIns, containerdMinor: minor });
  notes.push(`drop-in: ${config.path} imports ${JSON.stringify(entry)}, which containerd 2.x merges into it: the handler goes into ${path} and ${config.path} is left as it is`);
  return { path, role: 'containerd-dropin', current: reader.readText(path), text, notes };
}

/**
 * Every host path where an install with this handler may have put our handler (for recovery without state).
 * With a reader, also our drop-in where the config (k3s: the rendered one) imports a directory it fits in.
 */
export function candidateConfigPaths(edit: ConfigEdit, handler: string, reader?: ConfigReader): Array<{ path: string; role: FileRole }> {
  switch (edit.kind) {
    case 'containerd-config':
      return [{ path: edit.path, role: 'containerd-config' }, ...dropInCandidate(edit.path, handler, reader)];
    case 'containerd-template':
      return [
        { path: edit.template, role: 'containerd-template' },
        { path: edit.templateV3, role: 'containerd-template' },
        ...dropInCandidate(edit.rendered, handler, reader),
      ];
    case 'crio-dropin':
      return [{ path: `${edit.dropInDir}/${crioDropInFileName(handler)}`, role: 'crio-dropin' }];
  }
}

function dropInCandidate(configPath: string, handler: string, reader: ConfigReader | undefined): Array<{ path: string; role: FileRole }> {
  const text = reader?.readText(configPath);
  if (text === undefined) return [];
  try {
    const { location } = findDropInLocation(text, configPath, handler);
    return location ? [{ path: location.path, role: 'containerd-dropin' }] : [];
  } catch (error) {
    // A config we cannot read has no drop-in of ours to find; install refuses it with the reason.
    if (error instanceof ConfigPatchError) return [];
    throw error;
  }
}

/**
 * The text with our handler's part taken out. `deletable`: what is left is only what we put there when we
 * created the file (then a file we created is deleted instead). Our drop-ins (CRI-O's, containerd's) are ours
 * as a whole.
 */
export function revertConfig(role: FileRole, text: string, handler: string, source: string): RemovalResult {
  switch (role) {
    case 'containerd-config':
      return removeContainerdRuntime(text, handler, source);
    case 'containerd-template':
      return removeK3sTemplateRuntime(text, handler, source);
    case 'containerd-dropin':
    case 'crio-dropin':
      return { text: '', changed: true, deletable: true };
    case 'original-config':
      return { text, changed: false, deletable: false };
    default:
      throw new Error(`not a config role: ${role}`);
  }
}

/** The top-level `version` a containerd config declares (read before its first table), if any. */
export function declaredVersion(text: string): number | undefined {
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed.startsWith('[')) return undefined;
    const match = /^version\s*=\s*(\d+)\s*(#.*)?$/.exec(trimmed);
    if (match) return Number(match[1]);
  }
  return undefined;
}
