import { putBlock } from '../../lib/toml/block';
import { ConfigPatchError } from '../../lib/toml/errors';
import { tomlReader, verifyAddition, verifyRemoval } from '../../lib/toml/verify';

const HANDLER = 'crun-wasm';
const SOURCE = 'test.toml';
const read = tomlReader(SOURCE);
const LINES = ['[a]', 'b = 1'];
const FRAGMENT = { a: { b: 1 } };
const BASE = 'x = 1\n';

function addition(overrides: { base?: string; result?: string; fragment?: Record<string, unknown> }): () => void {
  const base = overrides.base ?? BASE;
  return () =>
    verifyAddition({
      base,
      parsedBase: read(base),
      result: overrides.result ?? putBlock(base, HANDLER, LINES),
      handler: HANDLER,
      fragment: overrides.fragment ?? FRAGMENT,
      source: SOURCE,
      read,
    });
}

function selfCheckFailure(what: string): ConfigPatchError {
  return new ConfigPatchError(
    `refusing to write ${SOURCE}: self-check failed (${what}); the file is left as it was, please report this with the file attached`,
  );
}

describe('verifyAddition', () => {
  it('accepts a block that holds the fragment appended to the base', () => {
    expect(addition({})).not.toThrow();
  });

  it.each([
    ['the block holds other values than intended', { fragment: { a: { b: 2 } } }],
    ['the result has no block', { result: 'x = 1\n\n[a]\nb = 1\n' }],
  ])('refuses when %s', (_, overrides) => {
    expect(addition(overrides)).toThrow(selfCheckFailure('the managed block does not hold the intended tables'));
  });

  it('refuses when a setting outside the block changed', () => {
    expect(addition({ result: putBlock('x = 2\n', HANDLER, LINES) })).toThrow(
      selfCheckFailure('the patched document does not equal the original plus the managed tables'),
    );
  });

  it('refuses when the block redefines a value of the base', () => {
    const base = 'a = 5\n';
    expect(addition({ base, result: putBlock(base, HANDLER, LINES) })).toThrow(
      selfCheckFailure('the patched document does not equal the original plus the managed tables'),
    );
  });

  it('refuses when taking the block out would not give the base back byte for byte', () => {
    expect(addition({ result: putBlock('x = 1 # same setting, other bytes\n', HANDLER, LINES) })).toThrow(
      selfCheckFailure('removing the managed block would not restore the original bytes'),
    );
  });
});

describe('verifyRemoval', () => {
  const before = putBlock(BASE, HANDLER, LINES);
  const removal = (result: string) => () => verifyRemoval({ before, result, handler: HANDLER, source: SOURCE, read });
  const lostSettings = selfCheckFailure('the document without the managed block lost or changed other settings');

  it('accepts a result that is the document without the block', () => {
    expect(removal(BASE)).not.toThrow();
  });

  it('has nothing to check when the document held no block', () => {
    expect(() => verifyRemoval({ before: BASE, result: 'y = 2\n', handler: HANDLER, source: SOURCE, read })).not.toThrow();
  });

  it.each([
    ['a setting outside the block changed', 'x = 2\n'],
    ['a setting outside the block is gone', ''],
    ['the result still defines what the block held', 'x = 1\n[a]\nb = 1\n'],
  ])('refuses when %s', (_, result) => {
    expect(removal(result)).toThrow(lostSettings);
  });
});

describe('tomlReader', () => {
  it('names the document in parse errors', () => {
    expect(() => read('x = \n')).toThrow(/^test\.toml is not valid TOML \(line 1, column \d+: .+\); fix or restore it first$/);
    expect(read('x = 1\n')).toEqual({ x: 1 });
  });
});
