/**
 * What readelf says of a shipped ELF, for the image tests' hermeticity checks (test/image): its machine, PT_INTERP,
 * RUNPATH/RPATH, DT_NEEDED and the newest glibc symbol version it requires.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface ElfFacts {
  /** readelf's Machine line: `Advanced Micro Devices X86-64`, `AArch64`. */
  readonly machine: string;
  readonly interp?: string;
  readonly runpath?: string;
  readonly rpath?: string;
  readonly needed: readonly string[];
  readonly maxGlibc?: number[];
}

/** Every regular file under `dir`, recursively. */
export function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
}

export function isElf(file: string): boolean {
  return readFileSync(file).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
}

export function elfFacts(file: string): ElfFacts {
  const readelf = (flag: string): string => execFileSync('readelf', [flag, file], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const header = readelf('-hW');
  const headers = readelf('-lW');
  const dynamic = readelf('-dW');
  const versions = readelf('-VW');
  const machine = /Machine:\s+(.*)/.exec(header)?.[1].trim() ?? '';
  const interp = /Requesting program interpreter: (.*)\]/.exec(headers)?.[1];
  const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]);
  const runpath = /\(RUNPATH\)\s+Library runpath: \[(.*)\]/.exec(dynamic)?.[1];
  const rpath = /\(RPATH\)\s+Library rpath: \[(.*)\]/.exec(dynamic)?.[1];
  // Versions this file requires (the .gnu.version_r section), not the ones it defines.
  const required = versions.split(/Version needs section/)[1] ?? '';
  const glibc = [...required.matchAll(/Name: GLIBC_(\d+)\.(\d+)/g)].map((m) => [Number(m[1]), Number(m[2])]);
  const maxGlibc = glibc.sort((a, b) => b[0] - a[0] || b[1] - a[1])[0];
  return { machine, interp, runpath, rpath, needed, maxGlibc };
}
