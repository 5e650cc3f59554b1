/**
 * The real containerd binaries the config tests check patched files with. `npm run tools` provides both;
 * a missing one fails the test that needs it, so a green run always means "checked by containerd".
 */
import { execFileSync } from 'child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join, resolve } from 'path';

/** The containerds the tests load configs with: 1 = Debian's 1.6, 2 = the 2.2 build, '2.3' = the 2.3 build (config version 4). */
export type ContainerdMajor = 1 | 2;
export type ContainerdReader = ContainerdMajor | '2.3';

const REPO = resolve(__dirname, '..', '..');

const BINARIES: Record<ContainerdReader, { path: string; provides: string }> = {
  1: { path: '/usr/bin/containerd', provides: "Debian's containerd 1.6 package" },
  2: { path: join(REPO, '.tools', 'bin', 'containerd'), provides: 'the containerd 2.2 build (CONTAINERD_VERSION)' },
  '2.3': { path: join(REPO, '.tools', 'containerd-v4', 'bin', 'containerd'), provides: 'the containerd 2.3 build (CONTAINERD_V4_VERSION)' },
};

/** Path of that containerd binary; throws (failing the test) when it is missing. */
export function containerdBinary(reader: ContainerdReader): string {
  const { path, provides } = BINARIES[reader];
  if (!existsSync(path)) {
    throw new Error(`containerd ${reader === '2.3' ? '2.3' : `${reader}.x`} not found at ${path} (${provides}); run \`npm run tools\` to install it`);
  }
  return path;
}

/**
 * What `containerd --config FILE config dump` prints for `configText`: containerd's own reading of the file,
 * migrated to the newest config version it knows. Throws with containerd's message when it rejects the file.
 */
export function containerdConfigDump(reader: ContainerdReader, configText: string): string {
  const binary = containerdBinary(reader);
  const dir = mkdtempSync(join(tmpdir(), 'knawd-containerd-'));
  try {
    const file = join(dir, 'config.toml');
    writeFileSync(file, configText);
    return execFileSync(binary, ['--config', file, 'config', 'dump'], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 30_000,
    });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr ?? '';
    throw new Error(`containerd ${reader} rejected the config: ${stderr.trim() || String(error)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
