/**
 * A build of the image's /vendor laid out under a prefix the way the installer does it (the padded default prefix
 * rewritten to it), for `crun run` on bundles (test/image).
 */
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { VendorManifest } from '../../lib/catalog';

/** The build's files under `prefix` as the installer lays them out, the padded default prefix rewritten to it. */
export function layOut(vendor: string, manifest: VendorManifest, build: string, prefix: string): string {
  const placeholder = Buffer.from(manifest.placeholder);
  const to = Buffer.from(prefix.padEnd(manifest.placeholder.length, '/'));
  let crun = '';
  for (const f of manifest.builds[build].files) {
    const dest = f.role === 'crun' ? join(prefix, 'libexec', build, 'crun') : f.role === 'data' ? join(prefix, f.path) : join(prefix, 'lib', basename(f.path));
    mkdirSync(dirname(dest), { recursive: true });
    const data = readFileSync(join(vendor, f.path));
    const parts: Buffer[] = [];
    let from = 0;
    for (let at = data.indexOf(placeholder); at >= 0; at = data.indexOf(placeholder, from)) {
      parts.push(data.subarray(from, at), to);
      from = at + placeholder.length;
    }
    parts.push(data.subarray(from));
    writeFileSync(dest, Buffer.concat(parts));
    chmodSync(dest, f.role === 'crun' || f.role === 'loader' ? 0o755 : 0o644);
    if (f.role === 'crun') crun = dest;
  }
  if (!crun) throw new Error(`artifacts.json lists no crun for ${build}`);
  return crun;
}

/**
 * Each build laid out from its own installer image's /vendor (what ships is what is tested) under
 * `<base>/p-<build>`: the crun of each.
 */
export function layOutImages<B extends string>(installers: Readonly<Record<B, { readonly vendor: string }>>, builds: readonly B[], base: string): Record<B, string> {
  const cruns = {} as Record<B, string>;
  for (const build of builds) {
    const { vendor } = installers[build];
    const manifest = JSON.parse(readFileSync(join(vendor, 'artifacts.json'), 'utf8')) as VendorManifest;
    cruns[build] = layOut(vendor, manifest, build, join(base, `p-${build}`));
  }
  return cruns;
}
