/**
 * A real, throw-away Kubernetes control plane for the cluster tests: the etcd and kube-apiserver that
 * `npm run tools` builds (the newest Kubernetes release, or with {@link StartOptions.kubernetes} the oldest
 * supported one, each with its own etcd and kubectl), both on 127.0.0.1 only, on free ports chosen per run, with certificates, a service
 * account signing key and an admin token generated per run in a temp directory.
 *
 * - Admission: NamespaceLifecycle, ServiceAccount and PodSecurity are enabled explicitly (on top of the
 *   API server's default plugin set); authorization is RBAC only; privileged containers are allowed (as on a
 *   real cluster), so PodSecurity is what decides.
 * - There is no controller-manager, scheduler or kubelet: ServiceAccounts get no token Secret (use
 *   `kubectl create token`, the TokenRequest API is served by the API server itself), namespaces are never
 *   finalized once deleted, pods never run and Jobs never complete by themselves.
 * - {@link Cluster.stop} kills both process groups and removes the temp directory; it is also run at process
 *   exit and on SIGINT/SIGTERM, and the children are started under `setpriv --pdeathsig KILL` so that even a
 *   SIGKILLed test process takes them along.
 * - Missing binaries or a server that does not come up are errors (never a skip), naming `npm run tools` or
 *   quoting the last lines of the server logs.
 *
 * With {@link StartOptions.controlPlane} it is the control plane of a real node (demo/cluster): every server,
 * and every kubectl/helm call, runs in the given network namespace (`nsenter --net`), kube-controller-manager and
 * kube-scheduler run too, the API server authorizes kubelets (Node,RBAC + NodeRestriction), keeps the
 * `kubernetes` Service's endpoints (the in-cluster address pods use) and reaches the kubelet with a client
 * certificate of the run's CA.
 *
 * Set KNAWD_KEEP_CLUSTER=1 to keep the temp directory (logs, kubeconfig) after the run.
 */
import { ChildProcess, spawn } from 'child_process';
import * as fs from 'fs';
import * as https from 'https';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { openssl } from './openssl';
import { disown, orphanedDirs, ownedTempDir } from './temp-dirs';

export const REPO = path.resolve(__dirname, '..', '..');

/**
 * The Kubernetes releases the harness runs (tools/versions.env): `newest` = K8S_VERSION with ETCD_VERSION (every
 * suite), `oldest` = K8S_OLDEST_VERSION with ETCD_OLDEST_VERSION (the cluster cases that depend on the release, and
 * the node harness once).
 */
export type KubernetesRelease = 'newest' | 'oldest';

/** The value of `key` in tools/versions.env (the pins `npm run tools` builds). */
export function pinnedVersion(key: string): string {
  const text = fs.readFileSync(path.join(REPO, 'tools', 'versions.env'), 'utf8');
  const value = new RegExp(`^${key}=(\\S+)$`, 'm').exec(text)?.[1];
  if (!value) throw new Error(`tools/versions.env has no ${key}`);
  return value;
}

/** The versions.env keys of each release's Kubernetes and etcd. */
export const RELEASE_KEYS: Record<KubernetesRelease, { readonly kubernetes: string; readonly etcd: string }> = {
  newest: { kubernetes: 'K8S_VERSION', etcd: 'ETCD_VERSION' },
  oldest: { kubernetes: 'K8S_OLDEST_VERSION', etcd: 'ETCD_OLDEST_VERSION' },
};

/** Where `npm run tools` links a release's binaries: keyed by version, so checkouts sharing .tools never collide. */
export function kubernetesBin(release: KubernetesRelease): string {
  return path.join(REPO, '.tools', 'kubernetes', pinnedVersion(RELEASE_KEYS[release].kubernetes), 'bin');
}

const inRelease = (release: KubernetesRelease, name: string): { path: string; provides: string } => ({
  path: path.join(kubernetesBin(release), name),
  provides: `the ${name} build of the ${release} Kubernetes release (${RELEASE_KEYS[release].kubernetes}${name === 'etcd' ? `, ${RELEASE_KEYS[release].etcd}` : ''} in tools/versions.env)`,
});

