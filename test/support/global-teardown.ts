/** jest's global teardown: removes the run's directory that global-setup.ts made. */
import { rmSync } from 'node:fs';
import { RUN_DIR_ENV } from '../../demo/cluster/run-scope';

export default function globalTeardown(): void {
  const dir = process.env[RUN_DIR_ENV];
  if (dir) rmSync(dir, { recursive: true, force: true });
}
