/**
 * The release's SBOMs, made from the real build (npm run image): valid CycloneDX 1.6 by the shipped schema, and
 * listing what the build used — every shipped .deb with its source package, every crate of Cargo.lock, the npm
 * packages esbuild bundles into the installer, crun with each of our patches.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtImage } from '../../demo/cluster/images/built-image';
import { REPO } from '../../demo/cluster/process';
import { imageSbom } from '../../release/sbom';
import { RUNTIME_NAMES } from '../../lib/catalog';
import { envFile, ImageKey, ImageRecordFile, lockedCrates, sbomInputs } from '../../release/sbom-inputs';
import { schemaErrors } from './sbom-schema';

jest.setTimeout(60 * 60_000);

type Component = { name: string; version: string; purl?: string; scope?: string; properties?: Array<{ name: string; value: string }>; pedigree?: { patches: Array<{ diff: { url: string; text: { content: string } } }> } };
type Bom = { components: Component[]; metadata: { component: { version: string } }; serialNumber: string };

let record: ImageRecordFile;
const digests: Partial<Record<ImageKey, string>> = {};

beforeAll(() => {
  const image = builtImage();
  record = image.record as unknown as ImageRecordFile;
  const index = record.index;
  if (!index?.installerImages || !index.wasiTestImage || !index.wasmServiceImage) throw new Error('build/image/image.json records no image indexes (index.installerImages, wasiTestImage, wasmServiceImage)');
  for (const t of RUNTIME_NAMES) digests[t] = index.installerImages[t]!.digest;
  digests.wasi = index.wasiTestImage.digest;
  digests.service = index.wasmServiceImage.digest;
});

const sbom = (which: ImageKey): Bom => imageSbom(sbomInputs(REPO, record, which, digests[which]!)) as unknown as Bom;

test.each([...RUNTIME_NAMES, 'wasi', 'service'] as const)('the %s image SBOM is valid CycloneDX 1.6 and names the image index digest', (which) => {
  const bom = sbom(which);
  expect(schemaErrors(bom)).toBe('');
  expect(bom.metadata.component.version).toBe(digests[which]);
});

test("each installer image's SBOM names its own ociType's crun build and image; only crun-wasmtime's lists the wasmtime C API and its crates", () => {
  for (const t of RUNTIME_NAMES) {
    const bom = sbom(t);
    expect(bom.components.find((c) => c.name === 'crun')).toMatchObject({ version: '1.21' });
    expect(JSON.stringify(bom)).toContain(`crun built as ${t}`);
    const wasmtime = bom.components.some((c) => c.name === 'libwasmtime');
    const crates = bom.components.filter((c) => c.purl?.startsWith('pkg:cargo/')).length;
    expect({ t, wasmtime, crates: crates > 0 }).toEqual({ t, wasmtime: t === 'crun-wasmtime', crates: t === 'crun-wasmtime' });
  }
});

test('the schema check can fail: a component without a name, an unknown component type', () => {
  const bom = sbom('wasi') as unknown as { components: Array<Record<string, unknown>> };
  expect(schemaErrors({ ...bom, components: [{ type: 'library', version: '1' }] })).toMatch(/name/);
  expect(schemaErrors({ ...bom, components: [{ type: 'gadget', name: 'x' }] })).toMatch(/enum/);
});

test('the installer SBOM lists every shipped .deb with its version and source package, and the build-only ones as excluded', () => {
  const bom = sbom('crun-wasmtime');
  const env = envFile(readFileSync(join(REPO, 'runtime-artifacts', 'image.env'), 'utf8'));
  const debs = bom.components.filter((c) => c.purl?.startsWith('pkg:deb/debian/') && c.purl.includes('distro=debian-13'));
  const shipped = `${env.VENDOR_DEBS} ${env.ROOTFS_DEBS}`.split(/\s+/).filter(Boolean).sort();
  expect(debs.filter((c) => c.scope === 'required').map((c) => c.name).sort()).toEqual(shipped);
  expect(debs.filter((c) => c.scope === 'excluded').map((c) => c.name)).toEqual(env.BUILD_DEBS.split(/\s+/));
  const libc = debs.find((c) => c.name === 'libc6')!;
  expect(libc.properties).toContainEqual({ name: 'knawd:debian:source', value: 'glibc' });
  expect(`libc6=${libc.version}`).toBe((builtImage().record.packages as readonly string[]).find((p) => p.startsWith('libc6=')));
  expect(libc.purl).toContain('upstream=glibc');
});

test('the installer SBOM lists every crate of wasmtime-capi/Cargo.lock, the bundled npm packages and crun with each patch', () => {
  const bom = sbom('crun-wasmtime');
  const crates = lockedCrates(readFileSync(join(REPO, 'runtime-artifacts', 'wasmtime-capi', 'Cargo.lock'), 'utf8'));
  expect(crates.length).toBeGreaterThan(100);
  const listed = new Set(bom.components.filter((c) => c.purl?.startsWith('pkg:cargo/')).map((c) => `${c.name}@${c.version}`));
  expect(listed).toEqual(new Set(crates.map((c) => `${c.name}@${c.version}`)));
  expect(listed).toContain('wasmtime-c-api-impl@26.0.1');

  // The installer's runtime dependencies are bundled; nothing of the dev tooling is.
  const npm = bom.components.filter((c) => c.purl?.startsWith('pkg:npm/')).map((c) => c.name);
  const deps = Object.keys((JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> }).dependencies);
  for (const dep of deps) expect(npm).toContain(dep);
  expect(npm).not.toContain('jest');
  expect(npm).not.toContain('cdk8s');

  const crun = bom.components.find((c) => c.name === 'crun')!;
  expect(crun.version).toBe('1.21');
  const patches = readdirSync(join(REPO, 'runtime-artifacts', 'crun-patches')).filter((f) => f.endsWith('.patch')).sort();
  expect(crun.pedigree!.patches.map((p) => p.diff.url)).toEqual(patches.map((p) => `runtime-artifacts/crun-patches/${p}`));
  expect(crun.pedigree!.patches[0].diff.text.content).toBe(readFileSync(join(REPO, 'runtime-artifacts', 'crun-patches', patches[0]), 'utf8'));
});

test('the WASM service SBOM names wasi-libc as linked in; the SBOM of the same build is the same document', () => {
  const bom = sbom('service');
  expect(bom.components.find((c) => c.name === 'wasi-libc')).toMatchObject({ scope: 'required', version: record.toolchain!['wasi-libc'] });
  expect(JSON.stringify(sbom('crun-wasmtime'))).toBe(JSON.stringify(sbom('crun-wasmtime')));
  expect(sbom('crun-wasmtime').serialNumber).not.toBe(sbom('wasi').serialNumber);
});