export const TOOLS = {
  etcd: inRelease('newest', 'etcd'),
  kubeApiserver: inRelease('newest', 'kube-apiserver'),
  kubectl: inRelease('newest', 'kubectl'),
  oldestEtcd: inRelease('oldest', 'etcd'),
  oldestKubeApiserver: inRelease('oldest', 'kube-apiserver'),
  oldestKubectl: inRelease('oldest', 'kubectl'),
  helm: { path: path.join(REPO, '.tools', 'bin', 'helm'), provides: 'the helm build (HELM_VERSION in tools/versions.env)' },
  kubeControllerManager: inRelease('newest', 'kube-controller-manager'),
  kubeScheduler: inRelease('newest', 'kube-scheduler'),
  oldestKubeControllerManager: inRelease('oldest', 'kube-controller-manager'),
  oldestKubeScheduler: inRelease('oldest', 'kube-scheduler'),
} as const;

export type ToolName = keyof typeof TOOLS;

/** Path of a tool; throws (failing the test, never skipping it) when it is missing. */
export function tool(name: ToolName): string {
  const { path: p, provides } = TOOLS[name];
  if (!fs.existsSync(p)) {
    throw new Error(`${p} not found (${provides}); run \`npm run tools\` to install it`);
  }
  return p;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Kill the command after this many ms (the result then has code -1). @default 120000 */
  readonly timeoutMs?: number;
  /** Extra environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Use this kubeconfig instead of the admin one. */
  readonly kubeconfig?: string;
  /** Working directory. @default the repository */
  readonly cwd?: string;
  /** Called with each piece of stdout as it arrives (to act on a line before the command ends). */
  readonly onStdout?: (chunk: string) => void;
}

