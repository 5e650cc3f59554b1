/** `plan`: what install would change on this node, as a unified diff, and whether it would restart the runtime. */
import { locateArtifacts, verifyArtifacts } from '../artifacts';
import { checkNodeRoot } from '../host/node-root';
import { selinuxEnabled } from '../host/selinux';
import { Effects } from '../installer';
import { loadPlanning } from '../plan/host-view';
import { artifactsToCopy, discoverState, Plan, planInstall, planSafely, renderPlan } from '../plan/plan';
import { detectRuntime } from '../runtime/detect';
import { requireVariant, Settings } from '../settings';

export interface PlanOutput {
  readonly plan: Plan;
  /** The diff and a summary line, for humans. */
  readonly text: string;
}

export async function planCommand(settings: Settings, effects: Effects): Promise<PlanOutput> {
  const { target, runtime } = requireVariant(settings);
  const artifacts = locateArtifacts(settings.artifacts, target, runtime, settings.prefix);
  checkNodeRoot(effects.fs);
  const { recorded, view } = loadPlanning(effects.fs, settings.prefix);
  const previous = recorded ?? planSafely(() => discoverState(view, target, settings.handler, settings.prefix));
  const node = await detectRuntime(target, effects.fs, effects.runner, effects.cluster, settings.nodeName, effects.log);
  const selinux = selinuxEnabled(effects.fs);
  const plan = planSafely(() =>
    planInstall(view, { target, runtime, handler: settings.handler, prefix: settings.prefix, artifacts, node, selinux }, previous),
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
  const notes = [...plan.notes.map((n) => `note: ${n}`), ...plan.warnings.map((w) => `warning: ${w}`)];
  return { plan, text: [body, ...notes, summary, restart].filter((s) => s !== '').join('\n') + '\n' };
}
