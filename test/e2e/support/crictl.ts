/**
 * crictl (provided by `npm run tools` in .tools/bin) pointed at one containerd's CRI socket, plus the pod and
 * container configs the test feeds it. Every call keeps its output for failure messages.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe as describeRun, exec, repoTool, Result, sleep } from '../../../demo/cluster/process';

export class Crictl {
  readonly binary: string;
  private readonly configFile: string;

  constructor(
    readonly socket: string,
    readonly workDir: string,
  ) {
    this.binary = repoTool('crictl');
    // crictl's own config file, so that it neither reads the host's /etc/crictl.yaml nor warns about it.
    this.configFile = join(workDir, 'crictl.yaml');
    writeFileSync(this.configFile, `runtime-endpoint: unix://${socket}\nimage-endpoint: unix://${socket}\ntimeout: 60\npull-image-on-create: false\n`);
  }

  run(args: readonly string[], timeoutMs = 120_000): Result {
    return exec(this.binary, ['--config', this.configFile, '--runtime-endpoint', `unix://${this.socket}`, '--image-endpoint', `unix://${this.socket}`, ...args], { timeoutMs });
  }

  must(args: readonly string[], timeoutMs?: number): string {
    const r = this.run(args, timeoutMs);
    if (r.code !== 0) throw new Error(`crictl failed: ${describeRun(r)}`);
    return r.stdout.trim();
  }

  /** `crictl info` as JSON. */
  info(): { config?: { containerd?: { runtimes?: Record<string, unknown> } } } & Record<string, unknown> {
    return JSON.parse(this.must(['info', '-o', 'json']));
  }

  /** Names of the runtime handlers in the CRI plugin's config. */
  runtimeHandlers(): string[] {
    return Object.keys(this.info().config?.containerd?.runtimes ?? {}).sort();
  }

  /** Names in the CRI Status answer's runtime_handlers (what the runtime really loaded; '' is the default). */
  statusHandlers(): string[] {
    const handlers = (this.info().runtimeHandlers ?? []) as Array<{ name?: string }>;
    return handlers.map((h) => h.name ?? '').sort();
  }

  /** Writes `obj` as JSON to `<workDir>/<name>` and returns the path. */
  writeJson(name: string, obj: unknown): string {
    const file = join(this.workDir, name);
    writeFileSync(file, JSON.stringify(obj, null, 2));
    return file;
  }

  /** Waits until the container has exited; resolves to its exit code, rejects with its status on timeout. */
  async waitExited(id: string, timeoutMs = 60_000): Promise<number> {
    const started = Date.now();
    let last = '';
    while (Date.now() - started < timeoutMs) {
      const r = this.run(['inspect', '-o', 'json', id]);
      if (r.code === 0) {
        const status = JSON.parse(r.stdout).status as { state: string; exitCode?: number; reason?: string; message?: string };
        last = JSON.stringify(status, null, 1);
        if (status.state === 'CONTAINER_EXITED') return status.exitCode ?? 0;
      } else last = describeRun(r);
      await sleep(200);
    }
    throw new Error(`container ${id} did not exit within ${timeoutMs} ms; last status: ${last}`);
  }

  /** Stops and removes every pod sandbox (and so its containers); best effort, for teardown. */
  removeAllPods(): string[] {
    const problems: string[] = [];
    const ids = this.run(['pods', '-q']);
    if (ids.code !== 0) return [`listing pods: ${describeRun(ids)}`];
    for (const id of ids.stdout.split('\n').filter(Boolean)) {
      const stop = this.run(['stopp', id]);
      if (stop.code !== 0) problems.push(`stopping pod ${id}: ${describeRun(stop)}`);
      const rm = this.run(['rmp', id]);
      if (rm.code !== 0) problems.push(`removing pod ${id}: ${describeRun(rm)}`);
    }
    return problems;
  }
}

export interface PodOptions {
  readonly name: string;
  readonly uid: string;
  readonly logDirectory: string;
  readonly annotations?: Record<string, string>;
  /** cgroupfs parent of the pod's cgroups (containerd: <parent>/<container id>); one of the test's own. */
  readonly cgroupParent: string;
  /** CRI NamespaceMode of the pod's PID namespace. @default 0 (POD) */
  readonly pidNamespace?: 0 | 1 | 2;
}

/** A CRI PodSandboxConfig in the host network namespace (NamespaceMode NODE = 2), so no CNI is involved. */
export function podConfig(o: PodOptions): Record<string, unknown> {
  return {
    metadata: { name: o.name, namespace: 'knawd-e2e', uid: o.uid, attempt: 0 },
    log_directory: o.logDirectory,
    annotations: o.annotations ?? {},
    linux: { cgroup_parent: o.cgroupParent, security_context: { namespace_options: { network: 2, ...(o.pidNamespace === undefined ? {} : { pid: o.pidNamespace }) } } },
  };
}

/** A CRI ContainerConfig that runs the image's entrypoint (or `command`), logging to `<pod log dir>/<logPath>`. */
export function containerConfig(name: string, image: string, logPath: string, command?: readonly string[]): Record<string, unknown> {
  return { metadata: { name, attempt: 0 }, image: { image }, log_path: logPath, ...(command ? { command } : {}), linux: {} };
}
