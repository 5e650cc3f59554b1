/**
 * The node-local cache of compiled WebAssembly modules (issue 33): `<prefix>/cache`, written only by the installed
 * crun builds (crun-patches/0101: entries `<key>.entry`, a `stats` file of counters), named to crun by the wrapper
 * (KNAWD_WASM_CACHE). The installer never writes into it: `status` reads it, `remove` deletes it with the prefix.
 */
import { compileCachePath } from '../plan/state';
import { HostFs } from './fs';

/** The counters crun keeps in `<cache>/stats`, in its order. */
export const COMPILE_CACHE_COUNTERS = ['hits', 'misses', 'compiled', 'rejected', 'failed'] as const;
export type CompileCacheCounter = (typeof COMPILE_CACHE_COUNTERS)[number];

export interface CompileCacheReport {
  readonly path: string;
  /** Compiled modules held, and their bytes. */
  readonly entries: number;
  readonly bytes: number;
  /** hits: starts that ran from an entry; misses: starts that found none; compiled: entries written; rejected: corrupt or foreign entries not run; failed: compiles that failed. */
  readonly counters: Readonly<Record<CompileCacheCounter, number>>;
}

/** What the cache holds now; undefined when no module was started under the prefix's crun yet. */
export function readCompileCache(fs: HostFs, prefix: string): CompileCacheReport | undefined {
  const dir = compileCachePath(prefix);
  const names = fs.list(dir);
  if (names === undefined) return undefined;
  let entries = 0;
  let bytes = 0;
  for (const name of names.filter((n) => n.endsWith('.entry'))) {
    const size = fs.size(`${dir}/${name}`);
    if (size === undefined) continue;
    entries++;
    bytes += size;
  }
  const counters = Object.fromEntries(COMPILE_CACHE_COUNTERS.map((c) => [c, 0])) as Record<CompileCacheCounter, number>;
  const text = names.includes('stats') ? fs.read(`${dir}/stats`)?.toString('utf8') ?? '' : '';
  for (const line of text.split('\n')) {
    const [name, value] = line.split(' ');
    if ((COMPILE_CACHE_COUNTERS as readonly string[]).includes(name) && /^\d+$/.test(value ?? '')) counters[name as CompileCacheCounter] = Number(value);
  }
  return { path: dir, entries, bytes, counters };
}

/** Deletes the cache and everything in it (nothing else is under it: crun writes files only). */
export function removeCompileCache(fs: HostFs, prefix: string): boolean {
  const dir = compileCachePath(prefix);
  for (const name of fs.list(dir) ?? []) fs.removeFile(`${dir}/${name}`);
  return fs.removeDir(dir);
}
