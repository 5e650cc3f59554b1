/**
 * Which catalog target a node is, from what the node itself shows: its Node object (the runtime the kubelet
 * talks to, the kubelet's version with a distribution's mark such as `+k3s1`, the OS image, labels a
 * distribution sets) and its files (each target's runtime config, runtime binaries, systemd unit files and own
 * directories, at the paths the catalog gives). With `auto` the target is chosen from this, per node; an
 * explicit target that it contradicts is refused before anything is written. Either way the result says what
 * was found and why, for `plan` and the log.
 *
 * {@link gatherEvidence} only reads; {@link decideTarget} is pure; {@link resolveTarget} does both and logs.
 */
import {
  AUTO_CANDIDATES,
  AUTO_TARGET,
  ConfigEdit,
  Cri,
  findTarget,
  InvalidVariantError,
  resolveVariant,
  RuntimeSpec,
  TARGETS,
  TargetSpec,
} from '../../catalog';
import { InstallerError } from '../errors';
import { HostFs } from '../host/fs';
import { NodeInfo } from '../kube/cluster';
import { Logger } from '../log';
import { VERSION_SCHEME } from './detect';

/** Where systemd loads unit files from (systemd.unit(5), system units), most specific first. */
export const SYSTEMD_UNIT_DIRS = ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system', '/lib/systemd/system'];

/** Everything the decision is taken from. */
export interface NodeEvidence {
  /** The node's name, for messages. */
  readonly nodeName?: string;
  /** The Node object; undefined when it was not read (no cluster or node name, or the read failed). */
  readonly node?: NodeInfo;
  /** The catalog's host paths that exist on the node (see {@link footprint}). */
  readonly present: ReadonlySet<string>;
  /** For each catalog restart unit that has a unit file on the node: the file's host path. */
  readonly unitFiles: ReadonlyMap<string, string>;
  /** PRETTY_NAME from the host's /etc/os-release (what the kubelet reports as osImage). */
  readonly osRelease?: string;
}

/** The target for this run and why. */
export interface TargetDecision {
  /** The catalog target; its restart units narrowed to the one whose unit file exists, when that tells. */
  readonly target: TargetSpec;
  /** Whether the target was chosen here (`auto`) rather than given. */
  readonly auto: boolean;
  /** What was found and what it means, one line each. */
  readonly evidence: readonly string[];
  /** What the operator should know but does not stop the run. */
  readonly warnings: readonly string[];
}

/** A target that does not fit its node, or a node `auto` cannot place: refused before any write. */
export class TargetMismatchError extends InstallerError {}

const CRI_NAMES: Record<Cri, string> = { containerd: 'containerd', crio: 'CRI-O' };

/** The catalog, typed as specs (its literal types would hide the optional signature fields). */
const ALL: readonly TargetSpec[] = TARGETS;

/** The host paths that show a target's runtime is on a node: its config, its binaries, its own directories. */
export function footprint(target: TargetSpec): string[] {
  return [...new Set([...configPaths(target.configEdit), ...target.runtimeBinaries, ...(target.signature.ownPaths ?? [])])];
}

function configPaths(edit: ConfigEdit): string[] {
  switch (edit.kind) {
    case 'containerd-config':
      return [edit.path];
    case 'containerd-template':
      return [edit.dir];
    case 'crio-dropin':
      return [edit.mainConfig, edit.dropInDir];
  }
}

/** Reads what the node shows about itself. Nothing is written, nothing is run. */
export function gatherEvidence(fs: HostFs, node: NodeInfo | undefined, nodeName: string | undefined): NodeEvidence {
  const present = new Set(ALL.flatMap(footprint).filter((p) => fs.exists(p)));
  const unitFiles = new Map<string, string>();
  for (const unit of new Set(ALL.flatMap((t) => t.restartUnits))) {
    // A masked unit is a link to /dev/null: not a unit file.
    const file = SYSTEMD_UNIT_DIRS.map((d) => `${d}/${unit}.service`).find((p) => fs.stat(p)?.kind === 'file');
    if (file) unitFiles.set(unit, file);
  }
  return { nodeName, node, present, unitFiles, osRelease: prettyName(fs) };
}

