/**
 * The take-over of what the original knawd-deployer (1.x) left on a node, planned purely from a {@link HostView}:
 * its handler entry (`crun`) in the runtime's main config, its crun at /usr/local/sbin/crun, the engine library
 * that crun loads, and the `.bak` copies of the configs. Recognised by exact shape (lib/toml/original-entry.ts):
 * an entry of that name with other content is an admin's and stays, with a warning, and then so do the files.
 *
 * The entry and the files go only once no pod on the node runs under the original's handler (the caller asks the
 * runtime); until then they stay, beside ours. A `.bak` the original left is the config before the original
 * touched it only when it holds no entry of the original's (its manager copies the file it is about to rewrite,
 * so a second run saves the already modified one): such a one becomes the original that `remove` restores, when
 * it says the same as the config does once both releases' entries are out (the original's rewrite dropped only
 * comments and layout); otherwise the config as it is stays the original, and the state says why.
 */
import { ORIGINAL_HANDLER, ORIGINAL_NODE, originalBackupPath } from '../../catalog';
import { sha256 } from '../artifacts';
import { FileDigest } from '../host/fs';
import { findOriginalEntry, OriginalConfigKind, OriginalEntryShape, removeOriginalEntry } from '../../toml/original-entry';
import { deepEqual } from '../../toml/tree';
import { parseToml } from '../../toml/verify';
import { FileRecord, loadBytes, storeBytes, TakeoverRecord } from './state';
import type { FileOp, HostView } from './plan';

export interface OriginalConfig {
  readonly path: string;
  readonly kind: OriginalConfigKind;
  readonly backupPath: string;
  /** The `.bak` beside it, when there is one. */
  readonly backup?: Buffer;
}

export interface OriginalFindings {
  /** Configs that hold the original's entry. */
  readonly configs: readonly OriginalConfig[];
  /** The original's files: its crun and the engine library that crun names. */
  readonly files: readonly { readonly path: string; readonly role: 'binary' | 'library'; readonly before: FileDigest }[];
  /** What looks like the original's but is not: left alone. */
  readonly warnings: readonly string[];
}

function shapeFor(kind: OriginalConfigKind): OriginalEntryShape {
  return { kind, handler: ORIGINAL_HANDLER, crunPath: ORIGINAL_NODE.crun, podAnnotations: ORIGINAL_NODE.containerdPodAnnotations, runtimeRoot: ORIGINAL_NODE.crioRuntimeRoot };
}

const CONFIGS: readonly { path: string; kind: OriginalConfigKind }[] = [
  { path: ORIGINAL_NODE.configs.containerd, kind: 'containerd' },
  { path: ORIGINAL_NODE.configs.microk8s, kind: 'containerd' },
  { path: ORIGINAL_NODE.configs.crio, kind: 'crio' },
];

/** The config text without the original's entry (every other byte kept); unchanged when it has none. */
export function withoutOriginalEntry(text: string, kind: OriginalConfigKind, source: string): string {
  return removeOriginalEntry(text, shapeFor(kind), source);
}

/** What of the original's is on the node; undefined when nothing. */
export function findOriginal(view: HostView): OriginalFindings | undefined {
  const configs: OriginalConfig[] = [];
  const warnings: string[] = [];
  for (const c of CONFIGS) {
    const text = view.read(c.path)?.toString('utf8');
    if (text === undefined) continue;
    let finding;
    try {
      finding = findOriginalEntry(text, shapeFor(c.kind), c.path);
    } catch {
      continue; // not TOML: the install's own edit says so, if it is the file it edits
    }
    if (finding.state === 'foreign') {
      warnings.push(`${c.path} has a runtime ${ORIGINAL_HANDLER} that is not the original knawd-deployer's (${finding.why}): left alone, and so are ${ORIGINAL_NODE.crun} and the engine libraries`);
    }
    if (finding.state !== 'original') continue;
    const backupPath = originalBackupPath(c.path);
    const backup = view.read(backupPath);
    configs.push({ path: c.path, kind: c.kind, backupPath, ...(backup ? { backup } : {}) });
  }
  if (configs.length === 0 || warnings.length > 0) return warnings.length > 0 ? { configs: [], files: [], warnings } : undefined;
  const files: { path: string; role: 'binary' | 'library'; before: FileDigest }[] = [];
  const crun = view.read(ORIGINAL_NODE.crun);
  const crunDigest = view.digest(ORIGINAL_NODE.crun);
  if (crun && crunDigest) {
    files.push({ path: ORIGINAL_NODE.crun, role: 'binary', before: crunDigest });
    // The engine the original's crun was built against: it names the library by its soname.
    const dirs = [...new Set(configs.map((c) => ORIGINAL_NODE.libraryDir[c.kind]))];
    for (const soname of Object.values(ORIGINAL_NODE.libraries)) {
      if (!crun.includes(Buffer.from(soname))) continue;
      for (const dir of dirs) {
        const digest = view.digest(`${dir}/${soname}`);
        if (digest) files.push({ path: `${dir}/${soname}`, role: 'library', before: digest });
      }
    }
  }
  return { configs, files, warnings };
}

