/**
 * One real Kubernetes node on this machine: containerd (the 1.7 or the 2.x build), the kubelet and
 * kube-proxy, supervised by PID 1 of a node of their own. Layout of the harness directory BASE:
 *
 *   seed/{etc,opt,var,usr}    the node's own files (containerd config, CNI config, systemctl shim, mountpoints):
 *                             the top lower layer of each overlay, over the machine's directory
 *   upper/{etc,opt,var,usr}   everything written on the node there; {@link TestNode.upper} reads it
 *   state/{containerd,kubelet,cni,log,run}   /var/lib/containerd … /run of the node (real directories)
 *   sysctl/                   values the kubelet expects, bound over /proc/sys in the node only
 *   logs/                     one log per unit, and node.log (PID 1's own output)
 *
 * Namespaces: network = the harness's (netns.ts); mount, UTS and PID new (`unshare --fork --mount-proc`), PID 1 =
 * node-init.sh, which lays the overlays and binds and execs the supervisor. A hostPID pod sees the supervisor as
 * PID 1, so the installer's `nsenter -t 1 -m -- systemctl restart containerd` lands in the node's mount namespace
 * and runs the shim, which asks PID 1 to restart containerd and waits until its socket answers again.
 *
 * A unit that dies is not restarted: {@link TestNode.checkHealthy} (called by every wait of the harness) throws
 * with its log tail. {@link TestNode.stop} leaves nothing: PID 1 stops the units and kills what is left in its
 * PID namespace, the namespaces go with their last process, the kubelet's cgroups are removed, and
 * {@link TestNode.leftovers} finds no mount or cgroup left.
 */
import { ChildProcess, spawn } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { removeCgroupTree } from './cgroups';
import { KubernetesRelease, kubernetesBin } from './control-plane';
import { setKey } from './containerd-config';
import { exec, mounts, must, REPO, sleep } from './process';
import { NetworkNamespace, NODE_ADDRESS, POD_CIDR } from './netns';
import { Supervisor, SUPERVISOR_VERSION, SupervisorConfig, UnitConfig, UnitStatus } from './supervisor';

export type ContainerdMajor = 1 | 2;

const TOOLS = path.join(REPO, '.tools');
const NODE_INIT = path.join(__dirname, 'node-init.sh');
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** Where each containerd comes from (the 1.7 and 2.x builds of `npm run tools`); each finds its own shim first on PATH. */
const CONTAINERD_DIRS: Record<ContainerdMajor, string> = { 1: path.join(TOOLS, 'containerd1', 'bin'), 2: path.join(TOOLS, 'containerd2', 'bin') };
const CONTAINERDS: Record<ContainerdMajor, { containerd: string; ctr: string; path: string }> = {
  1: { containerd: path.join(CONTAINERD_DIRS[1], 'containerd'), ctr: path.join(CONTAINERD_DIRS[1], 'ctr'), path: `${CONTAINERD_DIRS[1]}:${SYSTEM_PATH}` },
  2: { containerd: path.join(CONTAINERD_DIRS[2], 'containerd'), ctr: path.join(CONTAINERD_DIRS[2], 'ctr'), path: `${CONTAINERD_DIRS[2]}:${SYSTEM_PATH}` },
};

/** What the kubelet's protectKernelDefaults insists on (pkg/kubelet/cm/container_manager_linux.go). */
const KUBELET_SYSCTLS: Record<string, string> = {
  'vm.overcommit_memory': '1',
  'vm.panic_on_oom': '0',
  'kernel.panic': '10',
  'kernel.panic_on_oops': '1',
  'kernel.keys.root_maxkeys': '1000000',
  'kernel.keys.root_maxbytes': '25000000',
};

/** The overlaid directories, as relative paths. */
export const OVERLAID = ['etc', 'opt', 'var', 'usr'] as const;
const FIRST_BOOT_DIRS = ['opt/containerd/bin', 'opt/containerd/lib', 'usr/libexec/kubernetes/kubelet-plugins/volume/exec'];
const STATE_DIRS = { containerd: 'var/lib/containerd', kubelet: 'var/lib/kubelet', cni: 'var/lib/cni', log: 'var/log', run: 'run' } as const;

