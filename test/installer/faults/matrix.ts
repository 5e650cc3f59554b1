/**
 * The fault matrix of issue 19, on real file systems made for it. Each case runs the installer's CLI edge
 * (`run()`: the one JSON line, the one human line, the exit code) against a node root whose /opt is a small
 * tmpfs and whose /etc/containerd is a bind mount of a directory on another small tmpfs, with one fault:
 *   space      the file system is filled up (ENOSPC)
 *   inodes     its inodes are used up (ENOSPC on create)
 *   read-only  /opt remounted read-only, /etc/containerd's bind mount remounted read-only (EROFS)
 *   immutable  chattr +i on the directory written into, or on the config itself (EPERM)
 *   concurrent-writer  an admin edits config.toml while the run goes on (the compare-and-swap)
 *   mount-point  config.toml is a file bind-mounted in place (rename cannot replace it)
 *   nsenter-missing, systemctl-missing, restart-timeout  the host commands of the restart step fail as the real
 *              runners report it (a spawn of a missing program; `chroot` into a node without systemctl; a
 *              systemctl shim that hangs, killed at its timeout)
 * injected before the run, and before every write (mutation) of install and of remove on the file system it
 * applies to. After each: the fault is lifted (space freed, remounted read-write, chattr -i; the admin's edit
 * stays), the host is classified (byte-identical to before, completed, or resumable: recorded and not
 * claimed installed), `status` must tell that truth, and the next install must give the tree of an
 * undisturbed install, the next remove the original one.
 *
 * Needs root (mount, chattr): it runs in a mount namespace of its own (main.ts under `unshare -m`), so no
 * mount outlives it. systemctl is the one fake (PID 1 is not systemd here): a RecordingRunner answers it.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { status } from '../../../lib/installer/commands/status';
import { ChildProcessRunner, ChrootRunner, CommandRunner, RecordingRunner } from '../../../lib/installer/host/commands';
import { FsEvent, HostFs } from '../../../lib/installer/host/fs';
import { Effects } from '../../../lib/installer/installer';
import { run } from '../../../lib/installer/run';
import { handlersOnNodeRoot } from '../../support/fake-runtime';
import { diffKeys, fixture, makeArtifacts, settingsFor, snapshot } from '../support';

export const FAULT_KINDS = ['space', 'inodes', 'read-only', 'immutable', 'concurrent-writer', 'mount-point', 'nsenter-missing', 'systemctl-missing', 'restart-timeout'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export type HostOutcome = 'identical' | 'completed' | 'resumable' | 'damaged';

export interface CaseResult {
  readonly command: 'install' | 'remove';
  readonly kind: FaultKind;
  /** Where it was injected: `before the run`, or `before #3 write /opt/knawd/state.json`. */
  readonly at: string;
  readonly code: number;
  /** What the run printed on stderr (one line for a failure, none for success). */
  readonly stderr: readonly string[];
  readonly host: HostOutcome;
  /** `status` after the run, and whether it tells the truth about `host`. */
  readonly status: string;
  readonly statusTruthful: boolean;
  /** One line in the CLI's format, naming host paths only, no "unexpected error", and the right exit code. */
  readonly clearLine: boolean;
  /** After lifting the fault: install gave the installed tree and remove the original (or remove did). */
  readonly converged: boolean;
  /** What went wrong with this case, for the test's message. */
  readonly problems: readonly string[];
}

const TARGET = 'ubuntu_22_04';
const RUNTIME = 'crun-wasmtime';
const CONFIG = '/etc/containerd/config.toml';
const EDIT = '# edited by an admin while the installer ran\n';
const ORIGINAL = fixture('containerd-1.6-systemd-cgroup.toml');
/** Small, but with room for the install (the fake artifacts are a few hundred bytes each). */
const OPT_FS = 'size=2m,nr_inodes=48,mode=755';
const CONFIG_FS = 'size=1m,nr_inodes=24,mode=755';
/** The restart-timeout case kills its hanging systemctl after this long (the installer's own bound is 120 s). */
const HANG_KILL_MS = 300;