/** A `.bak` holding no entry of the original's: the config before the original rewrote it. */
function pristineBackup(config: OriginalConfig): Buffer | undefined {
  if (!config.backup) return undefined;
  try {
    return findOriginalEntry(config.backup.toString('utf8'), shapeFor(config.kind), config.backupPath).state === 'absent' ? config.backup : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What `remove` restores a config to: the pristine `.bak` when it says what `stripped` (the config without either
 * release's entry) says, else `stripped` itself; with the reason when the `.bak` could not be used.
 */
export function beforeEither(config: OriginalConfig, stripped: Buffer): { bytes: Buffer; note?: string } {
  const backup = pristineBackup(config);
  if (!config.backup) return { bytes: stripped, note: `${config.backupPath} was gone: ${config.path} keeps the layout the original's rewrite gave it (its comments were lost then)` };
  if (!backup) return { bytes: stripped, note: `${config.backupPath} holds the original's entry (a second run of the original saved its own edit there): the file before the original is unknown; ${config.path} keeps the layout the original's rewrite gave it` };
  try {
    if (deepEqual(parseToml(backup.toString('utf8'), config.backupPath), parseToml(stripped.toString('utf8'), config.path))) return { bytes: backup };
  } catch {
    // an unreadable .bak restores nothing
  }
  return { bytes: stripped, note: `${config.path} was changed since the original saved ${config.backupPath}: those changes are kept, the comments and layout the original's rewrite lost are not restored` };
}

export interface TakeoverPlan {
  readonly ops: readonly FileOp[];
  readonly record: TakeoverRecord;
}

/**
 * The take-over once nothing runs under the original's handler: for each config, `text` (what this install writes
 * to it, or what is there) without the entry; the original's files and `.bak`s deleted.
 */
export function planTakeover(view: HostView, findings: OriginalFindings, desiredText: (path: string) => Buffer | undefined): TakeoverPlan {
  const ops: FileOp[] = [];
  const configs: TakeoverRecord['configs'][number][] = [];
  for (const config of findings.configs) {
    const before = view.read(config.path) as Buffer;
    const base = desiredText(config.path) ?? before;
    const after = Buffer.from(withoutOriginalEntry(base.toString('utf8'), config.kind, config.path), 'utf8');
    ops.push({ path: config.path, role: 'original-config', before, after, reason: `take out the original knawd-deployer's runtime ${ORIGINAL_HANDLER}` });
    configs.push({ path: config.path, kind: config.kind, ...(config.backup ? { backup: storeBytes(config.backup) } : {}) });
  }
  const deleted: { path: string; sha256: string }[] = [];
  for (const file of findings.files) {
    ops.push({ path: file.path, role: file.role, before: file.before, after: null, reason: "delete (the original knawd-deployer's)" });
    deleted.push({ path: file.path, sha256: file.before.sha256 });
  }
  for (const config of findings.configs) {
    if (!config.backup) continue;
    ops.push({ path: config.backupPath, role: 'original-config', before: config.backup, after: null, reason: "delete (the original knawd-deployer's backup; its bytes are kept in the state)" });
    deleted.push({ path: config.backupPath, sha256: sha256(config.backup) });
  }
  return { ops, record: { handler: ORIGINAL_HANDLER, configs, deleted } };
}

/**
 * The config record after the take-over: its `original` becomes what the file was before either release. `prior`:
 * our record of the file (containerd: the file our block is in), whose original still holds the entry; without
 * one (CRI-O's crio.conf beside our drop-in) a record is made, from `current`.
 */
export function takenOverRecord(config: OriginalConfig, prior: FileRecord | undefined, current: Buffer, written: Buffer, mode: number | undefined): { record: FileRecord; note?: string } {
  const withEntry = prior?.original ? loadBytes(prior.original) : current;
  const stripped = Buffer.from(withoutOriginalEntry(withEntry.toString('utf8'), config.kind, config.path), 'utf8');
  const restore = beforeEither(config, stripped);
  const base: FileRecord = prior ?? { path: config.path, role: 'original-config', created: false, sha256: sha256(written), originalMode: mode };
  return { record: { ...base, sha256: sha256(written), original: storeBytes(restore.bytes) }, note: restore.note };
}