export interface NodeOptions {
  /** The harness directory of this node (created by the caller, empty). */
  readonly base: string;
  readonly name: string;
  readonly containerd: ContainerdMajor;
  readonly netns: NetworkNamespace;
  /** The cluster CA (kubelet client CA: the API server's kubelet client certificate is signed by it). */
  readonly caFile: string;
  readonly kubeletKubeconfig: string;
  readonly kubeProxyKubeconfig: string;
  /** containerd's sandbox ("pause") image. */
  readonly sandboxImage: string;
  /** The kubelet's cgroupRoot (`/name`): created in every hierarchy before the start, removed after the stop. */
  readonly cgroupRoot: string;
  /** Machine directories to mask inside the node (e.g. build caches a binary's RUNPATH names). */
  readonly hiddenDirs?: readonly string[];
  /** More of the node's own files (node path → content), e.g. a registry's hosts.toml under registryHostsDir. */
  readonly seedFiles?: Readonly<Record<string, string>>;
  /** containerd's registry hosts directory (CRI `config_path`, containerd 2.x), as a node path; none by default. */
  readonly registryHostsDir?: string;
  /** Whose kubelet and kube-proxy. @default 'newest' */
  readonly kubernetes?: KubernetesRelease;
}

/** An entry of an overlay's upper dir. */
export type UpperEntry = { kind: 'file'; content: Buffer } | { kind: 'dir' } | { kind: 'symlink'; target: string } | { kind: 'whiteout' };

/** containerd's own default config, with the node's sandbox image, CNI plugins and this machine's limits. */
export function containerdConfig(major: ContainerdMajor, sandboxImage: string, registryHostsDir?: string): string {
  let text = must(CONTAINERDS[major].containerd, ['config', 'default']).stdout;
  const q = JSON.stringify;
  const edits: Array<[string, string, string]> =
    major === 1
      ? [
          ['plugins."io.containerd.grpc.v1.cri"', 'sandbox_image', q(sandboxImage)],
          ['plugins."io.containerd.grpc.v1.cri"', 'disable_apparmor', 'true'],
          ['plugins."io.containerd.grpc.v1.cri"', 'restrict_oom_score_adj', 'true'],
          ['plugins."io.containerd.grpc.v1.cri".cni', 'bin_dir', q('/usr/lib/cni')],
        ]
      : [
          ["plugins.'io.containerd.cri.v1.images'.pinned_images", 'sandbox', q(sandboxImage)],
          ["plugins.'io.containerd.cri.v1.runtime'", 'disable_apparmor', 'true'],
          ["plugins.'io.containerd.cri.v1.runtime'", 'restrict_oom_score_adj', 'true'],
          ["plugins.'io.containerd.cri.v1.runtime'.cni", 'bin_dirs', q(['/usr/lib/cni'])],
        ];
  if (registryHostsDir !== undefined) {
    if (major !== 2) throw new Error('a registry hosts directory is configured for containerd 2.x nodes only');
    edits.push(["plugins.'io.containerd.cri.v1.images'.registry", 'config_path', q(`/${registryHostsDir}`)]);
  }
  // No AppArmor on this kernel; sandboxes at oom_score_adj -998 need CAP_SYS_RESOURCE, which root lacks here.
  for (const [section, key, value] of edits) text = setKey(text, section, key, value);
  return text;
}

export class TestNode {
  readonly supervisor: Supervisor;
  readonly cgroupRoot: string;
  readonly containerdConfigPath = 'etc/containerd/config.toml';
  private child?: ChildProcess;
  private exited?: string;
  private stopped = false;
  /** The node's PID 1 as {@link stop} found it: pid and start time (pids are reused). */
  private nodeInit?: { pid: number; started: string };

  constructor(readonly options: NodeOptions) {
    this.supervisor = new Supervisor(this.host('run/knawd-node/supervisor.sock'), this.host('run/knawd-node/systemctl.log'));
    this.cgroupRoot = options.cgroupRoot;
  }

  /** The machine's path of a node path under one of the bound state dirs (`run/…`, `var/lib/kubelet/…`). */
  host(nodePath: string): string {
    for (const [dir, mounted] of Object.entries(STATE_DIRS)) {
      if (nodePath === mounted || nodePath.startsWith(mounted + '/')) return path.join(this.options.base, 'state', dir, nodePath.slice(mounted.length));
    }
    throw new Error(`${nodePath} is not in a state directory of the node`);
  }

  seedPath(nodePath: string): string {
    return path.join(this.options.base, 'seed', nodePath);
  }

  logFile(unit: string): string {
    return path.join(this.options.base, 'logs', `${unit}.log`);
  }