export interface Cluster {
  /** Admin kubeconfig (token of a `system:masters` user). */
  readonly kubeconfig: string;
  readonly server: string;
  readonly token: string;
  /** The CA that signed the serving certificate. */
  readonly caFile: string;
  /** Temp directory of this run (logs, certificates, kubeconfigs). */
  readonly dir: string;
  /** Process ids of the servers (each the leader of its own process group). */
  readonly pids: { readonly etcd: number; readonly kubeApiserver: number };
  /** etcd's client URL (on the loopback of the machine, or of the node's network namespace). */
  readonly etcdUrl: string;
  /** Kubeconfig of each {@link StartOptions.users} entry, by user name. */
  readonly users: Readonly<Record<string, string>>;
  /** Runs kubectl with KUBECONFIG set; never throws for a non-zero exit. */
  kubectl(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Runs kubectl and throws (with its stderr) unless it exits 0; resolves to stdout. */
  kubectlOk(args: readonly string[], options?: RunOptions): Promise<string>;
  /** Runs helm with KUBECONFIG and private helm home directories; never throws for a non-zero exit. */
  helm(args: readonly string[], options?: RunOptions): Promise<RunResult>;
  /** Runs helm and throws unless it exits 0; resolves to stdout. */
  helmOk(args: readonly string[], options?: RunOptions): Promise<string>;
  /** A kubeconfig for the same server authenticating with `token` (e.g. a ServiceAccount token). */
  writeKubeconfig(name: string, token: string): string;
  /** The last lines of every server's log (for failure messages). */
  logTail(lines?: number): string;
  /**
   * Kills kube-apiserver without warning (SIGKILL: its connections break), keeps it down for `downMs`, starts it
   * again with the same flags and resolves once it is ready; etcd and its data stay. For tests of clients that
   * must ride out an API server restart. `pids.kubeApiserver` keeps the first process's id.
   */
  restartApiServer(downMs?: number): Promise<void>;
  /** Stops both servers (process groups, SIGTERM then SIGKILL) and removes the temp directory. Idempotent. */
  stop(): Promise<void>;
}

/** Runs a command without a shell; resolves with its exit status and output (never rejects). */
export function runCommand(file: string, args: readonly string[], options: RunOptions & { env?: Readonly<Record<string, string>> } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    let stdout = '';
    let stderr = '';
    let settled = false;
    const child = spawn(file, [...args], {
      cwd: options.cwd ?? REPO,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const finish = (result: RunResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const timeoutMs = options.timeoutMs ?? 120_000;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ code: -1, stdout, stderr: `${stderr}\n[killed after ${timeoutMs} ms]` });
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      options.onStdout?.(d.toString('utf8'));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', (error) => finish({ code: -1, stdout, stderr: `${stderr}${error.message}` }));
    child.on('close', (code, signal) => finish({ code: code ?? -1, stdout, stderr: signal ? `${stderr}\n[signal ${signal}]` : stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}

function describe(what: string, args: readonly string[], r: RunResult): string {
  return `${what} ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr.trim() || r.stdout.trim()}`;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address() as net.AddressInfo;
      server.close(() => resolve(address.port));
    });
  });
}


/**
 * CA, serving certificate for 127.0.0.1/localhost (and `extraIp`), the service account key pair, and the
 * API server's client certificate for kubelets.
 */
function makeCertificates(dir: string, extraIp?: string): void {
  const ext = path.join(dir, 'server.ext');
  fs.writeFileSync(
    ext,
    [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.0.0.1${extraIp ? `,IP:${extraIp}` : ''}`,
    ].join('\n') + '\n',
  );
  fs.writeFileSync(path.join(dir, 'client.ext'), 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=knawd-test-ca']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=kube-apiserver']);
  openssl(dir, ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'server.ext']);
  openssl(dir, ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', 'sa.key']);
  openssl(dir, ['pkey', '-in', 'sa.key', '-pubout', '-out', 'sa.pub']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'kubelet-client.key', '-out', 'kubelet-client.csr', '-subj', '/O=system:masters/CN=kube-apiserver-kubelet-client']);
  openssl(dir, ['x509', '-req', '-in', 'kubelet-client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'kubelet-client.crt', '-days', '2', '-extfile', 'client.ext']);
}

function kubeconfigText(server: string, caFile: string, user: string, token: string): string {
  // JSON is YAML; no quoting surprises.
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'knawd-test', cluster: { server, 'certificate-authority': caFile } }],
      users: [{ name: user, user: { token } }],
      contexts: [{ name: 'knawd-test', context: { cluster: 'knawd-test', user } }],
      'current-context': 'knawd-test',
      preferences: {},
    },
    null,
    2,
  );
}

function tail(file: string, lines: number): string {
  try {
    // Without kube-apiserver's dump of every flag value (at --v=1), which would push the reason out of view.
    const text = fs.readFileSync(file, 'utf8').trimEnd().split('\n').filter((l) => !/\] FLAG: --/.test(l));
    return text.slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** `setpriv --pdeathsig KILL` when available: the child dies with the test process even on SIGKILL. */
function launcher(): string[] {
  return fs.existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', '--pdeathsig', 'KILL', '--'] : [];
}

interface Server {
  readonly name: string;
  readonly child: ChildProcess;
  readonly log: string;
  exited?: string;
}

function startServer(name: string, command: readonly string[], log: string, env: Record<string, string> = {}): Server {
  const out = fs.openSync(log, 'a');
  const argv = [...launcher(), ...command];
  const child = spawn(argv[0], argv.slice(1), {
    detached: true, // own process group: stop() kills the group
    stdio: ['ignore', out, out],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: os.tmpdir(), ...env },
  });
  fs.closeSync(out);
  const server: Server = { name, child, log };
  child.on('exit', (code, signal) => (server.exited = signal ? `killed by ${signal}` : `exited with status ${code}`));
  child.on('error', (error) => (server.exited = `could not start: ${error.message}`));
  return server;
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // already gone
  }
}

function waitExit(server: Server, ms: number): Promise<boolean> {
  if (server.exited !== undefined || server.child.exitCode !== null || server.child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    server.child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** GET `url` with the token; resolves to the HTTP status and body, or to an error text. */
function get(url: string, token: string, ca: Buffer): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca, headers: { Authorization: `Bearer ${token}` }, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ error: error.message }));
  });
}

/** Every live cluster of this process, for the exit handlers. */
const live = new Set<{ killNow(): void }>();
let handlersInstalled = false;
let signalsLeftToCaller = false;

/**
 * For a caller that tears everything down itself on SIGINT/SIGTERM (`npm run demo`: the node and its network
 * namespace too, which these handlers do not know): only the kill at process exit stays. Call before startCluster.
 */
export function leaveSignalsToCaller(): void {
  signalsLeftToCaller = true;
}

function installExitHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const killAll = (): void => {
    for (const c of live) c.killNow();
  };
  process.on('exit', killAll);
  if (signalsLeftToCaller) return;
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      // Exit as the signal would have made us (re-raising is not enough when the signal was inherited ignored).
      process.exit(128 + (os.constants.signals[signal] ?? 1));
    });
  }
}

const DIR_PREFIX = 'knawd-cluster-';

/**
 * Removes temp directories of earlier runs whose test process is gone without cleaning up (SIGKILL: the
 * servers died with it through pdeathsig, but nothing could remove the directory). Kept directories
 * (KNAWD_KEEP_CLUSTER=1) have no owner file left and are not touched.
 */
export function sweepStaleDirs(): void {
  for (const dir of orphanedDirs(DIR_PREFIX)) fs.rmSync(dir, { recursive: true, force: true });
}

export interface ControlPlaneOptions {
  /** Network namespace file (bound by `unshare --net=FILE`) every server and every kubectl/helm call joins. */
  readonly netns: string;
  /** The node network's address of the API server inside that namespace (what kubelets and the `kubernetes` Service use). */
  readonly address: string;
}

export interface StartOptions {
  /** Bound for the servers to become ready. @default 90000 */
  readonly readyTimeoutMs?: number;
  /** Extra kube-apiserver flags. */
  readonly apiServerArgs?: readonly string[];
  /** Run as the control plane of a real node, in its network namespace (see the module comment). @default undefined */
  readonly controlPlane?: ControlPlaneOptions;
  /** Token users to add, user name → groups (e.g. `system:node:n1` → `system:nodes`). @default {} */
  readonly users?: Readonly<Record<string, readonly string[]>>;
  /** Which Kubernetes release (kube-apiserver, its etcd, its kubectl, and a node's controllers). @default 'newest' */
  readonly kubernetes?: KubernetesRelease;
}

/** The users the controller-manager and the scheduler authenticate as (bound by the default RBAC roles). */
const CONTROLLER_USERS = { 'kube-controller-manager': 'system:kube-controller-manager', 'kube-scheduler': 'system:kube-scheduler' } as const;

const randomToken = (prefix: string): string => `${prefix}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;

/** The binaries of one Kubernetes release; the controllers only for a node's control plane. */
interface ReleaseBinaries {
  readonly etcd: string;
  readonly apiserver: string;
  readonly kubectl: string;
  readonly controllers?: { readonly cm: string; readonly scheduler: string };
}

function releaseBinaries(options: StartOptions): ReleaseBinaries {
  const oldest = options.kubernetes === 'oldest';
  return {
    etcd: tool(oldest ? 'oldestEtcd' : 'etcd'),
    apiserver: tool(oldest ? 'oldestKubeApiserver' : 'kubeApiserver'),
    kubectl: tool(oldest ? 'oldestKubectl' : 'kubectl'),
    controllers: options.controlPlane
      ? { cm: tool(oldest ? 'oldestKubeControllerManager' : 'kubeControllerManager'), scheduler: tool(oldest ? 'oldestKubeScheduler' : 'kubeScheduler') }
      : undefined,
  };
}

/** A command line as it runs: in the node's network namespace when there is one (nothing in it can reach out). */
type InNet = (argv: readonly string[]) => string[];

/** The servers of one start, its temp directory, and how they end. */
class ServerSet {
  readonly servers: Server[] = [];
  private stopped = false;
  private readonly keep = process.env.KNAWD_KEEP_CLUSTER === '1';
  private readonly handle = { killNow: (): void => this.killNow() };

  constructor(readonly dir: string) {
    live.add(this.handle);
  }

  start(name: string, argv: readonly string[]): Server {
    const server = startServer(name, argv, path.join(this.dir, `${name}.log`));
    this.servers.push(server);
    return server;
  }

  logTail(lines = 25): string {
    return this.servers.map((s) => `--- last ${lines} lines of the ${s.name} log${s.exited ? ` (${s.name} ${s.exited})` : ''}:\n${tail(s.log, lines)}`).join('\n');
  }

  /** Kills the server `name` without warning, keeps it down for `downMs` and starts it again with `argv` (same log). */
  async restart(name: string, argv: readonly string[], downMs: number): Promise<void> {
    const index = this.servers.findIndex((s) => s.name === name);
    const old = this.servers[index];
    killGroup(old.child, 'SIGKILL');
    await waitExit(old, 10_000);
    await sleep(downMs);
    this.servers[index] = startServer(name, argv, old.log);
  }

  /** In reverse order of their start (kube-apiserver talks to etcd): SIGTERM, then SIGKILL. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    for (const s of [...this.servers].reverse()) {
      killGroup(s.child, 'SIGTERM');
      if (!(await waitExit(s, 5000))) {
        killGroup(s.child, 'SIGKILL');
        await waitExit(s, 5000);
      }
    }
    live.delete(this.handle);
    this.removeDir();
  }

  private killNow(): void {
    for (const s of this.servers) killGroup(s.child, 'SIGKILL');
    this.removeDir();
  }

  private removeDir(): void {
    if (this.keep) disown(this.dir);
    else fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The admin token and one token per user (the given users, and the controllers' on a node). */
interface Tokens {
  readonly admin: string;
  readonly users: Readonly<Record<string, string>>;
}

/** tokens.csv for the API server's token authentication. */
function writeTokens(dir: string, options: StartOptions): Tokens {
  const admin = randomToken('admin');
  const users: Record<string, string> = {};
  const lines = [`${admin},knawd-test-admin,knawd-test-admin,"system:masters"`];
  const add = (name: string, groups: readonly string[]): void => {
    users[name] = randomToken('user');
    lines.push(`${users[name]},${name},${name},"${groups.join(',')}"`);
  };
  for (const [name, groups] of Object.entries(options.users ?? {})) add(name, groups);
  if (options.controlPlane) for (const user of Object.values(CONTROLLER_USERS)) add(user, []);
  fs.writeFileSync(path.join(dir, 'tokens.csv'), lines.join('\n') + '\n', { mode: 0o600 });
  return { admin, users };
}

interface Ports {
  readonly client: number;
  readonly peer: number;
  readonly secure: number;
  readonly cm?: number;
  readonly scheduler?: number;
}

/** A namespace of our own has every port free; on the machine's loopback they are picked per run. */
async function choosePorts(plane: ControlPlaneOptions | undefined): Promise<Ports> {
  if (plane) return { client: 2379, peer: 2380, secure: 6443, cm: 10257, scheduler: 10259 };
  const [client, peer, secure] = await distinctFreePorts(3);
  return { client, peer, secure };
}

function etcdCommand(bin: string, dir: string, ports: Ports): string[] {
  return [
    bin,
    '--name=knawd-test',
    `--data-dir=${path.join(dir, 'etcd-data')}`,
    `--listen-client-urls=http://127.0.0.1:${ports.client}`,
    `--advertise-client-urls=http://127.0.0.1:${ports.client}`,
    `--listen-peer-urls=http://127.0.0.1:${ports.peer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${ports.peer}`,
    `--initial-cluster=knawd-test=http://127.0.0.1:${ports.peer}`,
    '--initial-cluster-state=new',
    '--log-level=warn',
    '--logger=zap',
  ];
}

function apiServerCommand(bin: string, dir: string, ports: Ports, options: StartOptions): string[] {
  const plane = options.controlPlane;
  return [
    bin,
    `--etcd-servers=http://127.0.0.1:${ports.client}`,
    `--bind-address=${plane ? '0.0.0.0' : '127.0.0.1'}`,
    `--advertise-address=${plane?.address ?? '127.0.0.1'}`,
    `--secure-port=${ports.secure}`,
    `--cert-dir=${dir}`,
    `--tls-cert-file=${path.join(dir, 'server.crt')}`,
    `--tls-private-key-file=${path.join(dir, 'server.key')}`,
    `--client-ca-file=${path.join(dir, 'ca.crt')}`,
    `--token-auth-file=${path.join(dir, 'tokens.csv')}`,
    ...(plane
      ? [
          '--authorization-mode=Node,RBAC',
          '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity,NodeRestriction',
          `--kubelet-client-certificate=${path.join(dir, 'kubelet-client.crt')}`,
          `--kubelet-client-key=${path.join(dir, 'kubelet-client.key')}`,
          // By hostname it would ask DNS, outside the namespace.
          '--kubelet-preferred-address-types=InternalIP',
        ]
      : ['--authorization-mode=RBAC', '--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity']),
    '--allow-privileged=true',
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${path.join(dir, 'sa.pub')}`,
    `--service-account-signing-key-file=${path.join(dir, 'sa.key')}`,
    '--service-cluster-ip-range=10.0.0.0/24',
    // No kubelet or node network: the "kubernetes" Service endpoints would point at loopback, which the
    // API rejects; nothing here needs them.
    ...(plane ? [] : ['--endpoint-reconciler-type=none']),
    '--enable-priority-and-fairness=false',
    '--profiling=false',
    '--v=1',
    ...(options.apiServerArgs ?? []),
  ];
}

/** A node's kube-controller-manager and kube-scheduler, each with its own user's kubeconfig. */
function startControllers(set: ServerSet, inNet: InNet, bins: NonNullable<ReleaseBinaries['controllers']>, ports: Ports, users: Readonly<Record<string, string>>): void {
  set.start(
    'kube-controller-manager',
    inNet([
      bins.cm,
      `--kubeconfig=${users[CONTROLLER_USERS['kube-controller-manager']]}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.cm}`,
      `--service-account-private-key-file=${path.join(set.dir, 'sa.key')}`,
      // Published to every namespace as kube-root-ca.crt: what pods verify the API server with.
      `--root-ca-file=${path.join(set.dir, 'ca.crt')}`,
      '--use-service-account-credentials=true',
      '--leader-elect=false',
      '--service-cluster-ip-range=10.0.0.0/24',
      '--profiling=false',
      '--v=1',
    ]),
  );
  set.start(
    'kube-scheduler',
    inNet([
      bins.scheduler,
      `--kubeconfig=${users[CONTROLLER_USERS['kube-scheduler']]}`,
      '--bind-address=127.0.0.1',
      `--secure-port=${ports.scheduler}`,
      '--leader-elect=false',
      '--profiling=false',
      '--v=1',
    ]),
  );
}

/** The admin's kubeconfig and each user's, and how to write one more for the same server. */
function writeKubeconfigs(dir: string, server: string, tokens: Tokens): Pick<Cluster, 'kubeconfig' | 'users' | 'writeKubeconfig'> {
  const caFile = path.join(dir, 'ca.crt');
  const writeKubeconfig = (name: string, token: string): string => {
    const file = path.join(dir, `${name.replace(/[^A-Za-z0-9_.-]/g, '_')}.kubeconfig`);
    fs.writeFileSync(file, kubeconfigText(server, caFile, name, token), { mode: 0o600 });
    return file;
  };
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  fs.writeFileSync(kubeconfig, kubeconfigText(server, caFile, 'knawd-test-admin', tokens.admin), { mode: 0o600 });
  const users = Object.fromEntries(Object.entries(tokens.users).map(([name, t]) => [name, writeKubeconfig(name, t)]));
  return { kubeconfig, users, writeKubeconfig };
}

/** kubectl and helm against the cluster (in its network namespace, if any), helm with private home directories. */
function clientCommands(dir: string, inNet: InNet, kubectlBin: string, kubeconfig: string): Pick<Cluster, 'kubectl' | 'kubectlOk' | 'helm' | 'helmOk'> {
  const helmHome = path.join(dir, 'helm');
  const helmEnv = { HELM_CACHE_HOME: path.join(helmHome, 'cache'), HELM_CONFIG_HOME: path.join(helmHome, 'config'), HELM_DATA_HOME: path.join(helmHome, 'data') };
  const runIn = (argv: readonly string[], o: RunOptions, env: Record<string, string>): Promise<RunResult> => {
    const [file, ...args] = inNet(argv);
    return runCommand(file, args, { ...o, env: { ...env, ...o.env, KUBECONFIG: o.kubeconfig ?? kubeconfig } });
  };
  const kubectl = (args: readonly string[], o: RunOptions = {}): Promise<RunResult> => runIn([kubectlBin, ...args], o, {});
  const helm = (args: readonly string[], o: RunOptions = {}): Promise<RunResult> => runIn([tool('helm'), ...args], o, helmEnv);
  return {
    kubectl,
    async kubectlOk(args, o) {
      const r = await kubectl(args, o);
      if (r.code !== 0) throw new Error(describe('kubectl', args, r));
      return r.stdout;
    },
    helm,
    async helmOk(args, o) {
      const r = await helm(args, o);
      if (r.code !== 0) throw new Error(describe('helm', args, r));
      return r.stdout;
    },
  };
}

/**
 * Starts etcd and kube-apiserver and resolves once `/readyz` answers 200 (every post-start hook done: RBAC
 * bootstrap roles, system priority classes, default namespaces); on a node's control plane then the
 * controller-manager and the scheduler. Rejects with the reason and the logs' last lines when a server cannot start.
 */
export async function startCluster(options: StartOptions = {}): Promise<Cluster> {
  const bins = releaseBinaries(options);
  const plane = options.controlPlane;
  const inNet: InNet = (argv) => (plane ? ['/usr/bin/nsenter', `--net=${plane.netns}`, '--', ...argv] : [...argv]);
  installExitHandlers();
  sweepStaleDirs();
  const set = new ServerSet(ownedTempDir(DIR_PREFIX));
  const dir = set.dir;
  try {
    makeCertificates(dir, plane?.address);
    const tokens = writeTokens(dir, options);
    const ports = await choosePorts(plane);
    const etcd = set.start('etcd', inNet(etcdCommand(bins.etcd, dir, ports)));
    const apiserverArgv = inNet(apiServerCommand(bins.apiserver, dir, ports, options));
    const apiserver = set.start('kube-apiserver', apiserverArgv);

    const server = `https://${plane?.address ?? '127.0.0.1'}:${ports.secure}`;
    const caFile = path.join(dir, 'ca.crt');
    const { kubeconfig, users, writeKubeconfig } = writeKubeconfigs(dir, server, tokens);

    const readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
    const readyProbe = plane ? netnsProbe(inNet, bins.kubectl, kubeconfig) : httpsProbe(server, tokens.admin, fs.readFileSync(caFile));
    await waitReady(readyProbe, set.servers, readyTimeoutMs);

    if (bins.controllers) startControllers(set, inNet, bins.controllers, ports, users);

    return {
      kubeconfig,
      server,
      token: tokens.admin,
      caFile,
      dir,
      pids: { etcd: etcd.child.pid ?? -1, kubeApiserver: apiserver.child.pid ?? -1 },
      etcdUrl: `http://127.0.0.1:${ports.client}`,
      users,
      ...clientCommands(dir, inNet, bins.kubectl, kubeconfig),
      writeKubeconfig,
      logTail: (lines) => set.logTail(lines),
      async restartApiServer(downMs = 0) {
        await set.restart('kube-apiserver', apiserverArgv, downMs);
        await waitReady(readyProbe, set.servers, readyTimeoutMs);
      },
      stop: () => set.stop(),
    };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const logs = set.logTail(40);
    await set.stop();
    throw new Error(`${message}\n${logs}`);
  }
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** One look at `/readyz`: ready, or what is still missing. */
type ReadyProbe = () => Promise<{ ready: true } | { ready: false; last: string }>;

/** GET /readyz with the admin token, from this process (the API server listens on the machine's loopback). */
function httpsProbe(server: string, token: string, ca: Buffer): ReadyProbe {
  return async () => {
    const r = await get(`${server}/readyz?verbose`, token, ca);
    if ('status' in r && r.status === 200) return { ready: true };
    return { ready: false, last: 'error' in r ? r.error : `HTTP ${r.status}: ${r.body.split('\n').filter((l) => l.includes('[-]')).join('; ') || r.body.slice(0, 300)}` };
  };
}

/** The same through kubectl entered into the network namespace, where the API server's address is reachable. */
function netnsProbe(inNet: (argv: readonly string[]) => string[], kubectlBin: string, kubeconfig: string): ReadyProbe {
  return async () => {
    const [file, ...args] = inNet([kubectlBin, 'get', '--raw=/readyz?verbose', '--request-timeout=5s']);
    const r = await runCommand(file, args, { env: { KUBECONFIG: kubeconfig }, timeoutMs: 10_000 });
    if (r.code === 0) return { ready: true };
    return { ready: false, last: `${r.stdout.split('\n').filter((l) => l.includes('[-]')).join('; ')} ${r.stderr.trim().split('\n').pop() ?? ''}`.trim() };
  };
}

async function waitReady(probe: ReadyProbe, servers: readonly Server[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    const dead = servers.find((s) => s.exited !== undefined);
    if (dead) throw new Error(`${dead.name} ${dead.exited} before the API server became ready (last /readyz: ${last})`);
    const r = await probe();
    if (r.ready) return;
    last = r.last;
    if (Date.now() > deadline) {
      throw new Error(`kube-apiserver did not become ready within ${Math.round(timeoutMs / 1000)} s (last /readyz: ${last})`);
    }
    await sleep(250);
  }
}
