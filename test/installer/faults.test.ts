/**
 * Issue 19's fault matrix (faults/matrix.ts): every case on a real file system made for it, injected before the
 * run and before every write of install and remove where it applies. For each: one clear line and the right
 * exit code, a host that is byte-identical, completed or resumable (never damaged), a `status` that tells
 * that truth, and a next install / remove that converge. `npm run bench` prints the same figures.
 */
import { runMatrixChild } from './faults/child';
import { CaseResult, FAULT_KINDS } from './faults/matrix';

jest.setTimeout(15 * 60_000);

let results: readonly CaseResult[] = [];

beforeAll(() => {
  results = runMatrixChild().results;
});

const name = (c: CaseResult): string => `${c.command} ${c.kind} ${c.at}`;

describe('the fault matrix', () => {
  test('covers every fault kind, before the run and at the write points of install and remove', () => {
    expect(new Set(results.map((c) => c.kind))).toEqual(new Set(FAULT_KINDS));
    for (const command of ['install', 'remove'] as const) {
      expect(results.filter((c) => c.command === command && c.at === 'before the run').length).toBeGreaterThan(4);
      expect(results.filter((c) => c.command === command && c.at.startsWith('before #')).length).toBeGreaterThan(30);
    }
  });

  test('every case: one clear line naming host paths, the right exit code', () => {
    const unclear = results.filter((c) => !c.clearLine).map((c) => `${name(c)}: ${c.problems.join('; ')}`);
    expect(unclear).toEqual([]);
  });

  test('every case: the host is byte-identical, completed or resumable, and status tells which', () => {
    expect(results.filter((c) => c.host === 'damaged').map(name)).toEqual([]);
    expect(results.filter((c) => !c.statusTruthful).map((c) => `${name(c)}: ${c.problems.join('; ')}`)).toEqual([]);
  });

  test('every case: after the fault is lifted the next install converges and remove restores the original', () => {
    expect(results.filter((c) => !c.converged).map((c) => `${name(c)}: ${c.problems.join('; ')}`)).toEqual([]);
  });

  test('refused before the first write, nothing changed: space, inodes, read-only, immutable, a mounted file, a config edited meanwhile', () => {
    const before = results.filter((c) => c.at === 'before the run' && !['nsenter-missing', 'systemctl-missing', 'restart-timeout'].includes(c.kind));
    expect(before.filter((c) => c.host !== 'identical' || c.code !== 1).map(name)).toEqual([]);
    for (const c of before) expect(c.stderr[0]).toMatch(/nothing was changed/);
    const space = before.find((c) => c.kind === 'space' && c.stderr[0].includes('/opt/knawd'));
    expect(space?.stderr[0]).toMatch(/not enough free space on the file system of \/opt\/knawd: this run writes 6 files and 5 directories there, needing [\d.]+ KiB and 11 inodes; 0 B and \d+ inodes are free; nothing was changed/);
  });

  test('a first install that meets a full disk or a concurrent writer while writing takes its writes back', () => {
    // The last write records the verified install after the restart: the runtime has read it, it is finished instead.
    const index = (c: CaseResult): number => Number(/#(\d+)/.exec(c.at)?.[1] ?? -1);
    const last = Math.max(...results.filter((c) => c.command === 'install').map(index));
    const midway = results.filter((c) => c.command === 'install' && index(c) >= 0 && index(c) < last && ['space', 'inodes', 'concurrent-writer'].includes(c.kind) && c.code === 1);
    expect(midway.length).toBeGreaterThan(20);
    expect(midway.filter((c) => c.host !== 'identical').map(name)).toEqual([]);
    const writer = midway.find((c) => c.kind === 'concurrent-writer' && c.at.includes('config.toml'));
    expect(writer?.stderr[0]).toMatch(/\/etc\/containerd\/config.toml was changed by another writer while this run was going on .*it was left as that writer left it; what this run had written was taken back/);
  });
});
