import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

/** The installer CLI as the image carries it: lib/installer/main.ts bundled by esbuild into one file. */
export function bundleInstaller(outfile: string): string {
  buildSync({ entryPoints: [join(REPO, 'lib/installer/main.ts')], bundle: true, platform: 'node', target: 'node20', outfile, logLevel: 'warning' });
  return outfile;
}
