/**
 * A real CRI-O (built by `npm run tools`, .tools/crio/<version>/) of the test's own. Everything it keeps lives
 * under one base directory: storage root and runroot, the CRI socket, logs, exit files, attach sockets, pinned
 * namespaces, CNI and hook directories, version and shutdown files. CRI-O runs in a network namespace of its own
 * with only loopback; pods use that "host" network namespace (no CNI plugin) and their own PID namespace, so CRI-O drops the infra container (an infra container asks for
 * oom_score_adj -998, which this machine's root may not set).
 *
 * The node's crio.conf is {@link nodeCrioConf}: the test writes it into the node root, the installer reads it
 * there and adds its drop-in next to it, and the daemon runs with exactly those two: `crio --config
 * <node>/etc/crio/crio.conf --config-dir <node>/etc/crio/crio.conf.d`.
 *
 * Outside the base directory: the default runtime (Debian's runc) keeps container state in its runtime_root
 * (set inside the base), the installer's handler in the runtime_root its drop-in names (/run/crun-wasm by
 * default); {@link CrioDaemon.cleanup} removes that directory again when it is empty and was not there before.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DaemonProcess, processesMatching, removeNewEmptyDirs, socketAnswers, tearDownDaemon } from './daemon-process';
import { must, REPO, requireExecutable } from '../../../demo/cluster/process';

export const CONMON = '/usr/bin/conmon';
export const RUNC = '/usr/sbin/runc';
export const SKOPEO = '/usr/bin/skopeo';
const UNSHARE = '/usr/bin/unshare';

export interface CrioBinaries {
  readonly version: string;
  readonly crio: string;
  readonly pinns: string;
}

/** The CRI-O versions `npm run tools` builds (tools/versions.env), newest first. */
export function crioVersions(): string[] {
  const env = readFileSync(join(REPO, 'tools', 'versions.env'), 'utf8');
  const value = (key: string): string => {
    const m = new RegExp(`^${key}=(\\S+)$`, 'm').exec(env);
    if (!m) throw new Error(`tools/versions.env has no ${key}`);
    return m[1];
  };
  return [value('CRIO_VERSION'), value('CRIO_PREVIOUS_VERSION')];
}

/** Fails (with what provides them) unless crio and pinns of `version`, conmon, runc and skopeo are there. */
export function requireCrioBinaries(version: string): CrioBinaries {
  const dir = join(REPO, '.tools', 'crio', version);
  const tools = 'run `npm run tools` (tools/crio.sh builds it)';
  requireExecutable(CONMON, "Debian's conmon package; `npm run tools` installs it");
  requireExecutable(RUNC, "Debian's runc package; `npm run tools` installs it");
  requireExecutable(SKOPEO, "Debian's skopeo package; `npm run tools` installs it");
  return { version, crio: requireExecutable(join(dir, 'crio'), tools), pinns: requireExecutable(join(dir, 'pinns'), tools) };
}

export interface CrioPaths {
  /** Everything below lives here; removed by cleanup(). */
  readonly base: string;
  readonly root: string;
  readonly runroot: string;
  readonly socket: string;
  readonly log: string;
}

export function crioPaths(base: string): CrioPaths {
  return { base, root: join(base, 'root'), runroot: join(base, 'runroot'), socket: join(base, 'crio.sock'), log: join(base, 'crio.log') };
}

/** The storage reference skopeo writes to and this daemon reads from, for image `name`. */
export function storageReference(paths: CrioPaths, name: string): string {
  return `containers-storage:[vfs@${paths.root}+${paths.runroot}]${name}`;
}

/**
 * The node's /etc/crio/crio.conf: every host path pointed into `paths.base`, cgroupfs, vfs storage, runc as
 * the default runtime, the test's own pause image. The knobs this machine needs (from the harness notes): pids_limit (crun 1.8.1 refuses
 * -1 on cgroup v1), no hostport mapping (it would write iptables), no NRI, an empty irqbalance restore file
 * (else CRI-O writes /etc/sysconfig).
 */
