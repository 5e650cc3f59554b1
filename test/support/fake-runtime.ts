/**
 * The one answer a test fakes for a runtime that is not there (unit tests, the installer benchmark): which
 * handlers it would serve, read from the node root's configs. No jest here: the benchmark's child imports it.
 */
import * as fs from 'fs';
import * as path from 'path';

/** The handlers a runtime would serve from the node root's configs: runc, plus every knawd block found. */
export function handlersOnNodeRoot(root: string): string[] {
  const handlers = new Set(['runc']);
  const walk = (dir: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && /\.(toml|tmpl|conf)$/.test(e.name)) {
        for (const m of fs.readFileSync(full, 'utf8').matchAll(/^# BEGIN knawd-deployer managed block: runtime (\S+)/gm)) handlers.add(m[1]);
      }
    }
  };
  for (const top of ['etc', 'var']) walk(path.join(root, top));
  return [...handlers];
}
