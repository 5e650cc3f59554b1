/**
 * Every config we produce must be accepted by the real containerd that reads it, and containerd's own
 * reading (`config dump`) must show our handler as intended.
 */
import * as TOML from '@iarna/toml';
import { addContainerdRuntime, addK3sTemplateRuntime, WASM_POD_ANNOTATIONS } from '../../lib/toml';
import { containerdBinary, containerdConfigDump } from '../support/containerd-binaries';
import { fixture, SPEC } from './helpers';

type Table = Record<string, any>;

/** Where each containerd major prints runtime handlers in its dump (1.6 migrates to v2, 2.x to v3). */
const DUMP_RUNTIMES: Record<1 | 2, string[]> = {
  1: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  2: ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};

/** What microk8s substitutes into containerd-template.toml before containerd reads it. */
function renderMicrok8s(template: string): string {
  return template
    .replace(/\$\{SNAP_DATA\}/g, '/var/snap/microk8s/current')
    .replace(/\$\{SNAPSHOTTER\}/g, 'overlayfs')
    .replace(/\$\{RUNTIME\}/g, 'runc')
    .replace(/\$\{RUNTIME_TYPE\}/g, 'io.containerd.runc.v2');
}

function expectHandlerInDump(major: 1 | 2, config: string, systemdCgroup: boolean | undefined): void {
  const dump = TOML.parse(containerdConfigDump(major, config)) as Table;
  const runtime = [...DUMP_RUNTIMES[major], SPEC.handler].reduce<any>((node, key) => node?.[key], dump);
  expect(runtime).toMatchObject({
    runtime_type: 'io.containerd.runc.v2',
    privileged_without_host_devices: false,
    pod_annotations: WASM_POD_ANNOTATIONS,
  });
  expect(runtime.options.BinaryName).toBe(SPEC.binaryPath);
  if (systemdCgroup !== undefined) expect(runtime.options.SystemdCgroup).toBe(systemdCgroup);
}

const CASES: Array<{ file: string; readers: Array<1 | 2>; systemdCgroup?: boolean; render?: (text: string) => string }> = [
  { file: 'containerd-1.6-default.toml', readers: [1, 2], systemdCgroup: false },
  { file: 'containerd-2-default.toml', readers: [2], systemdCgroup: false },
  { file: 'knawd-original.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'v1-legacy.toml', readers: [1], systemdCgroup: true },
  { file: 'comments-everywhere.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'crlf.toml', readers: [1, 2], systemdCgroup: false },
  { file: 'no-final-newline.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'dotted-keys.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'k3s-rendered-v2.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'microk8s-containerd-template.toml', readers: [1, 2], render: renderMicrok8s },
];

it.each([1, 2] as const)('containerd %d.x is installed (else run `npm run tools`)', (major) => {
  expect(containerdBinary(major)).toMatch(/containerd$/);
});

describe.each(CASES)('real containerd reads the patched $file', ({ file, readers, systemdCgroup, render }) => {
  it.each(readers)('containerd %d.x', (major) => {
    const patched = addContainerdRuntime(fixture(file), { ...SPEC, containerdMajor: major }).text;
    expectHandlerInDump(major, render ? render(patched) : patched, systemdCgroup);
  });
});

describe('real containerd reads the minimal config we create', () => {
  it.each([1, 2] as const)('containerd %d.x', (major) => {
    expectHandlerInDump(major, addContainerdRuntime(undefined, { ...SPEC, containerdMajor: major }).text, undefined);
  });
});

describe('real containerd reads a k3s template once k3s rendered it', () => {
  /** Stands in for k3s' base template: its rendered config without the handlers k3s found on PATH. */
  const base: Record<2 | 3, () => string> = {
    2: () => fixture('k3s-rendered-v2.toml').split('\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes."crun"]')[0],
    3: () => fixture('containerd-2-default.toml'),
  };

  function render(template: string, version: 2 | 3): string {
    return template.replace('{{ template "base" . }}', base[version]()).replace(/\{\{ \.SystemdCgroup \}\}/g, 'true');
  }

  it.each([
    ['k3s-config.toml.tmpl', 2, [1, 2]],
    ['k3s-config-v3.toml.tmpl', 3, [2]],
    [undefined, 2, [1, 2]],
    [undefined, 3, [2]],
  ] as const)('template %s (version %d)', (file, version, readers) => {
    const template = file === undefined ? undefined : fixture(file);
    const patched = addK3sTemplateRuntime(template, { ...SPEC, configVersion: version }).text;
    for (const major of readers) expectHandlerInDump(major, render(patched, version), undefined);
  });
});

describe('real containerd rejects what we refuse to produce', () => {
  it('a handler defined twice (why an existing definition is refused)', () => {
    const twice = addContainerdRuntime(fixture('knawd-original.toml'), { ...SPEC, containerdMajor: 1 }).text.replace(
      /# END .*/,
      (end) => `[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]\n${end}`,
    );
    expect(() => containerdConfigDump(1, twice)).toThrow(/duplicated tables|already exists|redefin/i);
  });
});
