/**
 * Temp files a killed run left behind. Every write goes through `.<name>.knawd-tmp` beside its file (host/fs.ts);
 * a run killed between creating it and the rename (SIGKILL, OOM, node power loss), or a write whose clean-up
 * itself failed (the file system went read-only), leaves one. Nothing reads them, but they keep a directory we
 * created from being removed and the node from ending as it began, so install and remove take them away first.
 */
import { HostFs, isTempName } from './fs';

/** Removes the write temp files in each of `hostDirs` (those that exist). */
export function clearTempLeftovers(fs: HostFs, hostDirs: Iterable<string>): void {
  for (const dir of new Set(hostDirs)) {
    if (fs.stat(dir)?.kind !== 'dir') continue;
    for (const name of fs.list(dir) ?? []) {
      if (isTempName(name)) fs.removeFile(`${dir}/${name}`);
    }
  }
}
