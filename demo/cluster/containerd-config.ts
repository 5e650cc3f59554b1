/** Debian's containerd 1.6 (the e2e tests' 1.x) and the one edit the harnesses make to containerd's own default config. */

export const CONTAINERD = '/usr/bin/containerd';
export const CTR = '/usr/bin/ctr';

/** Sets `key` in `[section]` ('' = top level, before the first table) of a config in containerd's own layout. */
export function setKey(text: string, section: string, key: string, value: string): string {
  const lines = text.split('\n');
  let start = 0;
  if (section !== '') {
    start = lines.findIndex((l) => l.trim() === `[${section}]`);
    if (start < 0) throw new Error(`containerd config default has no [${section}] table; the test's edits expect the layout containerd itself writes`);
    start += 1;
  }
  for (let i = start; i < lines.length && !lines[i].trim().startsWith('['); i++) {
    const m = /^(\s*)(\S+) = /.exec(lines[i]);
    if (m && m[2] === key) {
      lines[i] = `${m[1]}${key} = ${value}`;
      return lines.join('\n');
    }
  }
  throw new Error(`containerd config default has no ${key} in [${section || 'top level'}]; the test's edits expect the layout containerd itself writes`);
}
