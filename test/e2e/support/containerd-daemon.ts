/**
 * A real containerd (Debian's 1.6, /usr/bin/containerd) of the test's own: its own root, state, gRPC and ttrpc
 * sockets, CNI and opt directories, so that nothing of the host's containerd setup is read or written. The CRI
 * plugin is on; pods use the host network namespace, so no CNI plugin is needed.
 *
 * Two things this containerd 1.6 puts outside its own directories, by design of containerd and not
 * configurable: the shims' sockets (/run/containerd/s/<hash>, removed by each shim when it exits) and the
 * runc-shim root that crun keeps container state in (/run/containerd/runc/k8s.io/<id>, removed when the
 * container is deleted). {@link ContainerdDaemon.cleanup} removes those directories again when they are
 * empty and did not exist before the test.
 */
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonProcess, processesMatching, removeNewEmptyDirs, socketAnswers, tearDownDaemon } from './daemon-process';
import { CONTAINERD, CTR, setKey } from '../../../demo/cluster/containerd-config';
import { exec, must, requireExecutable } from '../../../demo/cluster/process';

export const CONTAINERD_SHIM = '/usr/bin/containerd-shim-runc-v2';
const DEBIAN = "Debian's containerd package; `npm run tools` installs it";

/** Fails (with what provides them) unless Debian's containerd, its runc shim and ctr are installed. */
export function requireContainerdBinaries(): void {
  requireExecutable(CONTAINERD, DEBIAN);
  requireExecutable(CONTAINERD_SHIM, DEBIAN);
  requireExecutable(CTR, DEBIAN);
}

export interface DaemonPaths {
  /** Everything below lives here; removed by cleanup(). */
  readonly base: string;
  readonly root: string;
  readonly state: string;
  readonly socket: string;
  readonly log: string;
}

export function daemonPaths(base: string): DaemonPaths {
  return { base, root: join(base, 'root'), state: join(base, 'state'), socket: join(base, 'state', 'containerd.sock'), log: join(base, 'containerd.log') };
}

export interface ConfigOptions {
  readonly sandboxImage: string;
  readonly snapshotter: 'overlayfs' | 'native';
}

/**
 * `containerd config default`, with every host path pointed into `paths.base` and the sandbox image and
 * snapshotter set. Each rewritten key must be found exactly once where containerd 1.6 puts it, so a changed
 * default config fails loudly instead of silently using host paths.
 */
export function testConfig(paths: DaemonPaths, options: ConfigOptions): string {
  let text = must(CONTAINERD, ['config', 'default']).stdout;
  const q = JSON.stringify;
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const edits: Array<[section: string, key: string, value: string]> = [
    ['', 'root', q(paths.root)],
    ['', 'state', q(paths.state)],
    ['grpc', 'address', q(paths.socket)],
    ['ttrpc', 'address', q(`${paths.socket}.ttrpc`)],
    [cri, 'sandbox_image', q(options.sandboxImage)],
    // No AppArmor on this kernel; do not let CRI try to load a profile.
    [cri, 'disable_apparmor', 'true'],
    // CRI gives sandboxes oom_score_adj -998; lowering it needs CAP_SYS_RESOURCE, which this machine's root lacks
    // (crun: "write to /proc/self/oom_score_adj: Permission denied"). Clamp to containerd's own value instead.
    [cri, 'restrict_oom_score_adj', 'true'],
    [`${cri}.cni`, 'bin_dir', q(join(paths.base, 'cni', 'bin'))],
    // CRI creates conf_dir at start-up: keep it off the host's /etc/cni.
    [`${cri}.cni`, 'conf_dir', q(join(paths.base, 'cni', 'net.d'))],
    [`${cri}.containerd`, 'snapshotter', q(options.snapshotter)],
    ['plugins."io.containerd.internal.v1.opt"', 'path', q(join(paths.base, 'opt'))],
  ];
  for (const [section, key, value] of edits) text = setKey(text, section, key, value);
  return text;
}

