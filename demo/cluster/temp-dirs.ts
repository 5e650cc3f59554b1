/**
 * Temp directories owned by the process that made them, so that a later run can sweep what a SIGKILLed one left
 * (the cluster harness's directories, network namespace bindings and cgroups are named after them).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const OWNER_FILE = 'owner.pid';

/** A fresh temp directory `<tmp>/<prefix>XXXXXX` that records this process as its owner, for {@link orphanedDirs}. */
export function ownedTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, OWNER_FILE), `${process.pid}\n`);
  return dir;
}

/** Keeps `dir` from ever being swept (KNAWD_KEEP_CLUSTER=1 and the like). */
export function disown(dir: string): void {
  rmSync(join(dir, OWNER_FILE), { force: true });
}

/**
 * Temp directories `<tmp>/<prefix>*` whose owning test process is gone (SIGKILLed before its teardown): what the
 * next run sweeps. A directory without an owner file (kept on purpose) is never one.
 */
export function orphanedDirs(prefix: string): string[] {
  return readdirSync(tmpdir())
    .filter((name) => name.startsWith(prefix))
    .map((name) => join(tmpdir(), name))
    .filter((dir) => {
      let owner: number;
      try {
        owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8').trim());
      } catch {
        return false;
      }
      if (!Number.isInteger(owner) || owner <= 0) return false;
      try {
        process.kill(owner, 0);
        return false;
      } catch (error) {
        return (error as NodeJS.ErrnoException).code === 'ESRCH';
      }
    });
}
