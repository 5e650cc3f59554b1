/**
 * Writes /vendor/artifacts.json for the installer image (called by assemble.sh): each build with its files and
 * their roles, and which build each (target, runtime) pair of the catalog uses. The catalog (lib/catalog) is the
 * one place that says which runtime ships for which target; this file only records which build serves it.
 *
 *   vendor-manifest.ts VENDOR_DIR WASMTIME_LIBS WASMEDGE_LIBS WASM_NODEJS_LIBS WASM_NODEJS_FILES PACKAGES PADDED_PREFIX
 */
import * as fs from 'fs';
import * as path from 'path';
import { AUTO_CANDIDATES, DEFAULT_HOST_PREFIX, HOST_PREFIX_MAX_LENGTH, runtimesFor, runtimesForAuto, TARGETS } from '../lib/catalog';
import { VENDOR_MANIFEST, VendorBuild, VendorFile, VendorManifest } from '../lib/catalog/vendor-manifest';

const [vendor, wasmtimeLibs, wasmedgeLibs, nodejsLibs, nodejsFiles, packagesFile, padded] = process.argv.slice(2);
if (!padded) throw new Error('usage: vendor-manifest.ts VENDOR_DIR WASMTIME_LIBS WASMEDGE_LIBS WASM_NODEJS_LIBS WASM_NODEJS_FILES PACKAGES PADDED_PREFIX');
if (padded.length !== HOST_PREFIX_MAX_LENGTH || padded.replace(/\/+$/, '') !== DEFAULT_HOST_PREFIX) {
  throw new Error(`the padded prefix "${padded}" is not ${DEFAULT_HOST_PREFIX} padded to ${HOST_PREFIX_MAX_LENGTH} (lib/catalog/node-contract.ts)`);
}
const placeholder = Buffer.from(padded, 'utf8');
const packages = fs.readFileSync(packagesFile, 'utf8').trim().split('\n').map((l) => l.split(' ').slice(0, 2).join('='));
const version = (pkg: string): string => (packages.find((p) => p.startsWith(`${pkg}=`)) ?? `${pkg}=?`).split('=')[1];

function file(rel: string, role: VendorFile['role']): VendorFile {
  const data = fs.readFileSync(path.join(vendor, rel));
  return { path: rel, role, ...(data.includes(placeholder) ? { prefixed: true } : {}) };
}

function build(runtime: 'crun-wasmtime' | 'crun-wasmedge' | 'crun-wasm-nodejs', libs: string, engine: string, versions: Record<string, string>, data: readonly string[] = []): VendorBuild {
  const names = fs.readFileSync(libs, 'utf8').trim().split('\n').map((l) => l.split('\t')[0]);
  const files = [
    file(`${runtime}/crun`, 'crun'),
    ...[...new Set(names)].sort().map((n) => file(`lib/${n}`, n === engine ? 'engine' : /^ld-linux-/.test(n) ? 'loader' : 'library')),
    ...[...data].sort().map((p) => file(p, 'data')),
  ];
  return { runtime, versions, files };
}

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (assemble.sh passes image.env's versions)`);
  return value;
}
const crun = env('CRUN_VERSION');
const manifest: VendorManifest = {
  schema: VENDOR_MANIFEST.schema,
  placeholder: padded,
  builds: {
    'crun-wasmtime': build('crun-wasmtime', wasmtimeLibs, 'libwasmtime.so', { crun, wasmtime: `${env('WASMTIME_VERSION')} (crates.io wasmtime-c-api-impl)`, glibc: version('libc6') }),
    'crun-wasmedge': build('crun-wasmedge', wasmedgeLibs, 'libwasmedge.so.0', { crun, wasmedge: `${version('libwasmedge0')} (Debian trixie libwasmedge0, with LLVM ${version('libllvm19')})`, glibc: version('libc6') }),
    'crun-wasm-nodejs': build(
      'crun-wasm-nodejs',
      nodejsLibs,
      'libnode.so.115',
      { crun, node: `${version('libnode115')} (Debian trixie libnode115, node:wasi)`, glibc: version('libc6') },
      fs.readFileSync(nodejsFiles, 'utf8').trim().split('\n'),
    ),
  },
  targets: Object.fromEntries(TARGETS.map((t) => [t.name, Object.fromEntries(runtimesFor(t).map((r) => [r.name, r.name]))])),
  packages,
};
for (const [target, runtimes] of Object.entries(manifest.targets)) {
  for (const b of Object.values(runtimes)) if (!manifest.builds[b]) throw new Error(`the catalog ships ${b} for ${target}, but this image has no such build`);
}
// Target auto chooses one of its candidates per node: every one of them needs every runtime auto accepts.
for (const target of AUTO_CANDIDATES) {
  for (const r of runtimesForAuto()) if (!manifest.targets[target]?.[r.name]) throw new Error(`target auto may choose ${target}, but this image has no ${r.name} for it`);
}
fs.writeFileSync(path.join(vendor, VENDOR_MANIFEST.file), JSON.stringify(manifest, null, 2) + '\n');
