/**
 * Child process of the installer benchmark: the real installer `run()` with only what cannot exist here
 * replaced (systemd answers every command, the CRI socket answers at once); the Kubernetes API steps are real,
 * against the kube-apiserver named by `--kubeconfig`. Prints one JSON line: exit code, in-process wall time,
 * peak RSS and the installer's own report (bytes written, restarts).
 */
import { run } from '../../lib/installer/run';
import { RecordingRunner } from '../../lib/installer/host/commands';

async function main(): Promise<void> {
  const lines: string[] = [];
  const runner = new RecordingRunner();
  const start = process.hrtime.bigint();
  const code = await run(process.argv.slice(2), {}, { stdout: (l) => lines.push(l), stderr: (l) => lines.push(l) }, {
    runner,
    waitForSocket: async () => true,
  });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const report = lines.map((l) => JSON.parse(l)).find((o) => o.msg === 'install complete');
  process.stdout.write(
    `${JSON.stringify({ code, wallMs, maxRssKiB: process.resourceUsage().maxRSS, commands: runner.calls.length, report, lines: code === 0 ? undefined : lines })}\n`,
  );
}

void main();
