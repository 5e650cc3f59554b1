import { readFileSync } from 'fs';
import { join } from 'path';
import { ConfigPatchError } from '../../lib/toml';

export const FIXTURES = join(__dirname, '..', 'fixtures', 'toml');

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), 'utf8');
}

export const SPEC = { handler: 'crun-wasm', binaryPath: '/opt/knawd/bin/crun-wasmtime' } as const;

/** `result` is `original` plus, after it, nothing but the separator and our block in the file's line ending. */
export function expectOnlyBlockAppended(original: string, result: string, handler: string): void {
  expect(result.startsWith(original)).toBe(true);
  const eol = original.includes('\r\n') ? '\r\n' : '\n';
  const added = result.slice(original.length);
  const separator = original === '' ? '' : original.endsWith('\n') ? eol : eol + eol;
  expect(added.startsWith(separator)).toBe(true);
  const lines = added.slice(separator.length).split(eol);
  if (original === '' || original.endsWith('\n')) expect(lines.pop()).toBe('');
  expect(lines[0]).toBe(`# BEGIN knawd-deployer managed block: runtime ${handler} (remove with: knawd-installer remove)`);
  expect(lines[lines.length - 1]).toBe(`# END knawd-deployer managed block: runtime ${handler}`);
  for (const line of lines) expect(line).not.toContain('\r');
}

/** Runs `action` and returns the ConfigPatchError it throws, after checking its message is one line. */
export function patchError(action: () => unknown): ConfigPatchError {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigPatchError);
    const message = (error as Error).message;
    expect(message).not.toMatch(/[\r\n]/);
    expect(message.length).toBeGreaterThan(20);
    return error as ConfigPatchError;
  }
  throw new Error('expected a ConfigPatchError, but nothing was thrown');
}
