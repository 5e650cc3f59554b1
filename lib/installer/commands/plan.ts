/**
 * `plan`: what the node was found to be and why (the target, its CRI and version, the config file and the
 * restart unit), then what install would change there, as a unified diff, and whether it would restart the
 * runtime. Changes nothing.
 */
import { locateArtifacts, verifyArtifacts } from '../artifacts';
import { checkNodeRoot } from '../host/node-root';
import { architectureOf, nodeRefusal } from '../node-support';
import { selinuxEnabled } from '../host/selinux';
import { Effects } from '../installer';
import { loadPlanning } from '../plan/host-view';
import { artifactsToCopy, discoverState, Plan, planInstall, planSafely, renderPlan } from '../plan/plan';
import { isConfigRole } from '../plan/state';
import { detectRuntime, NodeRuntime, readNode } from '../runtime/detect';
import { resolveTarget, TargetDecision } from '../runtime/detect-target';
import { originalOnNode } from '../runtime/original-pods';
import { formatVersion } from '../runtime/version';
import { requireVariant, Settings } from '../settings';

export interface PlanOutput {
  readonly plan: Plan;
  /** What was detected, the diff and a summary line, for humans. */
  readonly text: string;
}

export async function planCommand(settings: Settings, effects: Effects): Promise<PlanOutput> {
  const { target: choice, runtime } = requireVariant(settings);
  const refusal = nodeRefusal(settings.artifacts, runtime, architectureOf(effects));
  if (refusal) throw refusal;
  checkNodeRoot(effects.fs);
  const nodeObject = await readNode(effects.cluster, settings.nodeName, effects.log);
  const decision = resolveTarget(choice, runtime, effects.fs, nodeObject, settings.nodeName, effects.log);
  const target = decision.target;
  const artifacts = locateArtifacts(settings.artifacts, target, runtime, settings.prefix);
  const { recorded, view } = loadPlanning(effects.fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const node = await detectRuntime(target, effects.fs, effects.runner, nodeObject, effects.log);
  const selinux = selinuxEnabled(effects.fs);
  const socket = effects.fs.local(target.criSocket);
  const original = await originalOnNode(view, socket, await effects.probeSocket(socket), effects.listPodSandboxes, effects.log);
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, node, selinux, original }, previous),
  );
  // The plan shows what install would do, so it fails as install would on a damaged artifact.
  verifyArtifacts(artifactsToCopy(plan));
  const units = target.restartUnits.length === 1 ? target.restartUnits[0] : `${target.restartUnits.join(' or ')} (whichever exists)`;
  const restart = plan.next?.restartPending
    ? settings.restart === 'auto'
      ? `restart: ${units} would be restarted`
      : `restart: needed (${units}) but --restart none: it would stay pending`
    : 'restart: not needed';
  const body = renderPlan(plan);
  const summary = plan.ops.length === 0 && plan.mkdirs.length === 0 ? 'no changes' : `${plan.ops.length} file(s) would change`;
  const takeover = plan.next?.takeover;
  const waiting = takeover?.waitingFor;
  const takeoverNotes = !original?.findings.configs.length
    ? []
    : waiting
      ? [`take-over: the original knawd-deployer's handler ${takeover?.handler} and its files stay while ${waiting.length > 0 ? `pods run under it: ${waiting.join(', ')}` : 'the runtime cannot say which pods run under it'}; the node would stay pending`]
      : [`take-over: the original knawd-deployer's handler ${takeover?.handler} is taken out of ${original.findings.configs.map((c) => c.path).join(', ')}, its files deleted (above)`, ...(takeover?.notes ?? [])];
  const notes = [...plan.notes.map((n) => `note: ${n}`), ...takeoverNotes.map((n) => `note: ${n}`), ...[...decision.warnings, ...plan.warnings].map((w) => `warning: ${w}`)];
  return { plan, text: [...detected(decision, node, plan), body, ...notes, summary, restart].filter((s) => s !== '').join('\n') + '\n' };
}

/** The decision's evidence, the runtime's version and the config file the handler goes into. */
function detected(decision: TargetDecision, node: NodeRuntime, plan: Plan): string[] {
  const cri = decision.target.cri;
  const version = node.version ? `${cri} ${formatVersion(node.version)} (${node.versionSource})` : `${cri}, version unknown`;
  const config = plan.ops.find((op) => isConfigRole(op.role))?.path ?? plan.next?.files.find((f) => isConfigRole(f.role))?.path;
  return [...decision.evidence, `runtime: ${version}`, ...(config ? [`config: ${config}`] : [])].map((line) => `detected: ${line}`);
}
