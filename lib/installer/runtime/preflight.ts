/**
 * Before the first write: the node's own runtime binary loads the config install would write, and must see our
 * handler there, pointing at our wrapper. A runtime that would read the file differently from us (other plugin
 * names, a migration, an import) is caught here, with nothing changed.
 */
import type { TargetSpec } from '../../catalog';
import { InstallerError } from '../errors';
import { CommandRunner } from '../host/commands';
import { HostFs } from '../host/fs';
import { Logger } from '../log';
import { Plan } from '../plan/plan';
import { isConfigRole } from '../plan/state';
import { containerdReads, containerdReadsDropIn, crioReads, LoaderVerdict, RuntimeBinary } from './loader';

export interface PreflightInputs {
  readonly target: TargetSpec;
  readonly plan: Plan;
  readonly handler: string;
  /** Host path the handler must run: our wrapper. */
  readonly binaryPath: string;
  /** The host's runtime binary, if one was found. */
  readonly binary?: RuntimeBinary;
}

/** Resolves when the runtime sees the handler, or when it cannot be asked (said in the log); throws otherwise. */
export async function preflight(inputs: PreflightInputs, fs: HostFs, runner: CommandRunner, log: Logger): Promise<void> {
  const { target, plan, handler } = inputs;
  // Our containerd drop-in first: beside it, the plan may take an earlier in-place block out of the config.
  const edit = target.configEdit;
  const written = plan.ops.filter((o) => isConfigRole(o.role) && Buffer.isBuffer(o.after));
  const op = written.find((o) => o.role === 'containerd-dropin') ?? written.find((o) => o.role === edit.kind);
  if (!op || !Buffer.isBuffer(op.after)) return;
  // The take-over of the original knawd-deployer takes its runtime out of the same file on purpose.
  const removed = plan.next?.takeover && !plan.next.takeover.waitingFor ? [plan.next.takeover.handler] : [];
  if (edit.kind === 'containerd-template') {
    const what = op.role === 'containerd-dropin' ? `a drop-in read by the config ${target.name} renders at start` : `a template ${target.name} renders at start`;
    log.info(`pre-flight: ${op.path} is ${what}; the runtime is checked after the restart instead`);
    return;
  }
  if (!inputs.binary) {
    log.warn(`pre-flight skipped: none of ${target.runtimeBinaries.join(', ')} exists on the node to load ${op.path}; relying on the installer's own checks and the check after the restart`);
    return;
  }
  const candidate = { path: op.path, text: op.after.toString('utf8') };
  const current = op.before === undefined || !Buffer.isBuffer(op.before) ? undefined : op.before.toString('utf8');
  let verdict: LoaderVerdict;
  if (op.role === 'containerd-dropin' && edit.kind === 'containerd-config') {
    const now = fs.read(edit.path)?.toString('utf8') ?? '';
    const configOp = plan.ops.find((o) => o.path === edit.path && Buffer.isBuffer(o.after));
    const after = configOp && Buffer.isBuffer(configOp.after) ? configOp.after.toString('utf8') : now;
    verdict = await containerdReadsDropIn(fs, runner, inputs.binary, { config: { path: edit.path, now, after }, dropIn: candidate }, handler, removed);
  } else {
    verdict =
      edit.kind === 'containerd-config'
        ? await containerdReads(fs, runner, inputs.binary, candidate, current, handler, removed)
        : await crioReads(fs, runner, inputs.binary, edit.mainConfig, edit.dropInDir, candidate, handler);
  }
  if (!verdict.ran) {
    log.warn(`pre-flight skipped: ${inputs.binary.path} could not be run (${verdict.why}); relying on the installer's own checks and the check after the restart`);
    return;
  }
  const problem = handlerProblem(verdict, target, inputs.binaryPath);
  if (problem) {
    const seen = verdict.seen.length > 0 ? verdict.seen.join(', ') : 'none';
    throw new InstallerError(
      `pre-flight: the node's ${target.cri} (${inputs.binary.path}${inputs.binary.version ? ` ${inputs.binary.version}` : ''}) ${problem} in the config install would write to ${op.path}; it reads these runtime handlers instead: ${seen}; nothing was changed`,
      `the installer and this ${target.cri} disagree about ${op.path}: check that --target matches the node and report the file`,
    );
  }
  if (verdict.sideEffects.length > 0) {
    const shown = verdict.sideEffects.slice(0, 4).join('; ') + (verdict.sideEffects.length > 4 ? `; and ${verdict.sideEffects.length - 4} more` : '');
    throw new InstallerError(
      `pre-flight: with the config install would write to ${op.path}, the node's ${target.cri} (${inputs.binary.path}) would also read other settings differently: ${shown}; nothing was changed`,
      `adding the handler must change nothing else: report the file; meanwhile define these settings explicitly in ${op.path}`,
    );
  }
  const loads = op.role === 'containerd-dropin' && edit.kind === 'containerd-config' ? `${edit.path} with the new drop-in ${op.path}` : `the new ${op.path}`;
  log.info(`pre-flight: ${inputs.binary.path} loads ${loads} and sees handler ${handler}, and nothing else changes`);
}

/** What is wrong with the handler as the runtime read it; undefined when it is what we wrote. */
function handlerProblem(verdict: LoaderVerdict, target: TargetSpec, binaryPath: string): string | undefined {
  const h = verdict.handler;
  if (!h) return 'would not see the handler';
  if (target.cri === 'containerd') {
    const options = h.options as Record<string, unknown> | undefined;
    if (options?.BinaryName !== binaryPath) return `would run ${JSON.stringify(options?.BinaryName)} for the handler, not ${binaryPath}`;
    const annotations = Array.isArray(h.pod_annotations) ? h.pod_annotations : [];
    if (!annotations.includes('module.wasm.image/variant')) return 'would not pass the WASM pod annotations to the handler';
    return undefined;
  }
  if (h.runtime_path !== binaryPath) return `would run ${JSON.stringify(h.runtime_path)} for the handler, not ${binaryPath}`;
  return undefined;
}
