/**
 * The one place where the catalog's `configEdit` kinds meet lib/toml: for each kind, which host file holds our
 * handler, what it should contain, and how our part is taken out again. Pure: reads go through a
 * {@link ConfigReader}; nothing is written here.
 */
import type { ConfigEdit } from '../../catalog';
import {
  addContainerdRuntime,
  addK3sTemplateRuntime,
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
      const declared = current === undefined ? undefined : declaredVersion(current);
      let major: 1 | 2 = edit.defaultContainerdMajor;
      let minor: number | undefined;
      if (spec.runtimeVersion !== undefined) {
        major = spec.runtimeVersion.major >= 2 ? 2 : 1;
        minor = spec.runtimeVersion.major === 2 ? spec.runtimeVersion.minor : undefined;
        notes.push(`containerd ${formatVersion(spec.runtimeVersion)} ${spec.runtimeVersionSource ?? ''}`.trim());
      } else if (declared !== undefined && declared >= 3) {
        // Only containerd 2.x reads version 3 and 4; the file says so even when nothing else can be asked.
        major = 2;
        notes.push(`containerd 2.x (the config declares version = ${declared})`);
      } else {
        notes.push(`containerd ${major}.x (catalog default; neither the node object nor a host binary said)`);
      }
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

/** Every host path where an install with this handler may have put our handler (for recovery without state). */
export function candidateConfigPaths(edit: ConfigEdit, handler: string): Array<{ path: string; role: FileRole }> {
  switch (edit.kind) {
    case 'containerd-config':
      return [{ path: edit.path, role: 'containerd-config' }];
    case 'containerd-template':
      return [
        { path: edit.template, role: 'containerd-template' },
        { path: edit.templateV3, role: 'containerd-template' },
      ];
    case 'crio-dropin':
      return [{ path: `${edit.dropInDir}/${crioDropInFileName(handler)}`, role: 'crio-dropin' }];
  }
}

/**
 * The text with our handler's part taken out. `deletable`: what is left is only what we put there when we
 * created the file (then a file we created is deleted instead). A CRI-O drop-in is ours as a whole.
 */
export function revertConfig(role: FileRole, text: string, handler: string, source: string): RemovalResult {
  switch (role) {
    case 'containerd-config':
      return removeContainerdRuntime(text, handler, source);
    case 'containerd-template':
      return removeK3sTemplateRuntime(text, handler, source);
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
