import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';

export const REPO = join(__dirname, '..', '..');

/** A tool provisioned by `npm run tools`; a missing one fails the test with what to do. */
export function toolPath(name: string): string {
  const path = join(REPO, '.tools', 'bin', name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run \`npm run tools\` (tools/install-tools.sh) first`);
  return path;
}

/** A command from the machine's PATH (Debian packages that `npm run tools` installs). */
export function systemTool(name: string): string {
  try {
    return execFileSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim();
  } catch {
    throw new Error(`${name} is not on PATH: run \`npm run tools\` (tools/install-tools.sh) first`);
  }
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command and returns its exit code and output instead of throwing. */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): RunResult {
  try {
    const stdout = execFileSync(command, args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...options });
    return { code: 0, stdout, stderr: '' };
  } catch (e: any) {
    if (typeof e.status !== 'number') throw e;
    return { code: e.status, stdout: String(e.stdout ?? ''), stderr: String(e.stderr ?? '') };
  }
}

/** Runs openssl in `dir`; a failure throws with openssl's own complaint. */
export function openssl(dir: string, args: string[]): void {
  try {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (error) {
    const e = error as { stderr?: Buffer; message: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`);
  }
}

/** The installer CLI as the image carries it: lib/installer/main.ts bundled by esbuild into one file. */
export function bundleInstaller(outfile: string): string {
  buildSync({ entryPoints: [join(REPO, 'lib/installer/main.ts')], bundle: true, platform: 'node', target: 'node20', outfile, logLevel: 'warning' });
  return outfile;
}

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