/** Whether overlayfs can be mounted in `dir` (it cannot on some nested or odd file systems): a real mount. */
export function overlayWorks(dir: string): boolean {
  const base = join(dir, 'overlay-probe');
  for (const d of ['lower', 'upper', 'work', 'merged']) mkdirSync(join(base, d), { recursive: true });
  const merged = join(base, 'merged');
  const r = exec('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${join(base, 'lower')},upperdir=${join(base, 'upper')},workdir=${join(base, 'work')}`, merged]);
  if (r.code === 0) exec('umount', [merged]);
  rmSync(base, { recursive: true, force: true });
  return r.code === 0;
}

const RUN_CONTAINERD = '/run/containerd';
const HOST_SIDE_DIRS = [`${RUN_CONTAINERD}/runc/k8s.io`, `${RUN_CONTAINERD}/runc`, `${RUN_CONTAINERD}/s`, RUN_CONTAINERD];

export class ContainerdDaemon {
  private readonly process: DaemonProcess;
  private readonly preexisting: ReadonlySet<string>;

  constructor(
    readonly paths: DaemonPaths,
    readonly configFile: string,
  ) {
    this.preexisting = new Set(HOST_SIDE_DIRS.filter((d) => existsSync(d)));
    this.process = new DaemonProcess('containerd', [CONTAINERD, '--config', configFile, '--log-level', 'info'], paths.log, paths.base);
  }

  get running(): boolean {
    return this.process.running;
  }

  get starts(): readonly number[] {
    return this.process.starts;
  }

  /** Starts containerd and resolves once its gRPC socket answers `ctr version`; throws with its log otherwise. */
  async start(timeoutMs = 30_000): Promise<void> {
    mkdirSync(this.paths.base, { recursive: true });
    const answers = async (): Promise<boolean> =>
      (await socketAnswers(this.paths.socket)) && exec(CTR, ['--address', this.paths.socket, 'version'], { timeoutMs: 5000 }).code === 0;
    await this.process.start(answers, timeoutMs);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. Shims keep running (by design). */
  stop(graceMs = 10_000): Promise<void> {
    return this.process.stop(graceMs);
  }

  /** The last lines of the daemon's log, for failure messages. */
  logTail(lines = 60): string {
    return this.process.logTail(lines);
  }

  /** Log lines mentioning `needle`, for failure messages. */
  logGrep(needle: RegExp, max = 40): string {
    try {
      return readFileSync(this.paths.log, 'utf8').split('\n').filter((l) => needle.test(l)).slice(-max).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** `ctr` against this daemon. */
  ctr(args: readonly string[]): ReturnType<typeof exec> {
    return exec(CTR, ['--address', this.paths.socket, ...args], { timeoutMs: 120_000 });
  }

  /**
   * Everything this daemon left: stops it, kills the shims serving it (their -address is our socket), unmounts
   * whatever is mounted under its root and state (deepest / latest first), removes `paths.base`, and removes
   * the /run/containerd directories the shims created when they are empty and were not there before.
   * Never throws; returns what it did not manage.
   */
  async cleanup(): Promise<string[]> {
    const problems = await tearDownDaemon({ name: 'containerd', stop: () => this.stop(), helper: 'shim', helperPids: () => this.shimPids(), mountRoots: [this.paths.root, this.paths.state, this.paths.base], base: this.paths.base });
    // A directory still holding someone else's entry is theirs to keep.
    removeNewEmptyDirs(HOST_SIDE_DIRS, this.preexisting);
    return problems;
  }

  /** Pids of containerd-shim-runc-v2 processes whose -address is this daemon's socket. */
  shimPids(): number[] {
    return processesMatching((args, pid) => {
      if (!readlinkSync(`/proc/${pid}/exe`).startsWith(CONTAINERD_SHIM)) return false;
      const i = args.indexOf('-address');
      return i >= 0 && args[i + 1] === this.paths.socket;
    });
  }
}
