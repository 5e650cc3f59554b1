/**
 * Issue 19's fault matrix as figures: the same cases as test/installer/faults.test.ts (a small tmpfs or bind
 * mount per case, each fault before the run and before every write of install and remove where it applies).
 */
import { runMatrixChild } from '../installer/faults/child';
import { BenchResult } from './measure';

export function benchFaults(): BenchResult[] {
  const { results, wallMs } = runMatrixChild();
  const tried = results.length;
  const whole = results.filter((c) => c.host === 'identical' || c.host === 'completed').length;
  const resumed = results.filter((c) => c.host === 'resumable' && c.statusTruthful && c.converged).length;
  const clear = results.filter((c) => c.clearLine).length;
  return [
    { name: 'faults: cases tried', value: tried, unit: '' },
    { name: 'faults: host byte-identical or completed', value: whole, unit: '' },
    // The rest must be resumable: recorded, reported as unfinished by status, and completed by the next run.
    { name: 'faults: the others resumable, then converged (target: all)', value: resumed, unit: '', target: tried - whole, pass: whole + resumed === tried && results.every((c) => c.converged && c.statusTruthful) },
    { name: 'faults: one clear line, right exit code', value: clear, unit: '', target: tried, pass: clear === tried },
    { name: 'faults: matrix wall time', value: wallMs, unit: 'ms' },
  ];
}
