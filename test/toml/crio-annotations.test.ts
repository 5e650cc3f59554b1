import * as TOML from '@iarna/toml';
import { CRUN_WASM_ANNOTATIONS, crioAnnotationDecision, parseCrioVersion, renderCrioDropIn, wasmAnnotationFilter } from '../../lib/toml';
import { patchError, SPEC } from './helpers';

function filterOf(text: string): string {
  const version = parseCrioVersion(text);
  if (!version) throw new Error(`${text} did not parse`);
  return wasmAnnotationFilter(version);
}

describe('parseCrioVersion', () => {
  it.each([
    ['cri-o://1.36.3', '1.36.3', false],
    ['cri-o://v1.29.4', '1.29.4', false],
    ['cri-o://1.25.4-4.rhaos4.12.gitb9319a2.el8', '1.25.4-4.rhaos4.12.gitb9319a2.el8', false],
    ['cri-o://1.30.0-dev', '1.30.0-dev', true],
    ['crio version 1.36.3\n   GitCommit:      unknown\n', '1.36.3', false],
    ['crio version 1.28.1\nVersion:        1.28.1\nGitCommit:      unknown\n', '1.28.1', false],
    ['Version:          1.23.2\nGitCommit:        9a36bb83\n', '1.23.2', false],
  ])('%j', (text, version, prerelease) => {
    expect(parseCrioVersion(text)).toMatchObject({ text: version, prerelease });
  });

  it.each([undefined, '', 'containerd://1.7.22', 'docker://24.0.7', 'crio version unknown', 'cri-o://1.36'])('%j is not a CRI-O version', (text) => {
    expect(parseCrioVersion(text)).toBeUndefined();
  });
});

describe('which CRI-O releases filter crun WASM annotations (the CVE-2024-3154 fix)', () => {
  // Every boundary of the rule, both sides.
  it.each([
    ['1.23.2', 'passes'],
    ['1.24.0', 'passes'],
    ['1.24.6', 'passes'],
    ['1.25.0', 'unknown'],
    ['1.25.4-4.rhaos4.12.gitb9319a2.el8', 'unknown'],
    ['1.26.5', 'unknown'],
    ['1.27.0', 'passes'],
    ['1.27.5', 'passes'],
    ['1.27.6-rc.1', 'unknown'],
    ['1.27.6', 'filters'],
    ['1.27.6-3.rhaos4.14.git1234567.el9', 'filters'],
    ['1.27.7', 'filters'],
    ['1.28.5', 'passes'],
    ['1.28.6', 'filters'],
    ['1.29.0', 'passes'],
    ['1.29.3', 'passes'],
    ['1.29.4-dev', 'unknown'],
    ['1.29.4', 'filters'],
    ['1.29.13', 'filters'],
    ['1.30.0-dev', 'unknown'],
    ['1.30.0', 'filters'],
    ['1.31.0-dev', 'filters'],
    ['1.34.0', 'filters'],
    ['1.36.3', 'filters'],
    ['2.0.0', 'filters'],
  ])('CRI-O %s: %s', (version, expected) => {
    expect(filterOf(`cri-o://${version}`)).toBe(expected);
  });
});

describe('crioAnnotationDecision', () => {
  it('a release that filters gets exactly the variant key and the run.oci. prefix, never run.oci.handler', () => {
    const decision = crioAnnotationDecision(parseCrioVersion('cri-o://1.36.3'), 'node object');
    expect(decision.allowedAnnotations).toEqual(['module.wasm.image/variant', 'run.oci.']);
    expect(decision.allowedAnnotations).toBe(CRUN_WASM_ANNOTATIONS);
    expect(decision.allowedAnnotations).not.toContain('run.oci.handler');
    expect(decision.note).toBe('CRI-O 1.36.3 (node object) filters annotations the handler does not allow: writing allowed_annotations = ["module.wasm.image/variant", "run.oci."]');
    expect(decision.warning).toBeUndefined();
  });

  it('a release without the fix gets no list: it would drop the handler, and passes the annotations anyway', () => {
    const decision = crioAnnotationDecision(parseCrioVersion('crio version 1.24.6'), 'host crio --version');
    expect(decision).toMatchObject({ allowedAnnotations: undefined, filter: 'passes' });
    expect(decision.warning).toBeUndefined();
    expect(decision.note).toMatch(/^CRI-O 1\.24\.6 \(host crio --version\) passes crun's WASM annotations through/);
  });

  it.each([
    ['an unknown version', undefined, /^the CRI-O version is unknown/],
    ['a 1.26 build', parseCrioVersion('cri-o://1.26.5-11.rhaos4.13.git1234567.el8'), /^CRI-O 1\.26\.5-11\.rhaos4\.13\.git1234567\.el8 \(node object\) may be a build with the CVE-2024-3154 fix/],
  ])('%s gets the form every release accepts (no list) and a warning saying what to check', (_name, version, warning) => {
    const decision = crioAnnotationDecision(version, 'node object');
    expect(decision).toMatchObject({ allowedAnnotations: undefined, filter: 'unknown' });
    expect(decision.warning).toMatch(warning);
    expect(decision.warning).toContain('exec format error');
    expect(decision.warning).toContain('allowed_annotations = ["module.wasm.image/variant", "run.oci."]');
  });
});

describe('renderCrioDropIn with allowed_annotations', () => {
  it('writes the list as one TOML array', () => {
    const dropIn = renderCrioDropIn({ ...SPEC, allowedAnnotations: CRUN_WASM_ANNOTATIONS });
    expect(dropIn.text).toContain('  allowed_annotations = ["module.wasm.image/variant", "run.oci."]\n');
    expect((TOML.parse(dropIn.text) as any).crio.runtime.runtimes['crun-wasm'].allowed_annotations).toEqual(['module.wasm.image/variant', 'run.oci.']);
  });

  it('leaves the key out without a list', () => {
    expect(renderCrioDropIn(SPEC).text).not.toContain('allowed_annotations');
  });

  it.each([
    [[], /invalid allowed_annotations \[\]/],
    [['run.oci.', 'run.oci.'], /invalid allowed_annotations .*\("run\.oci\."\): .*each once/],
    [['module.wasm.image/variant', 'a"b'], /\("a\\"b"\)/],
    [['*.wasm.*'], /\("\*\.wasm\.\*"\)/],
  ])('refuses %j', (annotations, message) => {
    expect(patchError(() => renderCrioDropIn({ ...SPEC, allowedAnnotations: annotations })).message).toMatch(message);
  });
});
