/**
 * The config-deployment `runtime-class-name` edits, each result read back by Knative Serving's own parser
 * (knative-config-check, built from knative.dev/serving's pkg/deployment of the oldest and the newest release
 * the module proxy serves): what we write is accepted, keeps every other entry, and gives our RuntimeClass to
 * exactly the revisions with our labels; taking it out restores the value, byte for byte when nothing else
 * changed since.
 */
import { withEntry, withoutEntry } from '../../lib/installer/kube/runtime-class-name';
import { KNATIVE_VERSIONS, knativeParse, shippedConfigMap } from '../support/knative';

const OURS = { 'knawd.dev/wasm': 'true' };
const WASM = { 'knawd.dev/wasm': 'true', app: 'x' };
const PLAIN = { app: 'x' };

function written(result: ReturnType<typeof withEntry>): string | null {
  if (result.kind !== 'write') throw new Error(`expected a write, got ${JSON.stringify(result)}`);
  return result.value;
}

describe.each(KNATIVE_VERSIONS)('with Knative Serving %s', (version) => {
  const shipped = shippedConfigMap(version, 'deployment').data;
  const parseWith = (value: string | null, labels: Record<string, string>[] = [WASM, PLAIN]) => {
    const data: Record<string, string> = { ...shipped };
    if (value !== null) data['runtime-class-name'] = value;
    return knativeParse(version, data, labels);
  };

  test('the shipped config-deployment has no runtime-class-name key: it is only in the _example block', () => {
    expect(Object.keys(shipped).sort()).toEqual(['_example', 'queue-sidecar-image']);
    expect(shipped._example).toContain('runtime-class-name: ""');
    expect(parseWith(null, [WASM])).toEqual({ picks: [null] });
  });

  test.each<[string, string | undefined]>([
    ['absent', undefined],
    ['empty', ''],
    ['a YAML null', 'null\n'],
  ])('into an %s value: Knative gives crun to labelled revisions only', (_what, current) => {
    const value = written(withEntry(current, 'crun', OURS));
    expect(value).toBe('"crun":\n  "selector":\n    "knawd.dev/wasm": "true"\n');
    expect(parseWith(value)).toEqual({ runtimeClassNames: { crun: { selector: OURS } }, picks: ['crun', null] });
  });

  test('other entries and their comments are kept; a more specific entry of theirs still wins where it matches', () => {
    const current = ['# chosen by the platform team', 'gvisor:', '  selector:', '    sandbox: "strict" # keep me', '    knawd.dev/wasm: "true"', 'kata: {}', ''].join('\n');
    const value = written(withEntry(current, 'crun', OURS));
    expect(value).toBe(`${current}"crun":\n  "selector":\n    "knawd.dev/wasm": "true"\n`);
    const parsed = parseWith(value, [WASM, PLAIN, { ...WASM, sandbox: 'strict' }]);
    expect(parsed).toEqual({
      runtimeClassNames: { gvisor: { selector: { sandbox: 'strict', 'knawd.dev/wasm': 'true' } }, kata: {}, crun: { selector: OURS } },
      // kata (no selector) matches everything at specificity 0; crun's one label beats it; gvisor's two beat crun.
      picks: ['crun', 'kata', 'gvisor'],
    });
  });

  test('a flow-style value stays flow style', () => {
    const value = written(withEntry('{kata: {}}', 'crun', OURS));
    expect(value).toBe('{ kata: {}, "crun": { "selector": { "knawd.dev/wasm": "true" } } }\n');
    expect(parseWith(value)).toMatchObject({ runtimeClassNames: { kata: {}, crun: { selector: OURS } } });
  });

  test('an entry of our name with another selector is replaced; with the same selector nothing is written', () => {
    const theirs = 'crun:\n  selector:\n    team: a\n';
    const value = written(withEntry(theirs, 'crun', OURS));
    expect(parseWith(value)).toMatchObject({ runtimeClassNames: { crun: { selector: OURS } } });
    // YAML 1.1, as Knative reads it: an unquoted true is the label value "true".
    expect(withEntry('crun:\n  selector:\n    knawd.dev/wasm: true\n', 'crun', OURS)).toEqual({ kind: 'unchanged' });
    expect(withEntry(value ?? '', 'crun', OURS)).toEqual({ kind: 'unchanged' });
  });

  test('names and values YAML 1.1 would turn into booleans or numbers are written so Knative reads the strings', () => {
    const selector = { 'example.com/on': 'yes', flag: 'off', n: '1.0', nothing: 'null', empty: '' };
    const value = written(withEntry(undefined, 'yes', selector));
    const parsed = parseWith(value, [selector]);
    expect(parsed).toEqual({ runtimeClassNames: { yes: { selector } }, picks: ['yes'] });
  });

  test('a value Knative itself refuses is left alone, with the reason', () => {
    expect(parseWith('[crun]')).toMatchObject({ error: expect.stringContaining('runtime-class-name cannot be parsed') });
    expect(withEntry('[crun]', 'crun', OURS)).toEqual({ kind: 'refused', reason: 'it is not a map of RuntimeClass names, so Knative refuses it as it is' });
    expect(withEntry('crun: {selector: [', 'crun', OURS)).toMatchObject({ kind: 'refused', reason: expect.stringMatching(/^it is not YAML Knative can read/) });
  });

  describe('taking our entry out', () => {
    test.each<[string, string | null]>([
      ['absent before: the key goes again', null],
      ['empty before: empty again', ''],
      ['entries before: exactly those bytes again', '# ours\nkata: {}   # trailing\n'],
    ])('%s', (_what, previous) => {
      const value = written(withEntry(previous ?? undefined, 'crun', OURS));
      expect(withoutEntry(value ?? undefined, previous, 'crun', OURS)).toEqual({ kind: 'write', value: previous });
    });

    test('entries added since stay; only ours goes', () => {
      const value = written(withEntry('', 'crun', OURS));
      const since = `${value}gvisor:\n  selector:\n    sandbox: strict\n`;
      const restored = written(withoutEntry(since, '', 'crun', OURS));
      expect(restored).toBe('gvisor:\n  selector:\n    sandbox: strict\n');
      expect(parseWith(restored)).toMatchObject({ runtimeClassNames: { gvisor: { selector: { sandbox: 'strict' } } } });
    });

    test('an entry of our name that was there before gets its old selector back', () => {
      const previous = 'crun:\n  selector:\n    team: a\n';
      const value = written(withEntry(previous, 'crun', OURS));
      expect(withoutEntry(value ?? undefined, previous, 'crun', OURS)).toEqual({ kind: 'write', value: previous });
      const extra = `${value}kata: {}\n`;
      const restored = written(withoutEntry(extra, previous, 'crun', OURS));
      expect(parseWith(restored)).toMatchObject({ runtimeClassNames: { crun: { selector: { team: 'a' } }, kata: {} } });
    });

    test('an entry someone changed since is theirs: left alone', () => {
      const changed = 'crun:\n  selector:\n    knawd.dev/wasm: "true"\n    team: b\n';
      expect(withoutEntry(changed, null, 'crun', OURS)).toEqual({ kind: 'unchanged' });
      expect(withoutEntry(undefined, null, 'crun', OURS)).toEqual({ kind: 'unchanged' });
    });
  });
});
