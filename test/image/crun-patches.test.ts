/**
 * The form of our patches to crun (runtime-artifacts/crun-patches, applied by build-image.sh to both crun builds):
 * NNNN-short-name.patch, a first line saying what the patch fixes (so that it can be offered upstream), then a
 * unified diff -p1 against crun-<version>/ that changes files in place. Whether they apply and what they do is
 * proven by the image build and test/image/wasi-behaviour.test.ts.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../support/tools';

const DIR = join(REPO, 'runtime-artifacts', 'crun-patches');
const patches = readdirSync(DIR).sort();

test('the directory holds only NNNN-short-name.patch files, numbered without duplicates', () => {
  expect(patches.length).toBeGreaterThan(0);
  expect(patches.filter((p) => !/^\d{4}-[a-z0-9]+(-[a-z0-9]+)*\.patch$/.test(p))).toEqual([]);
  const numbers = patches.map((p) => p.slice(0, 4));
  expect(new Set(numbers).size).toBe(numbers.length);
});

test.each(patches)('%s opens with a line saying what it fixes, then a -p1 diff of existing files', (name) => {
  const lines = readFileSync(join(DIR, name), 'utf8').split('\n');
  // A sentence, not the start of the diff itself.
  expect(lines[0]).toMatch(/^(?!---|\+\+\+|@@|diff |Index:)\S.{20,}$/);
  const from = lines.filter((l) => l.startsWith('--- ')).map((l) => l.slice(4));
  const to = lines.filter((l) => l.startsWith('+++ ')).map((l) => l.slice(4));
  expect(from.length).toBeGreaterThan(0);
  expect(from.every((f) => /^a\/[\w./-]+$/.test(f))).toBe(true);
  expect(to).toEqual(from.map((f) => f.replace(/^a\//, 'b/')));
});
