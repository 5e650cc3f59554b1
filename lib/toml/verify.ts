/**
 * Parsing with @iarna/toml, and the checks every add/remove runs on its own output before returning it, so
 * that a file we would break is refused instead of written.
 */
import * as TOML from '@iarna/toml';
import { blockText, removeBlock } from './block';
import { ConfigPatchError } from './errors';
import { deepEqual, mergeFragment, TomlTable } from './tree';

/** Turns a document's text into the TOML it stands for; the k3s template needs more than plain parsing. */
export type TomlReader = (text: string) => TomlTable;

/** Plain parsing, with errors naming the document as `source`. */
export function tomlReader(source: string): TomlReader {
  return (text) => parseToml(text, source);
}

export function parseToml(text: string, source: string): TomlTable {
  try {
    return TOML.parse(text) as TomlTable;
  } catch (error) {
    throw new ConfigPatchError(`${source} is not valid TOML (${describeParseError(error)}); fix or restore it first`);
  }
}

function describeParseError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const { line, col } = error as Error & { line?: number; col?: number };
  // @iarna/toml appends the position and a multi-line excerpt to its message; keep the first clause only.
  const reason = error.message.split('\n')[0].replace(/ at row \d+, col \d+, pos \d+:?$/, '');
  return typeof line === 'number' && typeof col === 'number' ? `line ${line + 1}, column ${col + 1}: ${reason}` : reason;
}

export interface AdditionCheck {
  /** The document without our block. */
  readonly base: string;
  /** `base` as read, which the caller has already done to decide what to add. */
  readonly parsedBase: TomlTable;
  /** The document we are about to return. */
  readonly result: string;
  readonly handler: string;
  /** What our block is meant to add, as parsed TOML. */
  readonly fragment: TomlTable;
  readonly source: string;
  readonly read: TomlReader;
}

/** Our block holds exactly `fragment`, everything else parses as before, and removal gives `base` back. */
export function verifyAddition(check: AdditionCheck): void {
  const block = blockText(check.result, check.handler);
  if (block === undefined || !deepEqual(parseToml(block, 'the managed block'), check.fragment)) {
    internalFailure(check.source, 'the managed block does not hold the intended tables');
  }
  const expected = mergeFragment(check.parsedBase, check.fragment);
  if (expected === undefined || !deepEqual(check.read(check.result), expected)) {
    internalFailure(check.source, 'the patched document does not equal the original plus the managed tables');
  }
  if (removeBlock(check.result, check.handler) !== check.base) {
    internalFailure(check.source, 'removing the managed block would not restore the original bytes');
  }
}

export interface RemovalCheck {
  readonly before: string;
  readonly result: string;
  readonly handler: string;
  readonly source: string;
  readonly read: TomlReader;
}

/** The result parses, and adding back what the removed block held gives the document we started from. */
export function verifyRemoval(check: RemovalCheck): void {
  const block = blockText(check.before, check.handler);
  if (block === undefined) return;
  const restored = mergeFragment(check.read(check.result), parseToml(block, `the managed block in ${check.source}`));
  if (restored === undefined || !deepEqual(restored, check.read(check.before))) {
    internalFailure(check.source, 'the document without the managed block lost or changed other settings');
  }
}

function internalFailure(source: string, what: string): never {
  throw new ConfigPatchError(
    `refusing to write ${source}: self-check failed (${what}); the file is left as it was, please report this with the file attached`,
  );
}