function sh(cmd: string, args: string[]): void {
  execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** One node root with /opt and /etc/containerd on file systems of their own. */
class Rig {
  readonly root: string;
  readonly opt: string;
  /** The tmpfs behind /etc/containerd (its subdirectory `containerd` is bind-mounted there). */
  readonly configFs: string;
  readonly configDir: string;
  private readonly mounts: string[] = [];
  private readonly lifts: Array<() => void> = [];

  constructor(work: string, name: string) {
    this.root = path.join(work, name);
    this.opt = path.join(this.root, 'opt');
    this.configFs = path.join(work, `${name}-config-fs`);
    this.configDir = path.join(this.root, 'etc', 'containerd');
    for (const dir of [this.opt, this.configDir, path.join(this.root, 'run'), this.configFs]) fs.mkdirSync(dir, { recursive: true });
    this.mount(['-t', 'tmpfs', '-o', OPT_FS, 'knawd-faults-opt', this.opt]);
    this.mount(['-t', 'tmpfs', '-o', CONFIG_FS, 'knawd-faults-config', this.configFs]);
    fs.mkdirSync(path.join(this.configFs, 'containerd'), { mode: 0o755 });
    fs.chmodSync(path.join(this.configFs, 'containerd'), 0o755);
    this.mount(['--bind', path.join(this.configFs, 'containerd'), this.configDir]);
    fs.writeFileSync(path.join(this.configDir, 'config.toml'), ORIGINAL);
  }

  mount(args: string[]): void {
    sh('mount', args);
    this.mounts.push(args[args.length - 1]);
  }

  /** Which of the rig's file systems holds a path in the node root. */
  site(local: string): 'opt' | 'config' | undefined {
    if (local === this.opt || local.startsWith(this.opt + '/')) return 'opt';
    if (local === this.configDir || local.startsWith(this.configDir + '/')) return 'config';
    return undefined;
  }

  /** Applies `kind` to the file system of `site` (`local`: the path about to be written, for chattr). */
  inject(kind: FaultKind, site: 'opt' | 'config', local: string): void {
    const fsRoot = site === 'opt' ? this.opt : this.configFs;
    switch (kind) {
      case 'space': {
        const filler = path.join(fsRoot, '.knawd-fault-filler');
        fillBytes(filler);
        this.lifts.push(() => fs.rmSync(filler, { force: true }));
        return;
      }
      case 'inodes': {
        const made = fillInodes(fsRoot);
        this.lifts.push(() => made.forEach((f) => fs.rmSync(f, { force: true })));
        return;
      }
      case 'read-only': {
        const mountPoint = site === 'opt' ? this.opt : this.configDir;
        sh('mount', ['-o', site === 'opt' ? 'remount,ro' : 'remount,bind,ro', mountPoint]);
        this.lifts.push(() => sh('mount', ['-o', site === 'opt' ? 'remount,rw' : 'remount,bind,rw', mountPoint]));
        return;
      }
      case 'immutable': {
        // The file or directory itself when it exists (a replace, unlink or rmdir of it), else the directory it goes in.
        const target = fs.existsSync(local) ? local : existingDir(local);
        sh('chattr', ['+i', target]);
        this.lifts.push(() => sh('chattr', ['-i', target]));
        return;
      }
      case 'concurrent-writer':
        fs.appendFileSync(path.join(this.configDir, 'config.toml'), EDIT);
        return;
      case 'mount-point': {
        const source = path.join(this.configFs, 'config.toml.mounted');
        fs.copyFileSync(path.join(this.configDir, 'config.toml'), source);
        this.mount(['--bind', source, path.join(this.configDir, 'config.toml')]);
        const mounted = path.join(this.configDir, 'config.toml');
        this.lifts.push(() => {
          sh('umount', [mounted]);
          this.mounts.splice(this.mounts.indexOf(mounted), 1);
          fs.rmSync(source);
        });
        return;
      }
      default:
        throw new Error(`${kind} is not a file-system fault`);
    }
  }

  /** Runs `undo` when the fault is lifted. */
  onLift(undo: () => void): void {
    this.lifts.push(undo);
  }

  lift(): void {
    for (const lift of this.lifts.splice(0).reverse()) lift();
  }

  dispose(): void {
    this.lift();
    for (const mountPoint of this.mounts.splice(0).reverse()) sh('umount', ['-l', mountPoint]);
  }
}

function fillBytes(file: string): void {
  const fd = fs.openSync(file, 'w');
  try {
    for (const size of [1 << 16, 4096, 1]) {
      const chunk = Buffer.alloc(size);
      for (;;) {
        try {
          fs.writeSync(fd, chunk);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw error;
        }
      }
    }
  } finally {
    fs.closeSync(fd);
  }
}

function fillInodes(dir: string): string[] {
  const made: string[] = [];
  for (let i = 0; ; i++) {
    const file = path.join(dir, `.knawd-fault-inode-${i}`);
    try {
      fs.writeFileSync(file, '');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOSPC') return made;
      throw error;
    }
    made.push(file);
  }
}

function existingDir(local: string): string {
  let p = path.dirname(local);
  while (!fs.existsSync(p)) p = path.dirname(p);
  return p;
}

/**
 * The node's containerd as the pre-flight meets it, with an admin editing config.toml while it judges the
 * candidate: a stand-in binary at its catalog path answers its version, and the config dump is where the edit
 * lands (the dump then reports that it could not run, so the pre-flight is skipped, as without a binary).
 */
function editingPreflight(rig: Rig, edit: () => void): CommandRunner {
  const binary = path.join(rig.root, 'usr/bin/containerd');
  fs.mkdirSync(path.dirname(binary), { recursive: true });
  fs.writeFileSync(binary, '#!/bin/false stand-in for the node containerd\n', { mode: 0o755 });
  rig.onLift(() => fs.rmSync(path.join(rig.root, 'usr'), { recursive: true, force: true }));
  return new RecordingRunner((argv) => {
    if (argv.includes('--version')) return { stdout: 'containerd github.com/containerd/containerd 1.6.20 1\n' };
    if (argv.includes('dump')) {
      edit();
      return { code: -1, stderr: 'the stand-in does not load configs' };
    }
    return undefined;
  });
}

/** The runners of the command faults, as the real ones fail; every other case answers systemctl (the fake). */
function runnerFor(kind: FaultKind, root: string): CommandRunner {
  const real = new ChildProcessRunner();
  switch (kind) {
    case 'nsenter-missing':
      // The image without nsenter: spawning it fails exactly like this (ENOENT), whatever the command.
      return { run: (argv, timeoutMs) => real.run([`/nonexistent/${argv[0]}`, ...argv.slice(1)], timeoutMs) };
    case 'systemctl-missing':
      // --host-exec chroot into a node root without systemctl: chroot reports it missing (exit 127).
      return new ChrootRunner(root, real);
    case 'restart-timeout':
      // A systemctl that never returns, killed at its bound by the real runner (shortened for the test).
      return { run: (argv, timeoutMs) => (argv.includes('systemctl') ? real.run(['sleep', '30'], HANG_KILL_MS) : real.run(argv, timeoutMs)) };
    default:
      return new RecordingRunner();
  }
}

interface Refs {
  readonly original: Record<string, string>;
  readonly installed: Record<string, string>;
  readonly originalEdited: Record<string, string>;
  readonly installedEdited: Record<string, string>;
  readonly installWrites: readonly FsEvent[];
  readonly removeWrites: readonly FsEvent[];
}

export interface MatrixOptions {
  readonly work: string;
  /** Only the first n cases (a quick look); default all. */
  readonly limit?: number;
}

/** Runs every case; the work dir holds the rigs (removed by the caller). */
export async function runFaultMatrix(options: MatrixOptions): Promise<CaseResult[]> {
  const { work } = options;
  const artifacts = makeArtifacts(TARGET);
  let rigs = 0;
  const withRig = async <T>(use: (rig: Rig) => Promise<T>): Promise<T> => {
    const rig = new Rig(work, `root-${rigs++}`);
    try {
      return await use(rig);
    } finally {
      rig.dispose();
      fs.rmSync(rig.root, { recursive: true, force: true });
      fs.rmSync(rig.configFs, { recursive: true, force: true });
    }
  };
  const args = (command: 'install' | 'remove' | 'status', root: string): string[] => [command, '--node-root', root, '--target', TARGET, '--runtime', RUNTIME, '--artifacts', artifacts];
  const cli = async (command: 'install' | 'remove', root: string, runner: CommandRunner, hook?: (e: FsEvent) => void): Promise<{ code: number; stderr: string[] }> => {
    const stderr: string[] = [];
    const overrides: Partial<Omit<Effects, 'log'>> = {
      fs: new HostFs(root, hook),
      runner,
      cluster: undefined,
      probeSocket: async () => true,
      waitForSocket: async () => true,
      readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }),
    };
    const code = await run(args(command, root), {}, { stdout: () => undefined, stderr: (l) => stderr.push(l) }, overrides);
    return { code, stderr };
  };
  const recorder = (into: FsEvent[]) => (e: FsEvent) => {
    if (e.phase === 'before') into.push(e);
  };

  // References: an undisturbed install and remove, and the same with the admin's edit made before.
  const refs = await withRig(async (rig): Promise<Refs> => {
    const original = snapshot(rig.root);
    const installWrites: FsEvent[] = [];
    await mustSucceed(cli('install', rig.root, new RecordingRunner(), recorder(installWrites)), 'reference install');
    const installed = snapshot(rig.root);
    const removeWrites: FsEvent[] = [];
    await mustSucceed(cli('remove', rig.root, new RecordingRunner(), recorder(removeWrites)), 'reference remove');
    if (JSON.stringify(snapshot(rig.root)) !== JSON.stringify(original)) throw new Error('the reference remove did not restore the original tree');
    fs.appendFileSync(path.join(rig.configDir, 'config.toml'), EDIT);
    const originalEdited = snapshot(rig.root);
    await mustSucceed(cli('install', rig.root, new RecordingRunner()), 'reference install of the edited config');
    const installedEdited = snapshot(rig.root);
    return { original, installed, originalEdited, installedEdited, installWrites, removeWrites };
  });

  interface Plan {
    readonly command: 'install' | 'remove';
    readonly kind: FaultKind;
    /** Before the run: the host path the fault is made on (its file system, or itself for chattr). */
    readonly on?: string;
    /** Before this write of the run. */
    readonly write?: FsEvent;
  }
  const plans: Plan[] = [
    ...(['space', 'inodes', 'read-only', 'immutable'] as const).flatMap((kind) => [
      { command: 'install' as const, kind, on: '/opt/knawd' },
      { command: 'install' as const, kind, on: CONFIG },
      { command: 'remove' as const, kind, on: CONFIG },
    ]),
    { command: 'install', kind: 'immutable', on: '/etc/containerd/' },
    { command: 'remove', kind: 'read-only', on: '/opt/knawd' },
    { command: 'install', kind: 'mount-point', on: CONFIG },
    { command: 'remove', kind: 'mount-point', on: CONFIG },
    // While the node's containerd judges the candidate config (the pre-flight), between plan and first write.
    { command: 'install', kind: 'concurrent-writer', on: CONFIG },
    ...(['nsenter-missing', 'systemctl-missing', 'restart-timeout'] as const).flatMap((kind) => [
      { command: 'install' as const, kind },
      { command: 'remove' as const, kind },
    ]),
  ];
  const configIndex = (writes: readonly FsEvent[]): number => Math.max(...writes.filter((w) => w.path === CONFIG).map((w) => w.index));
  for (const command of ['install', 'remove'] as const) {
    const writes = command === 'install' ? refs.installWrites : refs.removeWrites;
    for (const write of writes) {
      for (const kind of ['space', 'inodes', 'read-only', 'immutable'] as const) plans.push({ command, kind, write });
      if (write.index <= configIndex(writes)) plans.push({ command, kind: 'concurrent-writer', write });
    }
  }

  const results: CaseResult[] = [];
  for (const plan of plans.slice(0, options.limit ?? plans.length)) {
    const result = await withRig(async (rig) => {
      if (plan.command === 'remove') await mustSucceed(cli('install', rig.root, new RecordingRunner()), 'install before a remove case');
      let edited = false;
      let injected = false;
      const inject = (local: string, site: 'opt' | 'config'): void => {
        rig.inject(plan.kind, site, local);
        injected = true;
        edited ||= plan.kind === 'concurrent-writer';
      };
      const commandFault = ['nsenter-missing', 'systemctl-missing', 'restart-timeout'].includes(plan.kind);
      const hostFs = new HostFs(rig.root);
      const before = snapshot(rig.root);
      let runner = runnerFor(plan.kind, rig.root);
      if (plan.on && plan.kind === 'concurrent-writer') runner = editingPreflight(rig, () => inject(hostFs.local(CONFIG), 'config'));
      else if (plan.on) inject(hostFs.local(plan.on.replace(/\/$/, '')), rig.site(hostFs.local(plan.on)) ?? 'opt');
      const hook = (e: FsEvent): void => {
        if (!plan.write || injected || e.phase !== 'before' || e.index !== plan.write.index) return;
        const local = hostFs.local(e.path);
        const site = plan.kind === 'concurrent-writer' ? 'config' : rig.site(local);
        if (site) inject(local, site);
      };
      const outcome = await cli(plan.command, rig.root, runner, hook);
      rig.lift();
      const at = plan.write ? `before #${plan.write.index} ${plan.write.op} ${plan.write.path}` : 'before the run';
      const problems: string[] = [];
      if (!injected && !commandFault) problems.push('the fault was never injected (the write point was not reached)');

      // The host as the run left it.
      const now = snapshot(rig.root);
      const unchanged = edited ? withEdit(before) : before;
      const done = plan.command === 'install' ? (edited ? refs.installedEdited : refs.installed) : edited ? refs.originalEdited : refs.original;
      const host: HostOutcome = same(now, unchanged) ? 'identical' : same(now, done) ? 'completed' : 'resumable';

      // status: not claiming installed unless it is.
      const st = status(settingsFor(args('status', rig.root)), new HostFs(rig.root));
      const installedNow = (plan.command === 'install' && host === 'completed') || (plan.command === 'remove' && host === 'identical');
      // Restored, or restored but for empty directories of ours that could not be removed (no state left to say more).
      const pristine = edited ? refs.originalEdited : refs.original;
      const restoredNow = (plan.command === 'install' && host === 'identical') || (plan.command === 'remove' && host === 'completed') || onlyEmptyDirsAdded(now, pristine);
      const statusTruthful = installedNow ? st.state === 'installed' : restoredNow ? st.state === 'not-installed' : st.state === 'drifted' && st.drift.some((d) => /did not finish/.test(d));
      if (!statusTruthful) problems.push(`status says ${st.state} (${st.drift.join('; ')}) for a host that is ${host}`);

      const clearLine = lineIsClear(outcome, rig.root, problems);

      // Recovery: the next install converges, then remove restores; or the next remove restores.
      let converged = true;
      const expect = (what: string, tree: Record<string, string>): void => {
        const actual = snapshot(rig.root);
        if (!same(actual, tree)) {
          converged = false;
          problems.push(`${what}: ${diffKeys(tree, actual, '; ')}`);
        }
      };
      if (plan.command === 'install') {
        const again = await cli('install', rig.root, new RecordingRunner());
        if (again.code !== 0) problems.push(`install after the fault failed: ${again.stderr.join(' ')}`);
        expect('install after the fault', edited ? refs.installedEdited : refs.installed);
      }
      const removed = await cli('remove', rig.root, new RecordingRunner());
      if (removed.code !== 0) problems.push(`remove after the fault failed: ${removed.stderr.join(' ')}`);
      expect('remove after the fault', edited ? refs.originalEdited : refs.original);
      if (problems.some((p) => p.includes('failed:'))) converged = false;

      return { command: plan.command, kind: plan.kind, at, code: outcome.code, stderr: outcome.stderr, host, status: st.state, statusTruthful, clearLine, converged, problems } satisfies CaseResult;
    });
    results.push(result);
  }
  return results;
}