  /** Writes the node's files and configs, starts PID 1 and waits until every unit is ready. */
  async start(timeoutMs = 120_000): Promise<void> {
    const o = this.options;
    const supervisorBin = path.join(TOOLS, 'bin', 'node-supervisor');
    const version = exec(supervisorBin, ['--version']);
    if (version.stdout.trim() !== SUPERVISOR_VERSION) {
      throw new Error(`${supervisorBin} is missing or not ${SUPERVISOR_VERSION} (${version.stderr.trim() || version.stdout.trim()}); run \`npm run tools\``);
    }
    for (const d of OVERLAID) for (const layer of ['seed', 'upper', 'work']) fs.mkdirSync(path.join(o.base, layer, d), { recursive: true });
    for (const d of Object.keys(STATE_DIRS)) fs.mkdirSync(path.join(o.base, 'state', d), { recursive: true });
    for (const mounted of Object.values(STATE_DIRS)) if (mounted.startsWith('var/')) fs.mkdirSync(this.seedPath(mounted), { recursive: true });
    fs.mkdirSync(this.host('run/knawd-node'), { recursive: true });
    fs.mkdirSync(path.join(o.base, 'logs'));
    fs.mkdirSync(path.join(o.base, 'sysctl'));
    fs.mkdirSync(path.join(o.base, 'config'));

    // The node's own files, as its image would have them.
    const seed = (nodePath: string, content: string): void => {
      fs.mkdirSync(path.dirname(this.seedPath(nodePath)), { recursive: true });
      fs.writeFileSync(this.seedPath(nodePath), content);
    };
    seed(this.containerdConfigPath, containerdConfig(o.containerd, o.sandboxImage, o.registryHostsDir));
    for (const [nodePath, content] of Object.entries(o.seedFiles ?? {})) seed(nodePath, content);
    seed('etc/cni/net.d/10-knawd-pods.conflist', JSON.stringify(cniConfig(), null, 2) + '\n');
    // What the node's daemons create at their first start (containerd's opt plugin, the kubelet's volume
    // plugin dir), as on any node that has booted once: the upper dirs then hold the installer's writes only.
    for (const d of FIRST_BOOT_DIRS) fs.mkdirSync(this.seedPath(d), { recursive: true });
    fs.mkdirSync(this.seedPath('usr/bin'), { recursive: true });
    fs.symlinkSync(fs.realpathSync(supervisorBin), this.seedPath('usr/bin/systemctl'));
    // The node has its containerd where packages put it (over the machine's Debian 1.6): the installer asks
    // /usr/bin/containerd for its version and has it load the candidate config.
    for (const b of ['containerd', 'ctr', 'containerd-shim-runc-v2']) fs.symlinkSync(fs.realpathSync(path.join(CONTAINERD_DIRS[o.containerd], b)), this.seedPath(`usr/bin/${b}`));
    for (const [name, value] of Object.entries(KUBELET_SYSCTLS)) {
      const current = fs.readFileSync(`/proc/sys/${name.replace(/\./g, '/')}`, 'utf8').trim();
      if (current !== value) fs.writeFileSync(path.join(o.base, 'sysctl', name), `${value}\n`);
    }
    for (const hierarchy of cgroupHierarchies()) fs.mkdirSync(`${hierarchy}${this.cgroupRoot}`, { recursive: true });

    const kubeletConfig = path.join(o.base, 'config', 'kubelet.json');
    fs.writeFileSync(kubeletConfig, JSON.stringify(kubeletConfiguration(this.cgroupRoot, o.caFile), null, 2));
    const proxyConfig = path.join(o.base, 'config', 'kube-proxy.json');
    fs.writeFileSync(proxyConfig, JSON.stringify(kubeProxyConfiguration(o.kubeProxyKubeconfig, o.name), null, 2));
    const binary = (name: string): string => {
      const p = path.join(kubernetesBin(o.kubernetes ?? 'newest'), name);
      if (!fs.existsSync(p)) throw new Error(`${p} is missing: run \`npm run tools\``);
      return p;
    };
    const ctrd = CONTAINERDS[o.containerd];
    const unit = (name: string, argv: string[], ready: Partial<UnitConfig>, envPath = SYSTEM_PATH): UnitConfig => ({
      name,
      argv,
      env: [`PATH=${envPath}`, 'HOME=/root'],
      log: this.logFile(name),
      readyTimeoutMs: 90_000,
      stopTimeoutMs: 10_000,
      ...ready,
    });
    const config: SupervisorConfig = {
      callLog: '/run/knawd-node/systemctl.log',
      units: [
        unit('containerd', [ctrd.containerd, '--config', `/${this.containerdConfigPath}`, '--log-level', 'info'], { readyUnix: '/run/containerd/containerd.sock' }, ctrd.path),
        unit(
          'kubelet',
          [binary('kubelet'), `--config=${kubeletConfig}`, `--kubeconfig=${o.kubeletKubeconfig}`, `--hostname-override=${o.name}`, `--node-ip=${NODE_ADDRESS}`, '--v=2'],
          { readyHttp: 'http://127.0.0.1:10248/healthz' },
        ),
        unit('kube-proxy', [binary('kube-proxy'), `--config=${proxyConfig}`, '--v=1'], { readyHttp: 'http://127.0.0.1:10256/healthz' }),
      ],
    };
    fs.writeFileSync(path.join(o.base, 'supervisor.json'), JSON.stringify(config, null, 2));

    const argv = [
      ...(fs.existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : []),
      ...o.netns.enter(['/usr/bin/unshare', '--mount', '--uts', '--pid', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private', '--', '/bin/sh', NODE_INIT, o.base, o.name, supervisorBin, ...(o.hiddenDirs ?? [])]),
    ];
    const out = fs.openSync(path.join(o.base, 'logs', 'node.log'), 'a');
    const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', out, out], env: { PATH: SYSTEM_PATH } });
    fs.closeSync(out);
    this.child = child;
    child.on('exit', (code, signal) => (this.exited = signal ? `killed by ${signal}` : `exited with status ${code}`));
    child.on('error', (error) => (this.exited = `could not start: ${error.message}`));

    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.exited) throw new Error(`the node's PID 1 ${this.exited} during start-up\n${this.logTails()}`);
      if (await this.supervisor.listening()) {
        const units = await this.supervisor.status();
        const failed = units.find((u) => u.state === 'failed');
        if (failed) throw new Error(`${failed.name} failed to start on the node (${failed.exit})\n${this.logTails([failed.name])}`);
        if (units.every((u) => u.state === 'active')) return;
      }
      if (Date.now() > deadline) throw new Error(`the node's units were not all ready within ${timeoutMs / 1000} s: ${JSON.stringify(await this.safeStatus())}\n${this.logTails()}`);
      await sleep(200);
    }
  }

