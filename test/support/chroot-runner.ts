/**
 * Runs the installer's host commands (`nsenter -t 1 -m -- <argv>`) inside a temp node root with chroot, so that
 * the node's own binaries resolve every path exactly as they would on the node: the test's stand-in for
 * entering PID 1's mount namespace, which a temp directory does not have. Every call is recorded; commands that
 * are not host commands, and host commands `answer` takes, are answered like a RecordingRunner.
 */
import { copyFileSync, linkSync, mkdirSync, realpathSync } from 'fs';
import { dirname, join } from 'path';
import { ChildProcessRunner, CommandResult, CommandRunner, IN_HOST } from '../../lib/installer/host/commands';

export class ChrootRunner implements CommandRunner {
  readonly calls: string[][] = [];
  private readonly real = new ChildProcessRunner();

  constructor(
    private readonly nodeRoot: string,
    /** Answers for host commands that are not to be run (systemctl on a node root without systemd). */
    private readonly answer: (argv: readonly string[]) => Partial<CommandResult> | undefined = () => undefined,
  ) {}

  async run(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
    this.calls.push([...argv]);
    const inHost = IN_HOST.every((part, i) => argv[i] === part);
    const canned = this.answer(argv);
    if (!inHost || canned) return { code: 0, stdout: '', stderr: '', ...canned };
    return this.real.run(['chroot', this.nodeRoot, ...argv.slice(IN_HOST.length)], timeoutMs);
  }
}

/**
 * Puts a copy of `binary` (a hard link when on the same file system) at `hostPath` in the node root, with the
 * dynamic loader and libc it needs when it is not static: enough for the binary to run under chroot.
 */
export function installHostBinary(nodeRoot: string, hostPath: string, binary: string): void {
  const place = (from: string, to: string): void => {
    const source = realpathSync(from);
    mkdirSync(dirname(join(nodeRoot, to)), { recursive: true });
    try {
      linkSync(source, join(nodeRoot, to));
    } catch {
      copyFileSync(source, join(nodeRoot, to));
    }
  };
  place(binary, hostPath);
  for (const lib of ['/lib64/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/libc.so.6']) place(lib, lib);
}
