/**
 * One simulated node of the rollout test and benchmark, as a process of its own (bundled by esbuild, so 50 of
 * them start in milliseconds): the real installer `run()` on the node's own root, against the real API server
 * named by `--kubeconfig`. Replaced is only what cannot exist here, behind the installer's own interfaces:
 * - the restart: `systemctl restart` through the command runner takes ROLLOUT_RESTART_MS and records, with
 *   the wall clock, when it started and ended (ROLLOUT_LOG, one JSON line each: the test measures concurrency
 *   from these intervals); every other host command answers 0;
 * - the runtime: its socket answers at once, and CRI Status serves what the node root's config defines.
 * Every HTTP request to the API server is counted. The last stdout line is `{"code","requests"}`.
 */
import { appendFileSync, readFileSync } from 'fs';
import { join } from 'path';
import { CommandResult, CommandRunner } from '../../../lib/installer/host/commands';
import { HttpCluster } from '../../../lib/installer/kube/cluster';
import { kubeconfigEndpoint } from '../../../lib/installer/kube/endpoint';
import { KubeHttp, KubeRequest } from '../../../lib/installer/kube/http';
import { run } from '../../../lib/installer/run';

const restartMs = Number(process.env.ROLLOUT_RESTART_MS ?? '1000');
const logFile = process.env.ROLLOUT_LOG ?? '';
const argv = process.argv.slice(2);
const flag = (name: string): string => argv[argv.indexOf(name) + 1];
const node = flag('--node-name');
const root = flag('--node-root');

class TimedRestart implements CommandRunner {
  async run(args: readonly string[]): Promise<CommandResult> {
    if (args.includes('systemctl') && args.includes('restart')) {
      appendFileSync(logFile, `${JSON.stringify({ node, event: 'start', at: Date.now() })}\n`);
      await new Promise((resolve) => setTimeout(resolve, restartMs));
      appendFileSync(logFile, `${JSON.stringify({ node, event: 'end', at: Date.now() })}\n`);
    }
    return { code: 0, stdout: '', stderr: '' };
  }
}

class CountingHttp extends KubeHttp {
  requests = 0;
  request<T>(req: KubeRequest): Promise<T> {
    this.requests++;
    return super.request<T>(req);
  }
}

async function main(): Promise<void> {
  const kubeconfig = flag('--kubeconfig');
  const http = new CountingHttp(kubeconfigEndpoint(readFileSync(kubeconfig, 'utf8'), kubeconfig));
  const served = (): string[] => {
    const config = readFileSync(join(root, 'etc', 'containerd', 'config.toml'), 'utf8');
    return config.includes('crun-wasm') ? ['runc', 'crun-wasm'] : ['runc'];
  };
  const code = await run(argv, {}, { stdout: (l) => process.stdout.write(`${l}\n`), stderr: (l) => process.stdout.write(`${l}\n`) }, {
    runner: new TimedRestart(),
    probeSocket: async () => true,
    waitForSocket: async () => true,
    readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: served() }),
    cluster: new HttpCluster(http),
  });
  process.stdout.write(`${JSON.stringify({ code, requests: http.requests })}\n`);
  process.exitCode = code;
}

void main();