function prettyName(fs: HostFs): string | undefined {
  for (const file of ['/etc/os-release', '/usr/lib/os-release']) {
    if (fs.stat(file)?.kind !== 'file') continue;
    const line = (fs.read(file) ?? Buffer.alloc(0)).toString('utf8').split('\n').find((l) => l.startsWith('PRETTY_NAME='));
    return line?.slice('PRETTY_NAME='.length).trim().replace(/^(["'])(.*)\1$/, '$2') || undefined;
  }
  return undefined;
}

/**
 * The target for this node: `auto` chooses the first of the catalog's candidates (most specific first) that the
 * node shows evidence of and nothing contradicts; a given target is checked against the same evidence. Throws
 * {@link TargetMismatchError} when the given target contradicts the node, or when `auto` finds no fit or cannot
 * tell two runtimes apart. `runtime`, when given, must be shipped for the target chosen.
 */
export function decideTarget(choice: TargetSpec | typeof AUTO_TARGET, runtime: RuntimeSpec | undefined, e: NodeEvidence): TargetDecision {
  const facts = factLines(e);
  if (choice === AUTO_TARGET) {
    const { target, why, passedOver } = chooseTarget(e);
    if (runtime) shipped(target, runtime);
    const unit = restartUnit(target, e);
    // Chosen on the kubelet's word alone: the files install edits may not be where this root has them.
    const warnings = hostTraces(target.cri, e).length === 0 ? [`none of ${CRI_NAMES[target.cri]}'s files is on the node root (${footprint(target).join(', ')}): is the node root the host's /?`] : [];
    return { target: unit.target, auto: true, evidence: [...facts, `target ${target.name}: ${why}`, ...passedOver, unit.line], warnings };
  }
  const problems = contradictions(choice, e);
  if (problems.length > 0) {
    let hint = '';
    try {
      hint = `; target auto would choose ${chooseTarget(e).target.name}`;
    } catch (error) {
      // auto cannot place the node either: the contradictions say enough.
      if (!(error instanceof TargetMismatchError)) throw error;
    }
    throw new TargetMismatchError(
      `target ${choice.name} does not fit node ${e.nodeName ?? '(unnamed)'}: ${problems.join('; ')} (${facts.join('; ')})${hint}; nothing was changed`,
      `set the target this node is, or auto, for this node (the chart's target value or a release per node pool with nodeSelector)`,
    );
  }
  const unit = restartUnit(choice, e);
  return { target: unit.target, auto: false, evidence: [...facts, `target ${choice.name} (given): nothing on the node contradicts it`, unit.line], warnings: osWarnings(choice, e) };
}

/** What the Node object and the host say, two lines. */
function factLines(e: NodeEvidence): string[] {
  const n = e.node;
  const node = n
    ? `node object: runtime ${n.containerRuntimeVersion || '(none reported)'}, kubelet ${n.kubeletVersion || '(none reported)'}, OS ${n.osImage || '(none reported)'}${markLabels(e).map((l) => `, label ${l}`).join('')}`
    : 'node object: not read (no cluster or node name): the node files alone decide';
  const found = [...e.present].sort();
  const units = [...e.unitFiles.values()].sort();
  const host = found.length + units.length > 0 ? `host: ${[...found, ...units].join(', ')}` : "host: none of the catalog's runtime files, binaries or unit files";
  return [node, e.osRelease && e.osRelease !== n?.osImage ? `${host}; /etc/os-release: ${e.osRelease}` : host];
}

/** The labels of the Node that some target's signature names. */
function markLabels(e: NodeEvidence): string[] {
  const keys = new Set(ALL.flatMap((t) => t.signature.nodeLabels ?? []));
  return Object.entries(e.node?.labels ?? {}).filter(([k]) => keys.has(k)).map(([k, v]) => `${k}=${v}`);
}

type NodeCri = { kind: 'none' } | { kind: 'cri'; cri: Cri; text: string } | { kind: 'other'; text: string };

/** The runtime the kubelet reports talking to. */
function nodeCri(e: NodeEvidence): NodeCri {
  const text = e.node?.containerRuntimeVersion ?? '';
  if (text === '') return { kind: 'none' };
  const cri = (Object.keys(VERSION_SCHEME) as Cri[]).find((c) => text.startsWith(VERSION_SCHEME[c]));
  return cri ? { kind: 'cri', cri, text } : { kind: 'other', text };
}

/** The host paths (files and unit files) that show a CRI is on the node. */
function hostTraces(cri: Cri, e: NodeEvidence): string[] {
  const targets = ALL.filter((t) => t.cri === cri);
  const paths = [...new Set(targets.flatMap(footprint))].filter((p) => e.present.has(p));
  const units = [...new Set(targets.flatMap((t) => t.restartUnits))].flatMap((u) => (e.unitFiles.has(u) ? [e.unitFiles.get(u) as string] : []));
  return [...paths, ...units].sort();
}

function otherCri(cri: Cri): Cri {
  return cri === 'containerd' ? 'crio' : 'containerd';
}

function hasSuffix(kubeletVersion: string, suffix: string): boolean {
  return kubeletVersion.includes(`+${suffix}`);
}

/** The own paths of `t` that exist; empty when it has none or none exists. */
function ownPathsPresent(t: TargetSpec, e: NodeEvidence): string[] {
  return (t.signature.ownPaths ?? []).filter((p) => e.present.has(p));
}

/**
 * Whether the node is of distribution `d` (one that keeps its own runtime config): its own config is there and
 * the kubelet, when known, carries the distribution's mark. A kubelet without the mark next to such a directory
 * (a leftover, or k3s run against another runtime) does not make the node `d`.
 */
function claims(d: TargetSpec, e: NodeEvidence): boolean {
  if (ownPathsPresent(d, e).length === 0) return false;
  const suffix = d.signature.kubeletSuffix;
  const kubelet = e.node?.kubeletVersion;
  return suffix === undefined || !kubelet || hasSuffix(kubelet, suffix);
}

function describeEdit(t: TargetSpec): string {
  const edit = t.configEdit;
  switch (edit.kind) {
    case 'containerd-config':
      return edit.path;
    case 'containerd-template':
      return `the config it renders into ${edit.dir}`;
    case 'crio-dropin':
      return `${edit.mainConfig} and ${edit.dropInDir}`;
  }
}

function sameLayout(a: TargetSpec, b: TargetSpec): boolean {
  return JSON.stringify(a.configEdit) === JSON.stringify(b.configEdit);
}

/** Why target `t` is wrong for this node, one clause each; empty when nothing contradicts it. */
export function contradictions(t: TargetSpec, e: NodeEvidence): string[] {
  const problems: string[] = [];
  const reported = nodeCri(e);
  if (reported.kind === 'other') problems.push(`the kubelet talks to ${reported.text}, a runtime no target configures`);
  else if (reported.kind === 'cri' && reported.cri !== t.cri) problems.push(`the kubelet talks to ${reported.text}, not to ${CRI_NAMES[t.cri]}`);
  else if (reported.kind === 'none') {
    const own = hostTraces(t.cri, e);
    const other = hostTraces(otherCri(t.cri), e);
    if (own.length === 0 && other.length > 0) {
      problems.push(`no ${CRI_NAMES[t.cri]} on the node (none of ${[...new Set(ALL.filter((x) => x.cri === t.cri).flatMap(footprint))].join(', ')}), but ${CRI_NAMES[otherCri(t.cri)]}: ${other.join(', ')}`);
    }
  }
  const own = t.signature.ownPaths;
  if (own && ownPathsPresent(t, e).length === 0) problems.push(`${own.join(', ')} does not exist, which every ${t.name} node has`);
  const suffix = t.signature.kubeletSuffix;
  const kubelet = e.node?.kubeletVersion;
  if (suffix && kubelet && !hasSuffix(kubelet, suffix)) problems.push(`the kubelet is ${kubelet}, not ${t.name}'s (+${suffix}…)`);
  for (const d of ALL) {
    if (d.cri !== t.cri || d.name === t.name || sameLayout(d, t) || !claims(d, e)) continue;
    const mark = d.signature.kubeletSuffix && kubelet ? ` and the kubelet is ${kubelet}` : '';
    problems.push(`the node is ${d.name} (${ownPathsPresent(d, e).join(', ')} exists${mark}): its ${CRI_NAMES[d.cri]} reads ${describeEdit(d)}, not ${describeEdit(t)}`);
  }
  return problems;
}

/** What shows the node is of `t`'s kind, as a clause; undefined when nothing does. */
function evidenceFor(t: TargetSpec, e: NodeEvidence): string | undefined {
  const sig = t.signature;
  const kubelet = e.node?.kubeletVersion;
  if (sig.ownPaths) {
    const own = ownPathsPresent(t, e);
    if (own.length === 0) return undefined;
    const mark = sig.kubeletSuffix && kubelet && hasSuffix(kubelet, sig.kubeletSuffix) ? `the kubelet is ${kubelet} and ` : '';
    return `${mark}${own.join(', ')} exists (${t.name}'s own ${CRI_NAMES[t.cri]} config)`;
  }
  const cri = criEvidence(t.cri, e);
  if (cri === undefined || !(sig.nodeLabels || sig.osImage)) return cri;
  const labels = Object.entries(e.node?.labels ?? {}).filter(([k]) => (sig.nodeLabels ?? []).includes(k)).map(([k, v]) => `label ${k}=${v}`);
  const os = osName(e);
  const marks = [...labels, ...(sig.osImage && os?.startsWith(sig.osImage) ? [`OS ${os}`] : [])];
  return marks.length > 0 ? `${cri}; ${marks.join(', ')}` : undefined;
}

/** That the kubelet talks to `cri`, or else that its files are on the node; undefined when neither. */
function criEvidence(cri: Cri, e: NodeEvidence): string | undefined {
  const reported = nodeCri(e);
  if (reported.kind === 'cri' && reported.cri === cri) return `the kubelet talks to ${reported.text}`;
  const traces = hostTraces(cri, e);
  return traces.length > 0 ? `${CRI_NAMES[cri]} is on the node (${traces.join(', ')})` : undefined;
}

function osName(e: NodeEvidence): string | undefined {
  return e.node?.osImage || e.osRelease;
}

/** `auto`'s choice: the first candidate with evidence and no contradiction, the runtime told apart. */
function chooseTarget(e: NodeEvidence): { target: TargetSpec; why: string; passedOver: string[] } {
  const judged = AUTO_CANDIDATES.map(findTarget).map((t) => ({ t, problems: contradictions(t, e), why: evidenceFor(t, e) }));
  const fits = judged.filter((j) => j.problems.length === 0 && j.why !== undefined);
  const node = e.nodeName ?? '(unnamed)';
  const fix = 'set the target this node is (see the support matrix), or make the Node object readable (NODE_NAME and the installer ServiceAccount) so the kubelet\'s runtime decides';
  const cris = [...new Set(fits.map((f) => f.t.cri))];
  if (cris.length > 1) {
    throw new TargetMismatchError(
      `target auto cannot tell which runtime node ${node}'s kubelet uses: containerd (${hostTraces('containerd', e).join(', ')}) and CRI-O (${hostTraces('crio', e).join(', ')}) are both on it and no Node object was read; nothing was changed`,
      fix,
    );
  }
  if (fits.length === 0) {
    const reported = nodeCri(e);
    const why =
      reported.kind === 'other'
        ? `the kubelet talks to ${reported.text}, a runtime no target configures`
        : hostTraces('containerd', e).length + hostTraces('crio', e).length === 0 && reported.kind === 'none'
          ? `neither containerd nor CRI-O: ${e.node ? 'the Node object reports no runtime' : 'no Node object was read'} and none of ${[...new Set(ALL.flatMap(footprint))].join(', ')} exists on the node`
          : judged.filter((j) => reported.kind !== 'cri' || j.t.cri === reported.cri).map((j) => `${j.t.name}: ${j.problems[0] ?? 'nothing on the node shows it'}`).join('; ');
    throw new TargetMismatchError(`target auto finds no target for node ${node}: ${why} (${factLines(e).join('; ')}); nothing was changed`, fix);
  }
  const chosen = fits[0];
  const passedOver = judged
    .slice(0, judged.indexOf(chosen))
    .filter((j) => j.t.cri === chosen.t.cri)
    .map((j) => `not ${j.t.name}: ${j.problems[0] ?? 'nothing on the node shows it'}`);
  return { target: chosen.t, why: chosen.why as string, passedOver };
}

/** The restart unit: the one of the target's units whose unit file exists, when exactly one does. */
function restartUnit(t: TargetSpec, e: NodeEvidence): { target: TargetSpec; line: string } {
  const found = t.restartUnits.filter((u) => e.unitFiles.has(u));
  if (found.length === 1) {
    const line = `restart unit: ${found[0]} (${e.unitFiles.get(found[0])})`;
    return { target: t.restartUnits.length > 1 ? { ...t, restartUnits: found } : t, line };
  }
  const units = t.restartUnits.join(' or ');
  if (found.length === 0) return { target: t, line: `restart unit: ${units} (no unit file under ${SYSTEMD_UNIT_DIRS.join(', ')}: systemctl is asked at the restart)` };
  return { target: t, line: `restart unit: ${units} (${found.map((u) => e.unitFiles.get(u)).join(', ')} exist: systemctl is asked at the restart)` };
}

function osWarnings(t: TargetSpec, e: NodeEvidence): string[] {
  const os = osName(e);
  const expected = t.signature.osImage;
  if (!expected || !os || os.startsWith(expected)) return [];
  return [`target ${t.name} is for ${expected} nodes and this one runs ${os}: its ${CRI_NAMES[t.cri]} files are where ${t.name} expects them, so the install goes on`];
}

/** Every candidate ships every runtime `auto` accepts (catalog test); this holds the line should that change. */
function shipped(target: TargetSpec, runtime: RuntimeSpec): void {
  try {
    resolveVariant(target.name, runtime.name);
  } catch (error) {
    if (error instanceof InvalidVariantError) throw new TargetMismatchError(`target auto chose ${target.name}, which does not ship ${runtime.name}: ${error.message}; nothing was changed`, 'choose an ociType every node kind ships');
    throw error;
  }
}

/** The target of this run: the evidence gathered, the decision taken and logged (its warnings as warnings). */
export function resolveTarget(
  choice: TargetSpec | typeof AUTO_TARGET,
  runtime: RuntimeSpec,
  fs: HostFs,
  node: NodeInfo | undefined,
  nodeName: string | undefined,
  log: Logger,
): TargetDecision {
  const decision = decideTarget(choice, runtime, gatherEvidence(fs, node, nodeName));
  log.info(`target ${decision.target.name} (${decision.auto ? 'auto' : 'given'})`, { evidence: decision.evidence });
  decision.warnings.forEach((w) => log.warn(w));
  return decision;
}
