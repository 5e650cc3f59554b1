/**
 * Every link of README.md and docs/ resolves: a relative link names a file or directory of the repository, and
 * a `#fragment` a heading of the page it points to (GitHub's slugs). Web links are only checked for form: the
 * tests send no traffic off this machine.
 */
import * as fs from 'fs';
import * as path from 'path';
import { REPO } from '../../demo/cluster/process';

function markdownFiles(): string[] {
  const found = [path.join(REPO, 'README.md')];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) found.push(p);
    }
  };
  walk(path.join(REPO, 'docs'));
  return found;
}

/** Link targets of a Markdown text, outside fenced and inline code. */
export function linkTargets(text: string): string[] {
  const prose = text.replace(/^```[\s\S]*?^```$/gm, '').replace(/`[^`\n]*`/g, '');
  const targets = [...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
  targets.push(...[...prose.matchAll(/^\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+"[^"]*")?$/gm)].map((m) => m[1]));
  targets.push(...[...prose.matchAll(/<a\s[^>]*href="([^"]+)"/g)].map((m) => m[1]));
  return targets;
}

/** GitHub's anchors of a Markdown page's headings (and explicit `<a name/id>` anchors). */
export function anchors(text: string): Set<string> {
  const prose = text.replace(/^```[\s\S]*?^```$/gm, '');
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]
      .replace(/<[^>]+>/g, '')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  for (const m of prose.matchAll(/<a\s[^>]*(?:name|id)="([^"]+)"/g)) out.add(m[1]);
  return out;
}

/** Why `target` (a link in `file`) does not resolve; undefined when it does. */
export function brokenLink(file: string, target: string): string | undefined {
  if (/^(https?|mailto):/i.test(target)) {
    try {
      new URL(target);
      return undefined;
    } catch {
      return 'not a valid URL';
    }
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return 'a link with a scheme other than http(s) or mailto';
  const [rawPath, fragment] = target.split('#', 2);
  const resolved = rawPath ? path.resolve(path.dirname(file), decodeURIComponent(rawPath)) : file;
  if (!resolved.startsWith(REPO + path.sep) && resolved !== REPO) return 'points outside the repository';
  if (!fs.existsSync(resolved)) return `${path.relative(REPO, resolved)} does not exist`;
  if (fragment !== undefined && resolved.endsWith('.md') && !anchors(fs.readFileSync(resolved, 'utf8')).has(fragment)) {
    return `${path.relative(REPO, resolved)} has no heading #${fragment}`;
  }
  return undefined;
}

describe('links in README.md and docs/', () => {
  test('there are links to check: README.md links into the repository (docs/, demo/)', () => {
    const readme = linkTargets(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8'));
    expect(readme.filter((t) => t.startsWith('docs/') || t.startsWith('demo/')).length).toBeGreaterThanOrEqual(2);
  });

  test('every page of docs/ (docs/api is generated and has its own entry) is linked from README.md, and every page links back', () => {
    const readme = new Set(linkTargets(fs.readFileSync(path.join(REPO, 'README.md'), 'utf8')).map((t) => t.split('#')[0]));
    const pages = fs.readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md'));
    expect(pages.length).toBeGreaterThanOrEqual(10);
    expect(pages.filter((f) => !readme.has(`docs/${f}`))).toEqual([]);
    expect(readme.has('docs/api/README.md')).toBe(true);
    const noWayBack = pages.filter((f) => !linkTargets(fs.readFileSync(path.join(REPO, 'docs', f), 'utf8')).some((t) => t.startsWith('../README.md')));
    expect(noWayBack).toEqual([]);
  });

  test.each(markdownFiles().map((f) => [path.relative(REPO, f), f]))('every link of %s resolves', (_name, file) => {
    const broken = linkTargets(fs.readFileSync(file, 'utf8'))
      .map((t) => [t, brokenLink(file, t)])
      .filter(([, why]) => why !== undefined)
      .map(([t, why]) => `${t}: ${why}`);
    expect(broken).toEqual([]);
  });

  test('the checker itself: a missing file, a missing heading and a bad URL are caught; good links pass', () => {
    const readme = path.join(REPO, 'README.md');
    expect(brokenLink(readme, 'docs/no-such-page.md')).toBe('docs/no-such-page.md does not exist');
    expect(brokenLink(readme, '#no-such-heading')).toBe('README.md has no heading #no-such-heading');
    expect(brokenLink(readme, 'https://exa mple.com/')).toBe('not a valid URL');
    expect(brokenLink(readme, 'package.json')).toBeUndefined();
    expect([...anchors('# A b\n## Run `x` here!\n## A b\n')]).toEqual(['a-b', 'run-x-here', 'a-b-1']);
    expect(linkTargets('[a](x.md) `[b](y.md)` [c](<z.md> "t")\n```\n[d](w.md)\n```\n')).toEqual(['x.md', 'z.md']);
  });
});
