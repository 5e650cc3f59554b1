import * as TOML from '@iarna/toml';
import { addK3sTemplateRuntime, K3S_TEMPLATE_BASE, removeK3sTemplateRuntime } from '../../lib/toml';
import { expectOnlyBlockAppended, fixture, patchError, SPEC } from './helpers';

const V2_HANDLER = ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', SPEC.handler];
const V3_HANDLER = ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes', SPEC.handler];

function handlerIn(text: string, path: string[]): any {
  const toml = text.replace(/^\{\{.*\}\}$/gm, '').replace(/= \{\{ \.SystemdCgroup \}\}/g, '= true');
  return path.reduce<any>((node, key) => node?.[key], TOML.parse(toml));
}

describe('a k3s template that does not exist yet', () => {
  it.each([
    [2, V2_HANDLER],
    [3, V3_HANDLER],
  ] as const)('is created from the base template plus our block (version %d)', (configVersion, path) => {
    const added = addK3sTemplateRuntime(undefined, { ...SPEC, configVersion });
    expect(added.changed).toBe(true);
    expectOnlyBlockAppended(K3S_TEMPLATE_BASE, added.text, SPEC.handler);
    expect(handlerIn(added.text, path).options.BinaryName).toBe(SPEC.binaryPath);
    expect(addK3sTemplateRuntime(added.text, { ...SPEC, configVersion })).toEqual({ text: added.text, changed: false });
    expect(removeK3sTemplateRuntime(added.text, SPEC.handler)).toEqual({ text: K3S_TEMPLATE_BASE, changed: true, deletable: true });
  });

  it('has nothing to remove', () => {
    expect(removeK3sTemplateRuntime(undefined, SPEC.handler)).toEqual({ text: '', changed: false, deletable: true });
  });
});

describe.each([
  ['k3s-config.toml.tmpl', 2, V2_HANDLER],
  ['k3s-config-v3.toml.tmpl', 3, V3_HANDLER],
] as const)('the existing template %s', (file, configVersion, path) => {
  it('gets our block appended and removed again, byte for byte', () => {
    const original = fixture(file);
    const added = addK3sTemplateRuntime(original, { ...SPEC, configVersion });
    expectOnlyBlockAppended(original, added.text, SPEC.handler);
    expect(handlerIn(added.text, path).pod_annotations).toContain('module.wasm.image/variant');
    expect(addK3sTemplateRuntime(added.text, { ...SPEC, configVersion }).changed).toBe(false);
    const removed = removeK3sTemplateRuntime(added.text, SPEC.handler);
    expect(removed).toEqual({ text: original, changed: true, deletable: false });
    expect(removeK3sTemplateRuntime(removed.text, SPEC.handler).changed).toBe(false);
  });
});

describe("k3s' rendered config.toml", () => {
  const rendered = fixture('k3s-rendered-v2.toml');

  it("supplies the host's SystemdCgroup", () => {
    const added = addK3sTemplateRuntime(undefined, { ...SPEC, configVersion: 2, renderedConfig: rendered });
    expect(handlerIn(added.text, V2_HANDLER).options).toEqual({ BinaryName: SPEC.binaryPath, SystemdCgroup: true });
  });

  it('refuses a handler k3s already renders itself', () => {
    const error = patchError(() => addK3sTemplateRuntime(undefined, { handler: 'crun', binaryPath: SPEC.binaryPath, configVersion: 2, renderedConfig: rendered }));
    expect(error.message).toMatch(/k3s already defines runtime "crun" in its rendered config.toml \(line 34\)/);
  });

  it('accepts our own handler rendered from our block, but not twice', () => {
    const template = addK3sTemplateRuntime(undefined, { ...SPEC, configVersion: 2 }).text;
    const once = rendered + template.slice(K3S_TEMPLATE_BASE.length);
    expect(addK3sTemplateRuntime(template, { ...SPEC, configVersion: 2, renderedConfig: once }).changed).toBe(true);
    const twice = once + template.slice(K3S_TEMPLATE_BASE.length);
    expect(patchError(() => addK3sTemplateRuntime(template, { ...SPEC, configVersion: 2, renderedConfig: twice })).message).toMatch(
      /k3s already defines runtime "crun-wasm"/,
    );
  });
});

describe('refused templates', () => {
  it('a template for the other config version', () => {
    const template = `${K3S_TEMPLATE_BASE}version = 2\n`;
    expect(patchError(() => addK3sTemplateRuntime(template, { ...SPEC, configVersion: 3 })).message).toMatch(
      /sets version = 2 but is used as a version 3 template/,
    );
  });

  it('a template that is not TOML even without its actions', () => {
    const template = `${K3S_TEMPLATE_BASE}{{ if .X }}\n[a]\nb = 1\n{{ else }}\n[a]\nb = 2\n{{ end }}\n`;
    expect(patchError(() => addK3sTemplateRuntime(template, { ...SPEC, configVersion: 2 })).message).toMatch(
      /read as TOML without its template actions\) is not valid TOML \(line 6/,
    );
  });

  it('a template that defines our handler itself', () => {
    const template = `${K3S_TEMPLATE_BASE}[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'crun-wasm']\n  runtime_type = "x"\n`;
    expect(patchError(() => addK3sTemplateRuntime(template, { ...SPEC, configVersion: 3 })).message).toMatch(/already defined .*line 2/);
  });
});
