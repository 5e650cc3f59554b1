import { scanStatements } from '../../lib/toml/statements';

describe('scanStatements', () => {
  it('tells headers, dotted keys and inline tables apart, past strings, arrays and comments', () => {
    const text = [
      'a.b = 1 # c = 2',
      '[t."quoted.key".\'lit\']',
      's = """',
      '[not.a.table]',
      'x = "\\"""" ',
      'arr = [ 1, # comment',
      '  "]", { k = [2] } ]',
      'it = { x = 1, y.z = "}" }',
      'd = 1979-05-27 07:32:00Z',
      '[[arr.tbl]]',
      '"\\u0041" = true',
    ].join('\n');
    const statements = scanStatements(text, 'doc');
    expect(statements).toMatchObject([
      { kind: 'key', path: ['a', 'b'], tableDepth: 0, inlineTable: false, line: 1 },
      { kind: 'table', path: ['t', 'quoted.key', 'lit'], line: 2 },
      { kind: 'key', path: ['t', 'quoted.key', 'lit', 's'], tableDepth: 3, inlineTable: false, line: 3 },
      { kind: 'key', path: ['t', 'quoted.key', 'lit', 'arr'], tableDepth: 3, inlineTable: false, line: 6 },
      { kind: 'key', path: ['t', 'quoted.key', 'lit', 'it'], tableDepth: 3, inlineTable: true, line: 8 },
      { kind: 'key', path: ['t', 'quoted.key', 'lit', 'd'], tableDepth: 3, inlineTable: false, line: 9 },
      { kind: 'array-table', path: ['arr', 'tbl'], line: 10 },
      { kind: 'key', path: ['arr', 'tbl', 'A'], tableDepth: 2, inlineTable: false, line: 11 },
    ]);
    const value = (key: string): string | undefined => {
      const s = statements.find((x) => x.kind === 'key' && x.path[x.path.length - 1] === key);
      return s?.kind === 'key' ? text.slice(s.valueStart, s.valueEnd) : undefined;
    };
    expect(value('arr')).toBe('[ 1, # comment\n  "]", { k = [2] } ]');
    expect(value('it')).toBe('{ x = 1, y.z = "}" }');
    expect(value('A')).toBe('true');
  });
});
