/**
 * Writes /vendor/artifacts.json and /vendor/SHA256SUMS of one installer image (called by assemble.sh once per
 * build): the image's one build with its files and their roles, which build each (target, runtime) pair of the
 * catalog uses (that build's runtime only), and the sha256 of each of its files and of artifacts.json. The catalog
 * (lib/catalog) is the one place that says which runtime ships for which target; this file only records which
 * build serves it.
 *
 *   vendor-manifest.ts VENDOR_DIR OUT_DIR BUILD LIBS DATA_FILES|- PACKAGES PADDED_PREFIX
 *
 * VENDOR_DIR holds every build's files (read for their bytes); OUT_DIR gets artifacts.json and SHA256SUMS.
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { AUTO_CANDIDATES, DEFAULT_HOST_PREFIX, HOST_PREFIX_MAX_LENGTH, RUNTIME_NAMES, RuntimeName, runtimesFor, runtimesForAuto, TARGETS } from '../lib/catalog';
import { VENDOR_MANIFEST, VendorBuild, VendorFile, VendorManifest } from '../lib/catalog/vendor-manifest';

const [vendor, out, runtime, libs, dataFiles, packagesFile, padded] = process.argv.slice(2);
const USAGE = 'usage: vendor-manifest.ts VENDOR_DIR OUT_DIR BUILD LIBS DATA_FILES|- PACKAGES PADDED_PREFIX';
if (!padded) throw new Error(USAGE);
if (!(RUNTIME_NAMES as readonly string[]).includes(runtime)) throw new Error(`${runtime} is no runtime of lib/catalog (${RUNTIME_NAMES.join(', ')})`);
if (padded.length !== HOST_PREFIX_MAX_LENGTH || padded.replace(/\/+$/, '') !== DEFAULT_HOST_PREFIX) {
  throw new Error(`the padded prefix "${padded}" is not ${DEFAULT_HOST_PREFIX} padded to ${HOST_PREFIX_MAX_LENGTH} (lib/catalog/node-contract.ts)`);
}
const placeholder = Buffer.from(padded, 'utf8');
const packages = fs.readFileSync(packagesFile, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(0, 2).join('='));
const version = (pkg: string): string => (packages.find((p) => p.startsWith(`${pkg}=`)) ?? `${pkg}=?`).split('=')[1];
const sha256 = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

const sums = new Map<string, string>();
function file(rel: string, role: VendorFile['role']): VendorFile {
  const data = fs.readFileSync(path.join(vendor, rel));
  sums.set(rel, sha256(data));
  return { path: rel, role, ...(data.includes(placeholder) ? { prefixed: true } : {}) };
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (assemble.sh passes image.env's versions)`);
  return value;
}
const crun = env('CRUN_VERSION');
const ENGINES: Record<RuntimeName, { engine: string; versions: () => Record<string, string> }> = {
  'crun-wasmtime': { engine: 'libwasmtime.so', versions: () => ({ crun, wasmtime: `${env('WASMTIME_VERSION')} (crates.io wasmtime-c-api-impl)`, glibc: version('libc6') }) },
  'crun-wasmedge': { engine: 'libwasmedge.so.0', versions: () => ({ crun, wasmedge: `${version('libwasmedge0')} (Debian trixie libwasmedge0, with LLVM ${version('libllvm19')})`, glibc: version('libc6') }) },
  'crun-wasm-nodejs': { engine: 'libnode.so.115', versions: () => ({ crun, node: `${version('libnode115')} (Debian trixie libnode115, node:wasi)`, glibc: version('libc6') }) },
};
const { engine, versions } = ENGINES[runtime as RuntimeName];
const names = fs.readFileSync(libs, 'utf8').trim().split('\n').map((l) => l.split('\t')[0]);
const data = dataFiles === '-' ? [] : fs.readFileSync(dataFiles, 'utf8').trim().split('\n');
const build: VendorBuild = {
  runtime,
  versions: versions(),
  files: [
    file(`${runtime}/crun`, 'crun'),
    ...[...new Set(names)].sort().map((n) => file(`lib/${n}`, n === engine ? 'engine' : /^ld-linux-/.test(n) ? 'loader' : 'library')),
    ...[...data].sort().map((p) => file(p, 'data')),
  ],
};
const manifest: VendorManifest = {
  schema: VENDOR_MANIFEST.schema,
  placeholder: padded,
  builds: { [runtime]: build },
  targets: Object.fromEntries(TARGETS.filter((t) => runtimesFor(t).some((r) => r.name === runtime)).map((t) => [t.name, { [runtime]: runtime }])),
  packages,
};
// Target auto chooses one of its candidates per node: each must have this build if auto accepts its runtime.
for (const target of AUTO_CANDIDATES) {
  if (runtimesForAuto().some((r) => r.name === runtime) && !manifest.targets[target]?.[runtime]) throw new Error(`target auto may choose ${target}, but the catalog ships no ${runtime} for it`);
}
const json = JSON.stringify(manifest, null, 2) + '\n';
fs.writeFileSync(path.join(out, VENDOR_MANIFEST.file), json);
sums.set(VENDOR_MANIFEST.file, sha256(Buffer.from(json)));
const lines = [...sums.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([p, h]) => `${h}  ${p}\n`);
fs.writeFileSync(path.join(out, VENDOR_MANIFEST.sums), lines.join(''));