  private async safeStatus(): Promise<UnitStatus[] | string> {
    try {
      return await this.supervisor.status();
    } catch (error) {
      return String(error);
    }
  }

  /** Throws, with the log tail of what failed, unless PID 1 and every unit are alive. */
  async checkHealthy(): Promise<void> {
    if (this.exited || !this.child) throw new Error(`the node's PID 1 ${this.exited ?? 'was never started'}\n${this.logTails()}`);
    const units = await this.supervisor.status();
    const dead = units.filter((u) => u.state === 'failed' || u.state === 'inactive');
    if (dead.length > 0) {
      throw new Error(`on the node, ${dead.map((u) => `${u.name} ${u.state} (${u.exit ?? 'no exit status'})`).join(', ')}\n${this.logTails(dead.map((u) => u.name))}`);
    }
  }

  /** The last lines of the units' logs (all of them by default) and of PID 1's. */
  logTails(units: readonly string[] = ['containerd', 'kubelet', 'kube-proxy'], lines = 30): string {
    return [...units, 'node']
      .map((u) => `--- last ${lines} lines of the node's ${u} log:\n${tailOf(this.logFile(u), lines)}`)
      .join('\n');
  }

  /** `ctr` of this node's containerd, from the machine (its socket is in the node's /run, a harness directory). */
  ctr(args: readonly string[]): string {
    return must(CONTAINERDS[this.options.containerd].ctr, ['--address', this.host('run/containerd/containerd.sock'), ...args], { timeoutMs: 300_000 }).stdout;
  }

