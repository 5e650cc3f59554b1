/**
 * The examples of README.md, as the tests and `npm run demo` apply them: each is a fenced `yaml` block right after
 * a line `<!-- example: NAME -->`, so that the README shows exactly what runs and cannot rot.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO } from './cluster/process';

/** The YAML text of the example NAME in README.md; throws when it is missing or is not one yaml block. */
export function readmeExample(name: string, file = join(REPO, 'README.md')): string {
  const text = readFileSync(file, 'utf8');
  const marker = `<!-- example: ${name} -->\n`;
  const at = text.indexOf(marker);
  if (at < 0) throw new Error(`${file} has no example "${name}" (a line ${marker.trim()} before a yaml block)`);
  const block = /^```yaml\n([\s\S]*?)^```$/m.exec(text.slice(at + marker.length));
  if (!block || block.index !== 0) throw new Error(`${file}: example "${name}" is not followed by a fenced yaml block`);
  return block[1];
}

/** The example's documents, parsed (for assertions on what it says). */
export function readmeExampleObjects(name: string): Array<Record<string, any>> {
  return parseAllDocuments(readmeExample(name)).map((d) => d.toJSON());
}