/** The CLI's failure line: one, in its format, host paths only, not "unexpected", exit 1; success: none, exit 0. */
function lineIsClear(outcome: { code: number; stderr: string[] }, root: string, problems: string[]): boolean {
  if (outcome.code === 0) {
    if (outcome.stderr.length === 0) return true;
    problems.push(`exit 0 but stderr: ${outcome.stderr.join(' | ')}`);
    return false;
  }
  const line = outcome.stderr[0] ?? '';
  const checks: Array<[boolean, string]> = [
    [outcome.code === 1, `exit code ${outcome.code}, not 1`],
    [outcome.stderr.length === 1, `${outcome.stderr.length} lines on stderr`],
    [/^knawd-installer (install|remove): error: .+ \(fix: .+\)$/.test(line), `not in the CLI's format: ${line}`],
    [!line.includes('unexpected error'), `called unexpected: ${line}`],
    [!line.includes(root), `names the node-root mount instead of host paths: ${line}`],
    [/ \/(opt|etc|run|usr)\b|nsenter|systemctl/.test(line), `names no host path or command: ${line}`],
  ];
  for (const [ok, problem] of checks) if (!ok) problems.push(problem);
  return checks.every(([ok]) => ok);
}

/** `tree` with the admin's edit appended to config.toml. */
function withEdit(tree: Record<string, string>): Record<string, string> {
  const key = CONFIG.slice(1);
  const [kind, mode, data] = tree[key].split(' ');
  return { ...tree, [key]: `${kind} ${mode} ${Buffer.concat([Buffer.from(data, 'base64'), Buffer.from(EDIT)]).toString('base64')}` };
}

/** `now` is `base` plus directories (empty ones: their contents would be entries too) and nothing else. */
function onlyEmptyDirsAdded(now: Record<string, string>, base: Record<string, string>): boolean {
  const added = Object.keys(now).filter((k) => !(k in base));
  const dirs = new Set(added.filter((k) => now[k].startsWith('dir ')));
  return added.length > 0 && added.every((k) => dirs.has(k)) && Object.keys(base).every((k) => now[k] === base[k]);
}

function same(a: Record<string, string>, b: Record<string, string>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function mustSucceed(outcome: Promise<{ code: number; stderr: string[] }>, what: string): Promise<void> {
  const { code, stderr } = await outcome;
  if (code !== 0) throw new Error(`${what} failed (exit ${code}): ${stderr.join(' ')}`);
}