  /** Every entry of the upper dirs, keyed by node path (`etc/containerd/config.toml`). */
  upper(): Map<string, UpperEntry> {
    const entries = new Map<string, UpperEntry>();
    for (const d of OVERLAID) {
      const root = path.join(this.options.base, 'upper', d);
      const walk = (dir: string): void => {
        for (const name of fs.readdirSync(dir).sort()) {
          const full = path.join(dir, name);
          const key = path.join(d, path.relative(root, full));
          const st = fs.lstatSync(full);
          if (st.isSymbolicLink()) entries.set(key, { kind: 'symlink', target: fs.readlinkSync(full) });
          else if (st.isCharacterDevice() && st.rdev === 0) entries.set(key, { kind: 'whiteout' });
          else if (st.isDirectory()) {
            entries.set(key, { kind: 'dir' });
            walk(full);
          } else entries.set(key, { kind: 'file', content: fs.readFileSync(full) });
        }
      };
      walk(root);
    }
    return entries;
  }

  /** {@link upper} as one comparable line per entry (`file sha256:…`, `dir`, `symlink → target`, `whiteout`). */
  upperSummary(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [p, e] of this.upper()) {
      out[p] = e.kind === 'file' ? `file sha256:${createHash('sha256').update(e.content).digest('hex')}` : e.kind === 'symlink' ? `symlink → ${e.target}` : e.kind;
    }
    return out;
  }

  /** What the node sees at `nodePath` under an overlaid dir: the upper copy if written, else the seed's. */
  nodeFile(nodePath: string): Buffer | undefined {
    const entry = this.upper().get(nodePath);
    if (entry?.kind === 'file') return entry.content;
    if (entry) return undefined;
    const seeded = this.seedPath(nodePath);
    return fs.existsSync(seeded) ? fs.readFileSync(seeded) : undefined;
  }

  /** Host pid of the node's PID 1 (the supervisor). */
  pid1(): number | undefined {
    const pid = this.child?.pid;
    if (!pid) return undefined;
    try {
      const children = fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      return children.length > 0 ? Number(children[0]) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The node's PID namespace (as /proc/PID/ns/pid reads it), while it runs. */
  pidNamespace(): string | undefined {
    const pid1 = this.pid1();
    try {
      return pid1 ? fs.readlinkSync(`/proc/${pid1}/ns/pid`) : undefined;
    } catch {
      return undefined;
    }
  }

  /** The machine's pid of a unit's main process (the supervisor reports pids in the node's PID namespace). */
  async hostPid(unit: string): Promise<number> {
    const status = (await this.supervisor.status()).find((u) => u.name === unit);
    const pid1 = this.pid1();
    if (!status || status.pid <= 0 || !pid1) throw new Error(`${unit} is not running on the node`);
    const ns = fs.readlinkSync(`/proc/${pid1}/ns/pid`);
    for (const pid of processesInPidNamespace(ns)) {
      try {
        const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1].trim().split(/\s+/);
        if (nspid && Number(nspid[nspid.length - 1]) === status.pid) return pid;
      } catch {
        // gone meanwhile
      }
    }
    throw new Error(`no process of the node has pid ${status.pid} in its namespace (${unit})`);
  }

  /** Stops the node (PID 1 stops its units, then everything in its namespaces goes) and removes its cgroups. */
  async stop(): Promise<string[]> {
    if (this.stopped) return [];
    this.stopped = true;
    const problems: string[] = [];
    const child = this.child;
    if (child && !this.exited) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      const pid1 = this.pid1();
      if (pid1) {
        this.nodeInit = { pid: pid1, started: startTime(pid1) };
        process.kill(pid1, 'SIGTERM');
      }
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([gone.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), 45_000)))]);
      clearTimeout(timer);
      if (timedOut) {
        problems.push('the node did not stop within 45 s of SIGTERM; killed');
        const again = this.pid1();
        if (again) process.kill(again, 'SIGKILL');
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
        await gone;
      }
    }
    // The kernel ends PID 1 of a PID namespace only once every process in it (and in the namespaces below it,
    // the pods') has gone: the node is gone when its PID 1 is. (Not a scan for the namespace's inode number: the
    // next namespace created on the machine gets that number once the node's is freed.)
    const init = this.nodeInit;
    const initRuns = (): boolean => (init ? running(init.pid, init.started) : false);
    for (let i = 0; i < 50 && initRuns(); i++) await sleep(100);
    if (initRuns()) problems.push(`the node's PID 1 (pid ${init?.pid}) still runs: processes of the node are still on their way out`);
    problems.push(...removeCgroupTree(this.cgroupRoot));
    return problems;
  }

  /** What the node left on the machine after {@link stop}: mounts and cgroups. Empty when clean. */
  leftovers(): string[] {
    const found: string[] = [];
    for (const m of mounts()) if (m.mountPoint.startsWith(this.options.base + '/')) found.push(`mount left at ${m.mountPoint} (${m.fsType})`);
    for (const hierarchy of cgroupHierarchies()) {
      if (fs.existsSync(`${hierarchy}${this.cgroupRoot}`)) found.push(`cgroup left: ${hierarchy}${this.cgroupRoot}`);
    }
    return found;
  }
}

