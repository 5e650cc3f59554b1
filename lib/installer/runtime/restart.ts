/** Restarting the container runtime's systemd unit on the host (through PID 1's mount namespace). */
import { InstallerError, oneLine } from '../errors';
import { CommandRunner, IN_HOST } from '../host/commands';
import { commandProblem } from '../host/errors';

/** Upper bound for one `systemctl` call; a hanging restart is an error, not a hang of the installer. */
export const SYSTEMCTL_TIMEOUT_MS = 120_000;

/**
 * The unit to restart: the only one listed, or the first of several (k3s vs k3s-agent) that exists on the
 * node, asked with `systemctl cat`.
 */
export async function detectUnit(runner: CommandRunner, units: readonly string[]): Promise<string> {
  if (units.length === 1) return units[0];
  for (const unit of units) {
    const argv = [...IN_HOST, 'systemctl', 'cat', unit];
    const result = await runner.run(argv, SYSTEMCTL_TIMEOUT_MS);
    if (result.code === 0) return unit;
    // systemctl itself (or the way into the host) missing is not "no such unit".
    const problem = commandProblem(argv, result, SYSTEMCTL_TIMEOUT_MS);
    if (problem) throw problem;
  }
  throw new InstallerError(
    `none of the systemd units ${units.join(', ')} exists on the node`,
    'check that the --target matches this node (run `systemctl list-unit-files` on it)',
  );
}

export async function restartUnit(runner: CommandRunner, unit: string): Promise<void> {
  const argv = [...IN_HOST, 'systemctl', 'restart', unit];
  const result = await runner.run(argv, SYSTEMCTL_TIMEOUT_MS);
  if (result.code !== 0) {
    const problem = commandProblem(argv, result, SYSTEMCTL_TIMEOUT_MS);
    if (problem) throw problem;
    const detail = oneLine(result.stderr).slice(0, 300);
    throw new InstallerError(
      `systemctl restart ${unit} failed (exit ${result.code})${detail ? `: ${detail}` : ''}`,
      `look at \`journalctl -u ${unit}\` on the node`,
    );
  }
}
