/**
 * Runs the fault matrix (matrix.ts) in a child process with a mount namespace of its own, bundled with esbuild
 * like the installer: for the test (faults.test.ts) and for `npm run bench` (the same cases, the same figures).
 */
import { spawnSync } from 'child_process';
import { buildSync } from 'esbuild';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import type { CaseResult } from './matrix';

export interface MatrixRun {
  readonly results: readonly CaseResult[];
  readonly wallMs: number;
}

/** Builds and runs the matrix; throws with the reason when it cannot run (not root, no mount, no chattr). */
export function runMatrixChild(limit?: number): MatrixRun {
  if (process.getuid?.() !== 0) throw new Error('the fault matrix needs root (it mounts tmpfs file systems and uses chattr)');
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'knawd-faults-'));
  try {
    const bundle = path.join(work, 'faults.js');
    // The test helpers find their fixtures from test/installer (support.ts's own directory), wherever the bundle is.
    const define = { __dirname: JSON.stringify(path.join(__dirname, '..')) };
    buildSync({ entryPoints: [path.join(__dirname, 'main.ts')], bundle: true, platform: 'node', target: 'node20', outfile: bundle, logLevel: 'warning', define });
    const started = Date.now();
    const child = spawnSync('unshare', ['--mount', '--propagation', 'private', process.execPath, bundle, work, ...(limit ? [String(limit)] : [])], {
      encoding: 'utf8',
      env: { ...process.env, TMPDIR: work },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 15 * 60_000,
    });
    const wallMs = Date.now() - started;
    if (child.status !== 0) throw new Error(`the fault matrix did not run (exit ${child.status}${child.signal ? `, ${child.signal}` : ''}): ${child.stderr || child.error?.message}`);
    return { results: JSON.parse(child.stdout) as CaseResult[], wallMs };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
