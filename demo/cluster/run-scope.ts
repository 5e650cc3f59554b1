/**
 * What one test run has already done. jest's global setup (test/support/global-setup.ts) names a directory of
 * the run in KNAWD_RUN_DIR, which its workers and their children inherit; work that every suite asks for but that
 * cannot change while one checkout is tested (the image build's warm check: ~4 s, more under load, in each of some
 * twenty suites) is then done by the first suite that needs it, once per run. Outside a test run nothing is kept.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const RUN_DIR_ENV = 'KNAWD_RUN_DIR';

function marker(step: string): string | undefined {
  const dir = process.env[RUN_DIR_ENV];
  return dir && existsSync(dir) ? join(dir, `${step}.done`) : undefined;
}

/** Whether `step` succeeded earlier in this test run (false outside one). */
export function doneInThisRun(step: string): boolean {
  const file = marker(step);
  return file !== undefined && existsSync(file);
}

/** Records that `step` succeeded in this test run (nothing outside one). */
export function markDoneInThisRun(step: string): void {
  const file = marker(step);
  if (file) writeFileSync(file, `${process.pid}\n`);
}
