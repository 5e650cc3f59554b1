/**
 * The fault matrix's child process (matrix.ts), started by test/installer/faults.test.ts and by the benchmark
 * as `unshare --mount --propagation private node <this, bundled> <work dir>`: every mount it makes dies with
 * its mount namespace. Prints the results as one JSON line.
 */
import { runFaultMatrix } from './matrix';

async function main(): Promise<void> {
  const [work, limit] = process.argv.slice(2);
  if (!work) throw new Error('usage: main <work dir> [limit]');
  const results = await runFaultMatrix({ work, limit: limit ? Number(limit) : undefined });
  process.stdout.write(`${JSON.stringify(results)}\n`);
}

main().catch((error: unknown) => {
  process.stderr.write(`fault matrix: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
});
