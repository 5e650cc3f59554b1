/**
 * One entry of an image cache: `<root>/<key>/images.json` and the archives beside it. Built once into a
 * `.partial-` sibling and renamed into place (another run that finished the same key first wins: its entry is as
 * good as ours); touched on every use, so that entries of the same root unused for a week can be pruned.
 */
import * as fs from 'fs';
import * as path from 'path';

const PRUNE_AFTER_MS = 7 * 24 * 3600_000;

/** The entry's directory and its recorded index; `build` fills a fresh directory and returns what to record. */
export function cachedEntry<T>(root: string, key: string, build: (dir: string) => T): { dir: string; index: T } {
  fs.mkdirSync(root, { recursive: true });
  const dir = path.join(root, key);
  const index = path.join(dir, 'images.json');
  if (!fs.existsSync(index)) {
    const partial = fs.mkdtempSync(path.join(root, `${key}.partial-`));
    try {
      fs.writeFileSync(path.join(partial, 'images.json'), JSON.stringify(build(partial)));
      if (!fs.existsSync(index)) fs.renameSync(partial, dir);
    } finally {
      fs.rmSync(partial, { recursive: true, force: true });
    }
  }
  const now = new Date();
  fs.utimesSync(dir, now, now);
  for (const e of fs.readdirSync(root)) {
    const p = path.join(root, e);
    if (e !== key && Date.now() - fs.statSync(p).mtimeMs > PRUNE_AFTER_MS) fs.rmSync(p, { recursive: true, force: true });
  }
  return { dir, index: JSON.parse(fs.readFileSync(index, 'utf8')) as T };
}
