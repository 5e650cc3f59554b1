/**
 * SELinux on the node: whether it is enabled, and labelling our files like the host's own runtime binaries
 * and configs (a rename carries the temp file's label, a copied binary the image's).
 */
import { InstallerError, oneLine } from '../errors';
import { CommandRunner, IN_HOST } from './commands';
import { commandProblem } from './errors';
import { HostFs } from './fs';

/** Bound for one labelling command. */
const LABEL_TIMEOUT_MS = 30_000;

/**
 * SELinux counts as enabled when selinuxfs is mounted on the node (`/sys/fs/selinux/enforce` exists, whether
 * enforcing or permissive: labels must be right before anyone switches to enforcing), or, where /sys is not
 * visible, when /etc/selinux/config says SELINUX=enforcing or permissive.
 */
export function selinuxEnabled(fs: HostFs): boolean {
  if (fs.stat('/sys/fs/selinux/enforce')?.kind === 'file') return true;
  const config = fs.stat('/etc/selinux/config')?.kind === 'file' ? fs.read('/etc/selinux/config')?.toString('utf8') : undefined;
  return /^\s*SELINUX\s*=\s*(enforcing|permissive)\s*$/m.test(config ?? '');
}

/**
 * SELinux: the file label of the host's runc (crun on hosts without runc), found on the host's PATH, so our
 * binaries run in the same domain as the runtime the host already trusts.
 */
export async function findReferenceBinary(runner: CommandRunner): Promise<string> {
  const argv = [...IN_HOST, 'sh', '-c', 'command -v runc || command -v crun'];
  const result = await runner.run(argv, LABEL_TIMEOUT_MS);
  const found = result.stdout.trim().split('\n')[0];
  if (result.code === -1 || result.code === 127) throw commandProblem(argv, result, LABEL_TIMEOUT_MS) ?? new InstallerError(`cannot run a shell on the node: ${oneLine(result.stderr).slice(0, 300)}`, 'check that the installer pod runs with hostPID and privileged');
  if (result.code !== 0 || !found.startsWith('/')) {
    throw new InstallerError(
      'SELinux is enabled on the node but neither runc nor crun was found on its PATH to copy the file label from',
      'install the distribution\'s runc (or label the files by hand: chcon -t container_runtime_exec_t <prefix>/bin/* <prefix>/libexec/*)',
    );
  }
  return found;
}

/** Host paths of the x86-64 dynamic loader and libc, by distribution layout (RHEL/Fedora first, then Debian/Ubuntu). */
const HOST_LOADERS = ['/usr/lib64/ld-linux-x86-64.so.2', '/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'];
const HOST_LIBCS = ['/usr/lib64/libc.so.6', '/lib64/libc.so.6', '/usr/lib/x86_64-linux-gnu/libc.so.6', '/lib/x86_64-linux-gnu/libc.so.6'];

/**
 * The host's own loader and libc, whose labels our build's loader and libraries copy: they are mapped executable
 * by crun (running in the runtime's domain), which the policy allows for the host's library types (ld_so_t,
 * lib_t), not for what a file under /opt or /var gets by default.
 */
export function findReferenceLibraries(fs: HostFs): { loader?: string; library?: string } {
  const first = (paths: readonly string[]) => paths.find((p) => fs.stat(p)?.kind === 'file');
  return { loader: first(HOST_LOADERS), library: first(HOST_LIBCS) };
}

export async function labelLike(runner: CommandRunner, reference: string, hostPaths: readonly string[]): Promise<void> {
  for (const file of hostPaths) {
    const argv = [...IN_HOST, 'chcon', `--reference=${reference}`, file];
    const result = await runner.run(argv, LABEL_TIMEOUT_MS);
    if (result.code !== 0) {
      throw commandProblem(argv, result, LABEL_TIMEOUT_MS) ?? new InstallerError(`chcon --reference=${reference} ${file} failed: ${oneLine(result.stderr).slice(0, 300)}`, 'check SELinux on the node (`getenforce`, `ls -Z`)');
    }
  }
}

/** Gives rewritten config files the label the policy wants for their path (a rename carries the temp file's). */
export async function restoreLabels(runner: CommandRunner, hostPaths: readonly string[]): Promise<void> {
  if (hostPaths.length === 0) return;
  const argv = [...IN_HOST, 'restorecon', ...hostPaths];
  const result = await runner.run(argv, LABEL_TIMEOUT_MS);
  if (result.code !== 0) {
    throw commandProblem(argv, result, LABEL_TIMEOUT_MS) ?? new InstallerError(`restorecon ${hostPaths.join(' ')} failed: ${oneLine(result.stderr).slice(0, 300)}`, 'check SELinux on the node (`ls -Z` on the file)');
  }
}
