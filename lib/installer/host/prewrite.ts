/**
 * The checks before a run's first write to the host, so that what cannot succeed is refused with nothing
 * changed: every directory the run writes into (or creates a directory in) is writable — not read-only, not
 * immutable, not denied by SELinux (access(2) W_OK asks the kernel exactly that, as root: mode bits do not
 * stop root, those do) —, no file it replaces is immutable or a mount point (a file bind-mounted in place
 * cannot be replaced by rename), there is room for it (host/space.ts), and, right before the first write, no
 * config it replaces has changed since the run read it to plan.
 */
import * as fs from 'fs';
import * as path from 'path';
import { InstallerError } from '../errors';
import type { Plan } from '../plan/plan';
import { isConfigRole } from '../plan/state';
import { errnoOf } from './errors';
import { ConcurrentChange, HostFs } from './fs';
import { checkSpace, PlannedWrite, PlannedWrites } from './space';

/** Stands for the pre-flight's candidate beside a config (runtime/loader.ts): room for it, never named. */
const CANDIDATE = '.knawd-preflight-candidate';

/** What a run will do to the host: the writes (host/space.ts) and the files it deletes. */
export interface HostChanges extends PlannedWrites {
  readonly removes: readonly string[];
}

/**
 * The host changes of a plan: its file writes and deletes, its new directories, the state file (written as an
 * intent and again at the end, `stateBytes` at most) and the pre-flight's candidate beside each config written.
 */
export function changesOf(plan: Plan, statePath: string, stateBytes: number): HostChanges {
  const files: PlannedWrite[] = [{ path: statePath, bytes: stateBytes }];
  const removes: string[] = [];
  for (const op of plan.ops) {
    if (op.after === null) removes.push(op.path);
    else {
      const bytes = Buffer.isBuffer(op.after) ? op.after.length : op.after.size;
      files.push({ path: op.path, bytes });
      if (isConfigRole(op.role)) files.push({ path: `${path.posix.dirname(op.path)}/${CANDIDATE}`, bytes });
    }
  }
  return { files, dirs: plan.mkdirs, removes };
}

/** Throws, naming the path, what the run needs there and what is there, unless the host can take `changes`. */
export function checkHostTakes(host: HostFs, changes: HostChanges, selinux: boolean): void {
  const created = new Set(changes.dirs);
  const targets = [...changes.files.map((f) => f.path), ...changes.removes];
  const byDir = new Map<string, string[]>();
  const add = (dir: string, name: string): void => {
    // Inside a directory this run creates, the question is whether the first existing ancestor takes it.
    let d = dir;
    while (created.has(d)) d = path.posix.dirname(d);
    byDir.set(d, [...(byDir.get(d) ?? []), name]);
  };
  for (const file of targets) add(path.posix.dirname(file), path.posix.basename(file));
  for (const dir of changes.dirs) add(path.posix.dirname(dir), `${path.posix.basename(dir)}/`);
  for (const [dir, names] of byDir) {
    const problem = writeProblem(host.local(dir), selinux);
    if (!problem) continue;
    const shown = [...new Set(names)].filter((n) => n !== CANDIDATE);
    const listed = shown.length > 4 ? `${shown.slice(0, 4).join(', ')} and ${shown.length - 4} more` : shown.join(', ') || 'a file';
    throw new InstallerError(`${dir} on the node is not writable (${problem.why}): this run writes ${listed} there; nothing was changed`, problem.fix(dir));
  }
  const mounts = mountPoints();
  for (const file of targets) {
    const local = host.local(file);
    const st = fs.statSync(local, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.dev !== fs.statSync(path.dirname(local)).dev || mounts.has(local)) {
      throw new InstallerError(
        `${file} on the node is a mount point (a file mounted in place): it cannot be replaced by rename, and the installer never writes it in place; nothing was changed`,
        'edit the file where it is mounted from, or unmount it, then run again',
      );
    }
    const code = accessCode(local);
    if (code === 'EPERM') {
      throw new InstallerError(`${file} on the node is immutable or append-only (chattr +i / +a): this run must replace it; nothing was changed`, `clear the attribute (lsattr ${file}; chattr -i ${file}), then run again`);
    }
  }
  checkSpace(host, changes);
}

/** Right before the first write: each config the plan replaces still holds what the plan read. */
export function checkConfigsUnchanged(host: HostFs, plan: Plan): void {
  for (const op of plan.ops) {
    if (!isConfigRole(op.role) || (op.before !== undefined && !Buffer.isBuffer(op.before))) continue;
    try {
      host.checkUnchanged(op.path, op.before ?? null);
    } catch (error) {
      if (!(error instanceof ConcurrentChange)) throw error;
      throw new ConcurrentChange(`${op.path} changed on the node since this run read it to plan (another writer); nothing was changed`, 'run the same command again once the other writer is done');
    }
  }
}

/**
 * The mount points this process sees (/proc/self/mountinfo, field 5, octal escapes undone): a file bind-mounted
 * from the same file system has the st_dev of its directory, so only the mount table tells.
 */
function mountPoints(): Set<string> {
  let text = '';
  try {
    text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return new Set();
  }
  return new Set(text.split('\n').filter(Boolean).map((line) => line.split(' ')[4].replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)))));
}

interface WriteProblem {
  readonly why: string;
  readonly fix: (dir: string) => string;
}

function writeProblem(local: string, selinux: boolean): WriteProblem | undefined {
  switch (accessCode(local)) {
    case undefined:
    case 'ENOENT':
      return undefined;
    case 'EROFS':
      return { why: 'a read-only file system', fix: (dir) => `remount ${dir} read-write, or choose a --prefix on a writable file system (e.g. /var/opt/knawd on an image-based OS), then run again` };
    case 'EPERM':
      return { why: 'immutable or append-only: chattr +i / +a', fix: (dir) => `clear the attribute (lsattr -d ${dir}; chattr -i ${dir}), then run again` };
    case 'EACCES':
      return selinux
        ? { why: 'SELinux denies it', fix: () => 'look at the denial (ausearch -m avc -ts recent on the node) and allow it, then run again' }
        : { why: 'permission denied', fix: () => 'run the installer as root in a privileged pod (the chart does), then run again' };
    default:
      return { why: 'it cannot be written', fix: (dir) => `check ${dir} on the node, then run again` };
  }
}

/** The errno access(W_OK) gives, undefined when writable; a busy executable is replaced by rename, so fine. */
function accessCode(local: string): string | undefined {
  try {
    fs.accessSync(local, fs.constants.W_OK);
    return undefined;
  } catch (error) {
    const code = errnoOf(error);
    return code === 'ETXTBSY' ? undefined : (code ?? 'EUNKNOWN');
  }
}
