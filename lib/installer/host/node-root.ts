/** The one check every command makes before it reads or writes the node. */
import { InstallerError } from '../errors';
import { HostFs } from './fs';

/** The node root must be an existing directory that looks like a root file system (etc/; run/ for the lock). */
export function checkNodeRoot(fs: HostFs): void {
  const root = fs.stat('/');
  if (root?.kind !== 'dir') {
    throw new InstallerError(`node root ${fs.nodeRoot} does not exist or is not a directory`, "mount the host's / there (hostPath /) or pass --node-root");
  }
  for (const dir of ['etc', 'run']) {
    if (fs.stat(`/${dir}`)?.kind !== 'dir') {
      throw new InstallerError(`node root ${fs.nodeRoot} has no ${dir}/ directory: it is not a host's root file system`, "mount the host's / there (hostPath /) or pass --node-root");
    }
  }
}
