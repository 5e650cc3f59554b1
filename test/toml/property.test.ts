/**
 * Random TOML documents around a minimal containerd config: tables, keys, comments, blank lines, indentation,
 * LF, CRLF or mixed line endings, with or without a final line break.
 */
import * as TOML from '@iarna/toml';
import fc from 'fast-check';
import { addContainerdRuntime, removeContainerdRuntime } from '../../lib/toml';
import { SPEC } from './helpers';

const RUNTIMES: Record<2 | 3, string> = {
  2: 'plugins."io.containerd.grpc.v1.cri".containerd.runtimes',
  3: "plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes",
};

const name = fc.stringMatching(/^[a-z][a-z0-9_-]{0,8}$/);
const comment = fc
  .string({ maxLength: 30 })
  .filter((text) => !/[\u0000-\u001f\u007f]/.test(text) && !/[\ud800-\udfff]/.test(text))
  .map((text) => `#${text}`);
const value = fc.oneof(
  fc.integer().map(String),
  fc.boolean().map(String),
  fc.stringMatching(/^[ -~]{0,12}$/).map((text) => JSON.stringify(text)),
  fc.array(fc.integer({ min: 0, max: 99 }), { maxLength: 3 }).map((items) => `[${items.join(', ')}]`),
);
const indent = fc.constantFrom('', '  ', '\t');
const trailing = fc.option(comment, { nil: undefined }).map((c) => (c === undefined ? '' : ` ${c}`));
const filler = fc.array(fc.oneof(comment, fc.constant(''), fc.constant('   ')), { maxLength: 3 });

const keyLines = fc
  .uniqueArray(name, { maxLength: 4 })
  .chain((keys) => fc.tuple(...keys.map((key) => fc.tuple(indent, value, trailing, filler).map(([i, v, t, f]) => [`${i}${key} = ${v}${t}`, ...f]))))
  .map((groups) => groups.flat());

const table = (header: string) => fc.tuple(filler, trailing, keyLines).map(([before, t, keys]) => [...before, `[${header}]${t}`, ...keys]);

const documents = fc
  .record({
    version: fc.constantFrom(2, 3) as fc.Arbitrary<2 | 3>,
    breaks: fc.oneof(
      fc.constantFrom('\n', '\r\n').map((eol) => [eol]),
      fc.array(fc.constantFrom('\n', '\r\n'), { minLength: 2, maxLength: 8 }),
    ),
    finalNewline: fc.boolean(),
    head: filler,
    tableNames: fc.uniqueArray(name, { maxLength: 4 }),
    systemdCgroup: fc.option(fc.boolean(), { nil: undefined }),
    runcPosition: fc.nat(),
  })
  .chain((doc) =>
    fc.tuple(fc.constant(doc), fc.tuple(...doc.tableNames.map((t) => table(`extra.${t}`)), table(`${RUNTIMES[doc.version]}.runc`))),
  )
  .map(([doc, tables]) => {
    const runc = tables.pop() as string[];
    if (doc.systemdCgroup !== undefined) runc.push(`[${RUNTIMES[doc.version]}.runc.options]`, `SystemdCgroup = ${doc.systemdCgroup}`);
    tables.splice(doc.runcPosition % (tables.length + 1), 0, runc);
    const lines = [...doc.head, `version = ${doc.version}`, ...tables.flat()];
    const lineBreak = (i: number) => doc.breaks[i % doc.breaks.length];
    const text = lines.map((line, i) => (i < lines.length - 1 || doc.finalNewline ? line + lineBreak(i) : line)).join('');
    return { ...doc, text };
  });

function handlerOf(text: string, version: 2 | 3): any {
  const cri = version === 2 ? 'io.containerd.grpc.v1.cri' : 'io.containerd.cri.v1.runtime';
  return (TOML.parse(text) as any).plugins[cri].containerd.runtimes[SPEC.handler];
}

describe('containerd patching over generated documents', () => {
  it('add then remove is byte-identical, add is idempotent, and the result holds our handler', () => {
    fc.assert(
      fc.property(documents, ({ text, version, systemdCgroup }) => {
        expect(() => TOML.parse(text)).not.toThrow();
        const added = addContainerdRuntime(text, { ...SPEC, containerdMajor: 2 });
        expect(added.changed).toBe(true);
        expect(added.text.startsWith(text)).toBe(true);
        expect(addContainerdRuntime(added.text, { ...SPEC, containerdMajor: 2 })).toEqual({ text: added.text, changed: false });
        expect(removeContainerdRuntime(added.text, SPEC.handler)).toEqual({ text, changed: true, deletable: false });
        const handler = handlerOf(added.text, version);
        expect(handler.options.BinaryName).toBe(SPEC.binaryPath);
        expect(handler.options.SystemdCgroup).toBe(systemdCgroup);
      }),
      { numRuns: 300 },
    );
  });

  it('blank documents become a minimal config and come back exactly', () => {
    const blank = fc.array(fc.constantFrom(' ', '\t', '\n', '\r\n'), { maxLength: 6 }).map((parts) => parts.join(''));
    fc.assert(
      fc.property(blank, fc.constantFrom(1, 2) as fc.Arbitrary<1 | 2>, (text, major) => {
        const added = addContainerdRuntime(text, { ...SPEC, containerdMajor: major });
        expect(handlerOf(added.text, major === 1 ? 2 : 3).options.BinaryName).toBe(SPEC.binaryPath);
        expect(removeContainerdRuntime(added.text, SPEC.handler)).toEqual({ text, changed: true, deletable: true });
      }),
      { numRuns: 200 },
    );
  });
});