export function nodeCrioConf(paths: CrioPaths, pinns: string, pauseImage: string): string {
  const b = paths.base;
  const q = JSON.stringify;
  return [
    '# The test node\'s crio.conf (test/e2e/support/crio-daemon.ts): every path inside the test\'s directory.',
    '[crio]',
    `root = ${q(paths.root)}`,
    `runroot = ${q(paths.runroot)}`,
    `log_dir = ${q(join(b, 'pods'))}`,
    `version_file = ${q(join(b, 'run', 'version'))}`,
    `version_file_persist = ${q(join(b, 'lib', 'version'))}`,
    `clean_shutdown_file = ${q(join(b, 'lib', 'clean.shutdown'))}`,
    'storage_driver = "vfs"',
    '',
    '[crio.api]',
    `listen = ${q(paths.socket)}`,
    'stream_address = "127.0.0.1"',
    'stream_port = "0"',
    '',
    '[crio.runtime]',
    'default_runtime = "runc"',
    'cgroup_manager = "cgroupfs"',
    'conmon_cgroup = "pod"',
    'pids_limit = 4096',
    `container_exits_dir = ${q(join(b, 'run', 'exits'))}`,
    `container_attach_socket_dir = ${q(join(b, 'run'))}`,
    `namespaces_dir = ${q(join(b, 'ns'))}`,
    `pinns_path = ${q(pinns)}`,
    `hooks_dir = [${q(join(b, 'hooks'))}]`,
    `cdi_spec_dirs = [${q(join(b, 'cdi'))}]`,
    `irqbalance_config_file = ${q(join(b, 'irqbalance'))}`,
    'irqbalance_config_restore_file = ""',
    'drop_infra_ctr = true',
    'disable_hostport_mapping = true',
    'enable_criu_support = false',
    '',
    '[crio.runtime.runtimes.runc]',
    `runtime_path = ${q(RUNC)}`,
    'runtime_type = "oci"',
    `runtime_root = ${q(join(b, 'runc'))}`,
    `monitor_path = ${q(CONMON)}`,
    'monitor_cgroup = "pod"',
    '',
    '[crio.image]',
    // Loaded into storage by the test: CRI-O looks the pause image up even when it drops the infra container.
    `pause_image = ${q(pauseImage)}`,
    `signature_policy = ${q(join(b, 'policy.json'))}`,
    '',
    '[crio.network]',
    `network_dir = ${q(join(b, 'cni', 'net.d'))}`,
    `plugin_dirs = [${q(join(b, 'cni', 'bin'))}]`,
    '',
    '[crio.nri]',
    'enable_nri = false',
    '',
  ].join('\n');
}

export class CrioDaemon {
  private readonly process: DaemonProcess;
  private readonly preexisting: ReadonlySet<string>;

  constructor(
    readonly binaries: CrioBinaries,
    readonly paths: CrioPaths,
    /** The node's crio.conf and drop-in directory, as the installer sees them. */
    readonly configFile: string,
    readonly configDir: string,
    /** Host directories the daemon's runtimes may create outside `paths.base` (removed again when empty). */
    readonly hostSideDirs: readonly string[],
  ) {
    this.preexisting = new Set(hostSideDirs.filter((d) => existsSync(d)));
    for (const dir of ['cni/net.d', 'cni/bin', 'hooks', 'cdi', 'run', 'lib', 'pods']) mkdirSync(join(paths.base, dir), { recursive: true });
    writeFileSync(join(paths.base, 'policy.json'), JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    // In a network namespace of its own with only loopback: host-network pods share it, and whatever CRI-O
    // might try to reach (a registry, a DNS server) is unreachable by construction.
    const crio = [binaries.crio, '--config', configFile, '--config-dir', configDir, '--log-level', 'info'];
    const argv = [UNSHARE, '--net', '--', 'sh', '-c', 'ip link set lo up && exec "$@"', 'crio-in-netns', ...crio];
    this.process = new DaemonProcess(`crio ${binaries.version}`, argv, paths.log, paths.base);
  }

  get running(): boolean {
    return this.process.running;
  }

  get starts(): readonly number[] {
    return this.process.starts;
  }

  /** Copies an OCI archive into this daemon's containers-storage under `name` (docker-style, as CRI-O wants). */
  loadImage(archive: string, name: string): void {
    must(SKOPEO, ['--insecure-policy', 'copy', '--quiet', `oci-archive:${archive}`, storageReference(this.paths, name)], { timeoutMs: 120_000 });
  }

  /** Starts crio and resolves once its CRI socket accepts connections; throws with its log otherwise. */
  start(timeoutMs = 30_000): Promise<void> {
    return this.process.start(() => socketAnswers(this.paths.socket), timeoutMs);
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs = 15_000): Promise<void> {
    return this.process.stop(graceMs);
  }

  /** A restart as systemd does it: stop, then start (CRI-O's SIGHUP reload does not rebuild its runtime map). */
  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  logTail(lines = 60): string {
    return this.process.logTail(lines);
  }

  /** Log lines matching `needle` since the last start, for assertions and failure messages. */
  logSinceStart(needle: RegExp): string[] {
    try {
      const lines = readFileSync(this.paths.log, 'utf8').split('\n');
      const lastStart = lines.map((l) => /Starting CRI-O, version/.test(l)).lastIndexOf(true);
      return lines.slice(Math.max(0, lastStart)).filter((l) => needle.test(l));
    } catch {
      return [];
    }
  }

  /**
   * Everything this daemon left: stops it, kills conmon processes still serving its containers, unmounts
   * whatever is mounted under its base (deepest / latest first), removes the base, and removes the host-side
   * runtime directories when empty and new. Never throws; returns what it did not manage.
   */
  async cleanup(): Promise<string[]> {
    const problems = await tearDownDaemon({ name: 'crio', stop: () => this.stop(), helper: 'conmon', helperPids: () => this.conmonPids(), mountRoots: [this.paths.base], base: this.paths.base });
    problems.push(...removeNewEmptyDirs(this.hostSideDirs, this.preexisting).map((d) => `left non-empty after the test: ${d}`));
    return problems;
  }

  /** Pids of conmon processes whose exit directory is this daemon's (conmon --exit-dir <base>/run/exits). */
  conmonPids(): number[] {
    const exits = join(this.paths.base, 'run', 'exits');
    return processesMatching((args) => {
      if (args[0] !== CONMON && !args[0].endsWith('/conmon')) return false;
      const i = args.indexOf('--exit-dir');
      return i >= 0 && args[i + 1] === exits;
    });
  }
}
