/** jest's global setup: a directory of this test run, for demo/cluster/run-scope.ts (removed by global-teardown.ts). */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RUN_DIR_ENV } from '../../demo/cluster/run-scope';

export default function globalSetup(): void {
  process.env[RUN_DIR_ENV] = mkdtempSync(join(tmpdir(), 'knawd-test-run-'));
}
