/**
 * The installer's host commands against a temp node root: lib's {@link LibChrootRunner} (what `--host-exec
 * chroot` uses) with every call recorded, and host commands that cannot run on a node root (systemctl: no
 * systemd there) answered by `answer` instead. {@link installHostBinary} puts a real binary, with the shared
 * libraries it needs, into the node root, so the node's own binaries resolve every path as on a node.
 */
import { execFileSync } from 'child_process';
import { copyFileSync, existsSync, linkSync, mkdirSync, realpathSync } from 'fs';
import { dirname, join } from 'path';
import { ChildProcessRunner, ChrootRunner as LibChrootRunner, CommandResult, CommandRunner, IN_HOST } from '../../lib/installer/host/commands';

export class ChrootRunner implements CommandRunner {
  readonly calls: string[][] = [];
  private readonly chroot: LibChrootRunner;

  constructor(
    nodeRoot: string,
    /** Answers for host commands that are not to be run (systemctl on a node root without systemd). */
    private readonly answer: (argv: readonly string[]) => Partial<CommandResult> | undefined = () => undefined,
  ) {
    this.chroot = new LibChrootRunner(nodeRoot, new ChildProcessRunner());
  }

  async run(argv: readonly string[], timeoutMs: number): Promise<CommandResult> {
    this.calls.push([...argv]);
    const inHost = IN_HOST.every((part, i) => argv[i] === part);
    const canned = this.answer(argv);
    if (!inHost || canned) return { code: 0, stdout: '', stderr: '', ...canned };
    return this.chroot.run(argv, timeoutMs);
  }
}

/**
 * Puts `binary` at `hostPath` in the node root (a hard link when on the same file system), with every shared
 * library `ldd` names and the dynamic loader: enough for it to run under chroot.
 */
export function installHostBinary(nodeRoot: string, hostPath: string, binary: string): void {
  const place = (from: string, to: string): void => {
    const source = realpathSync(from);
    const target = join(nodeRoot, to);
    if (existsSync(target)) return;
    mkdirSync(dirname(target), { recursive: true });
    try {
      linkSync(source, target);
    } catch {
      copyFileSync(source, target);
    }
  };
  place(binary, hostPath);
  let ldd = '';
  try {
    ldd = execFileSync('ldd', [binary], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return; // "not a dynamic executable": static
  }
  for (const match of ldd.matchAll(/(?:=>\s*)?(\/\S+)\s+\(0x/g)) {
    place(match[1], match[1]);
  }
}
