/**
 * The read side of the host for planning: a {@link HostView} over the node root, and the installer state as
 * stored on the node.
 */
import { coarseTimestamps, HostFs, sameFingerprint } from '../host/fs';
import { HostView } from './plan';
import { InstallState, parseState, serializeState, statePath } from './state';

/**
 * The planning view of the host. Reads are cached for the view's life (planning never writes, so each
 * config is read once per run however many steps look at it). `digest` trusts a record's fingerprint only
 * while the file's stat still matches it exactly (size, mtime, ctime, inode, mode: any write, chmod, label
 * change or utimes() moves ctime, which cannot be set back). On a file system with whole-second timestamps a
 * file rewritten within the same second keeps its stat, so there the fingerprint is trusted only when the
 * file last changed strictly before `stateWrittenMs` (the state file's mtime; git's "racily clean" rule).
 * Without a state file (a state discovered in this run) the fingerprints were taken by this run just now.
 */
export function hostView(fs: HostFs, stateWrittenMs?: number): HostView {
  const reads = new Map<string, Buffer | undefined>();
  const read = (p: string): Buffer | undefined => {
    if (!reads.has(p)) reads.set(p, fs.read(p));
    return reads.get(p);
  };
  return {
    read,
    readText: (p) => read(p)?.toString('utf8'),
    digest: (p, known) => {
      if (known?.stat) {
        const now = fs.fingerprint(p);
        if (now && sameFingerprint(now, known.stat)) {
          const settled = !coarseTimestamps(now) || stateWrittenMs === undefined || Math.max(now.mtimeMs, now.ctimeMs) < stateWrittenMs;
          if (settled) return { sha256: known.sha256, size: now.size, fingerprint: now };
        }
      }
      return fs.digest(p);
    },
    list: (p) => (fs.stat(p)?.kind === 'dir' ? fs.list(p) : undefined),
    isDir: (p) => fs.stat(p)?.kind === 'dir',
    mode: (p) => fs.stat(p)?.mode,
  };
}

/** The state and the view to plan against it (fingerprints checked against the state file's mtime). */
export function loadPlanning(fs: HostFs, prefix: string): { recorded: InstallState | undefined; view: HostView } {
  const recorded = loadState(fs, prefix);
  return { recorded, view: hostView(fs, recorded ? fs.fingerprint(statePath(prefix))?.mtimeMs : undefined) };
}

export function loadState(fs: HostFs, prefix: string): InstallState | undefined {
  const data = fs.read(statePath(prefix));
  return data === undefined ? undefined : parseState(data, statePath(prefix));
}

/** Writes the state only when its bytes differ, so an unchanged install writes nothing. */
export function saveState(fs: HostFs, state: InstallState): void {
  const data = serializeState(state);
  const current = fs.read(statePath(state.prefix));
  if (current === undefined || !current.equals(data)) fs.writeFile(statePath(state.prefix), data, 0o600);
}

