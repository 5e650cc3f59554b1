/**
 * The installer pod's readiness marker (`--ready-file`): a file in the pod's own file system (an emptyDir;
 * the root file system is read-only) that exists exactly while this node is installed and verified. The
 * readiness probe runs the agent's `ready` command on it, so the pod is Ready only once its node is done:
 * RollingUpdate then really goes node by node and `kubectl rollout status` / `helm install --wait` mean
 * "every selected node is installed". It follows the state label: `installed` writes it, any other state
 * (pending, failed, removed) takes it away.
 */
import * as fs from 'fs';
import * as path from 'path';
import { NodeState } from '../catalog';
import { InstallerError, messageOf } from './errors';
import { Logger } from './log';

export class ReadyMarker {
  constructor(
    private readonly file: string | undefined,
    private readonly log: Logger,
  ) {}

  /** Follows a reported node state. */
  follow(state: NodeState | null): void {
    if (!this.file) return;
    try {
      if (state === 'installed') this.write(this.file);
      else fs.rmSync(this.file, { force: true });
    } catch (error) {
      throw new InstallerError(
        `cannot ${state === 'installed' ? 'write' : 'remove'} the readiness marker ${this.file}: ${messageOf(error)}`,
        'the pod needs a writable directory there (the emptyDir the DaemonSet mounts)',
      );
    }
    this.log.debug(`readiness marker ${state === 'installed' ? 'set' : 'cleared'}`, { file: this.file });
  }

  private write(file: string): void {
    const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}`);
    fs.writeFileSync(temp, `installed ${new Date().toISOString()}\n`);
    fs.renameSync(temp, file);
  }
}