/** Pids of the processes in the PID namespace `ns` (as /proc/PID/ns/pid reads it). */
function processesInPidNamespace(ns: string): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/pid`) === ns) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** The fields of /proc/PID/stat after the command name (state first); undefined once `pid` is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** When `pid` started (clock ticks after boot, /proc/PID/stat field 22). */
function startTime(pid: number): string {
  return statFields(pid)?.[19] ?? '';
}

/** Whether the process that started at `started` as `pid` still runs (a zombie has ended). */
function running(pid: number, started: string): boolean {
  const fields = statFields(pid);
  return fields !== undefined && fields[19] === started && fields[0] !== 'Z';
}

function tailOf(file: string, lines: number): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Mount points of every cgroup hierarchy (v1 and the unified one). */
export function cgroupHierarchies(): string[] {
  return [...new Set(mounts().filter((m) => m.fsType === 'cgroup' || m.fsType === 'cgroup2').map((m) => m.mountPoint))];
}

/** Debian's bridge + host-local plugins: pods on a bridge inside the node's network namespace, nowhere else. */
function cniConfig(): Record<string, unknown> {
  return {
    cniVersion: '1.0.0',
    name: 'knawd-pods',
    plugins: [
      {
        type: 'bridge',
        bridge: 'knawd0',
        isGateway: true,
        ipMasq: false,
        hairpinMode: true,
        ipam: { type: 'host-local', ranges: [[{ subnet: POD_CIDR }]], routes: [{ dst: '0.0.0.0/0' }] },
      },
    ],
  };
}

/** The kubelet, made to fit this machine (the harness notes say why each setting). */
function kubeletConfiguration(cgroupRoot: string, caFile: string): Record<string, unknown> {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: NODE_ADDRESS,
    port: 10250,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort: 10248,
    authentication: { anonymous: { enabled: false }, webhook: { enabled: false }, x509: { clientCAFile: caFile } },
    authorization: { mode: 'AlwaysAllow' },
    containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
    cgroupDriver: 'cgroupfs',
    cgroupRoot,
    // This machine's cgroups are v1 (its controllers cannot move to v2 here); from 1.35 the kubelet refuses to
    // start on v1 unless told not to (KubeletConfiguration failCgroupV1, default true since 1.35).
    failCgroupV1: false,
    failSwapOn: false,
    enforceNodeAllocatable: [],
    makeIPTablesUtilChains: false,
    // true: with false the kubelet would set these sysctls machine-wide; node-init.sh binds the values instead.
    protectKernelDefaults: true,
    localStorageCapacityIsolation: true,
    // No DNS inside the node's network: pods get no resolver rather than the machine's.
    resolvConf: '',
    // Imported images are all there is (no registry): never collect them, never evict for a full disk.
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    evictionHard: { 'memory.available': '50Mi', 'nodefs.available': '1%', 'imagefs.available': '1%', 'nodefs.inodesFree': '1%' },
    rotateCertificates: false,
    serverTLSBootstrap: false,
    syncFrequency: '10s',
    fileCheckFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
  };
}

/**
 * kube-proxy (iptables mode, inside the node's network namespace), so that the in-cluster address
 * (KUBERNETES_SERVICE_HOST) reaches the API server. Conntrack sizes and timeouts 0: kube-proxy leaves those
 * machine-wide sysctls alone.
 */
function kubeProxyConfiguration(kubeconfig: string, nodeName: string): Record<string, unknown> {
  return {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    mode: 'iptables',
    clientConnection: { kubeconfig },
    hostnameOverride: nodeName,
    clusterCIDR: POD_CIDR,
    healthzBindAddress: '127.0.0.1:10256',
    metricsBindAddress: '127.0.0.1:10249',
    conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s', udpTimeout: '0s', udpStreamTimeout: '0s' },
    iptables: { localhostNodePorts: false, syncPeriod: '30s', minSyncPeriod: '0s' },
    nodePortAddresses: [`${NODE_ADDRESS}/32`],
  };
}
