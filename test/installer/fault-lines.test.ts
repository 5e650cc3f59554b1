/**
 * The one line each effect fault gets (host/errors.ts), for the faults the matrix (faults.test.ts) cannot make
 * on this machine: EDQUOT (no quotas here), EACCES from SELinux (no SELinux here), ETXTBSY, EIO, EXDEV. The
 * errors are the Node.js system errors those syscalls give (code, syscall, path); the host commands' failures
 * are the real runners' own results.
 */
import * as path from 'path';
import { ChildProcessRunner, ChrootRunner } from '../../lib/installer/host/commands';
import { CommandCannotRun, commandProblem, effectError } from '../../lib/installer/host/errors';
import { InstallerError } from '../../lib/installer/errors';
import { makeRoot } from './support';

function sysError(code: string, syscall: string, local: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: some text, ${syscall} '${local}'`), { code, syscall, path: local, errno: -1 });
}

describe('file-system faults: one line naming the host path, with a fix', () => {
  const root = makeRoot();
  const context = { op: 'write' as const, hostPath: '/opt/knawd/lib/libwasmtime.so', nodeRoot: root };

  test.each([
    ['EDQUOT', /^disk quota exceeded on the file system of \/opt\/knawd\/lib while writing \/opt\/knawd\/lib\/libwasmtime.so$/, /quota/],
    ['ETXTBSY', /^\/opt\/knawd\/lib\/libwasmtime.so is a program being executed: writing .* failed \(text file busy\)$/, /wait until/],
    ['EIO', /^I\/O error writing \/opt\/knawd\/lib\/libwasmtime.so: the disk holding \/opt\/knawd\/lib reports errors$/, /dmesg/],
    ['EXDEV', /^\/opt\/knawd\/lib\/libwasmtime.so is a mount point .* cannot be replaced by rename/, /unmount/],
    ['EBUSY', /^\/opt\/knawd\/lib\/libwasmtime.so is a mount point/, /unmount/],
    ['EACCES', /^permission denied writing \/opt\/knawd\/lib\/libwasmtime.so: the installer is not root/, /privileged/],
  ])('%s', (code, message, fix) => {
    const mapped = effectError(sysError(code, 'open', path.join(root, context.hostPath)), context);
    expect(mapped).toBeInstanceOf(InstallerError);
    expect((mapped as InstallerError).message).toMatch(message);
    expect((mapped as InstallerError).message).not.toContain(root);
    expect((mapped as InstallerError).fix).toMatch(fix);
  });

  test('EACCES on a node with SELinux names the denial and where to see it', () => {
    const selinux = makeRoot({ '/sys/fs/selinux/enforce': '1' });
    const mapped = effectError(sysError('EACCES', 'rename', '/x'), { ...context, nodeRoot: selinux }) as InstallerError;
    expect(mapped.message).toBe('permission denied writing /opt/knawd/lib/libwasmtime.so: SELinux denies it (root cannot write there under the node\'s policy)');
    expect(mapped.fix).toMatch(/ausearch -m avc/);
  });

  test('what no mapping knows stays itself (the CLI calls it unexpected)', () => {
    const error = sysError('ENFILE', 'open', '/x');
    expect(effectError(error, context)).toBe(error);
    expect(effectError(new Error('not a system error'), context)).toBeInstanceOf(Error);
  });

});

describe('host commands that cannot run: one line saying which and why', () => {
  test('a program missing from the installer image (a real spawn failure)', async () => {
    const argv = ['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'containerd'];
    const result = await new ChildProcessRunner().run(['/nonexistent/nsenter', ...argv.slice(1)], 5000);
    const problem = commandProblem(argv, result, 120_000);
    expect(problem).toBeInstanceOf(CommandCannotRun);
    expect(problem?.message).toBe('nsenter is not in the installer image, so no command can be run on the host');
  });

  test('systemctl missing on the node (chroot into a node root without it: the real chroot message)', async () => {
    const root = makeRoot();
    const argv = ['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'containerd'];
    const result = await new ChrootRunner(root).run(argv, 5000);
    expect(result.code).toBe(127);
    const problem = commandProblem(argv, result, 120_000);
    expect(problem).toBeInstanceOf(CommandCannotRun);
    expect(problem?.message).toBe('systemctl is not on the node: the installer restarts the runtime through systemd and cannot on this node');
    expect(problem?.fix).toMatch(/--restart none/);
  });

  test('a command that hangs is killed at its bound and said to', async () => {
    const argv = ['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'containerd'];
    const result = await new ChildProcessRunner().run(['sleep', '5'], 200);
    const problem = commandProblem(argv, result, 120_000);
    expect(problem).not.toBeInstanceOf(CommandCannotRun);
    expect(problem?.message).toBe('`systemctl restart containerd` on the node did not finish within 120 s and was stopped');
  });

  test('an ordinary failure is left to the caller (it says what the command printed)', () => {
    expect(commandProblem(['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', 'x'], { code: 1, stdout: '', stderr: 'Job failed' }, 1000)).toBeUndefined();
  });
});
