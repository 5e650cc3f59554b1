/**
 * Child process of the installer benchmark: the real installer `run()` with only what cannot exist here
 * replaced (systemd answers every command, the CRI socket answers at once and serves the handlers the node
 * root's config names); the Kubernetes API steps are real,
 * against the kube-apiserver named by `--kubeconfig`. Prints one JSON line: exit code, in-process wall time,
 * peak RSS and the installer's own report (bytes written, restarts).
 */
import { run } from '../../lib/installer/run';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { handlersOnNodeRoot } from '../support/fake-runtime';

async function main(): Promise<void> {
  const lines: string[] = [];
  const runner = new RecordingRunner();
  const argv = process.argv.slice(2);
  const nodeRoot = argv[argv.indexOf('--node-root') + 1];
  const start = process.hrtime.bigint();
  const code = await run(argv, {}, { stdout: (l) => lines.push(l), stderr: (l) => lines.push(l) }, {
    runner,
    probeSocket: async () => true,
    waitForSocket: async () => true,
    readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(nodeRoot) }),
  });
  const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
  const report = lines.map((l) => JSON.parse(l)).find((o) => o.msg === 'install complete');
  process.stdout.write(
    `${JSON.stringify({ code, wallMs, maxRssKiB: process.resourceUsage().maxRSS, commands: runner.calls.length, report, lines: code === 0 ? undefined : lines })}\n`,
  );
}

void main();
