import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { synthAll } from '../charts-src/main';
import { pinnedVersions, SUPPORT_MATRIX_PAGE, withSupportMatrix } from '../charts-src/support-matrix';
import { manifestVariants } from '../lib/render/manifests';
import { readTree } from './support/tree';

const DIST = join(__dirname, '..', 'dist');

test('dist/ is current: a fresh synth produces exactly the committed files', () => {
  const out = mkdtempSync(join(tmpdir(), 'knawd-dist-'));
  try {
    synthAll(out);
    const fresh = readTree(out);
    const committed = readTree(DIST);
    expect(Object.keys(committed)).toEqual(Object.keys(fresh));
    for (const [path, content] of Object.entries(fresh)) {
      if (committed[path] !== content) throw new Error(`dist/${path} is stale: run \`npm run synth\` and commit dist/`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('synth is deterministic byte for byte', () => {
  const a = mkdtempSync(join(tmpdir(), 'knawd-dist-a-'));
  const b = mkdtempSync(join(tmpdir(), 'knawd-dist-b-'));
  try {
    synthAll(a);
    synthAll(b);
    expect(readTree(a)).toEqual(readTree(b));
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('there is an install and an uninstall manifest for every shipped pair and for auto with and without the SCC, the Knative file, and nothing else', () => {
  const files = Object.keys(readTree(join(DIST, 'manifests'))).sort();
  expect(files).toEqual(expect.arrayContaining(['auto/crun-wasmtime.yaml', 'auto-openshift/crun-wasmtime.yaml', 'auto/crun-wasmedge.uninstall.yaml', 'auto-openshift/crun-wasmedge.uninstall.yaml']));
  const expected = manifestVariants()
    .flatMap(({ dir, props }) => [`${dir}/${props.ociType}.yaml`, `${dir}/${props.ociType}.uninstall.yaml`])
    .concat('knative.yaml', 'node-restriction.yaml')
    .sort();
  expect(files).toEqual(expected);
});

test(`${SUPPORT_MATRIX_PAGE} carries the current support matrix, and README.md links to it`, () => {
  const page = readFileSync(join(__dirname, '..', SUPPORT_MATRIX_PAGE), 'utf8');
  expect(withSupportMatrix(page, pinnedVersions(join(__dirname, '..')))).toBe(page);
  expect(readFileSync(join(__dirname, '..', 'README.md'), 'utf8')).toContain(`](${SUPPORT_MATRIX_PAGE})`);
});
