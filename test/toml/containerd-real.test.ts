/**
 * Every config we produce must be accepted by the real containerd that reads it, and containerd's own
 * reading (`config dump`) must show our handler as intended.
 */
import * as TOML from '@iarna/toml';
import { addContainerdRuntime, addK3sTemplateRuntime, WASM_POD_ANNOTATIONS } from '../../lib/toml';
import { containerdBinary, containerdConfigDump, ContainerdReader } from '../support/containerd-binaries';
import { fixture, SPEC } from './helpers';

type Table = Record<string, any>;

/** Where each containerd prints runtime handlers in its dump (1.6 migrates to v2, 2.x to v3, 2.3 to v4). */
const DUMP_RUNTIMES: Record<ContainerdReader, string[]> = {
  1: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'],
  2: ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
  '2.3': ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'],
};

/** The patch options for a reader: its major, and for 2.3 its minor (version 4 needs it). */
function readerSpec(reader: ContainerdReader): { containerdMajor: 1 | 2; containerdMinor?: number } {
  return reader === '2.3' ? { containerdMajor: 2, containerdMinor: 3 } : { containerdMajor: reader };
}

/** What microk8s substitutes into containerd-template.toml before containerd reads it. */
function renderMicrok8s(template: string): string {
  return template
    .replace(/\$\{SNAP_DATA\}/g, '/var/snap/microk8s/current')
    .replace(/\$\{SNAPSHOTTER\}/g, 'overlayfs')
    .replace(/\$\{RUNTIME\}/g, 'runc')
    .replace(/\$\{RUNTIME_TYPE\}/g, 'io.containerd.runc.v2');
}

function expectHandlerInDump(major: ContainerdReader, config: string, systemdCgroup: boolean | undefined): void {
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

const CASES: Array<{ file: string; readers: ContainerdReader[]; systemdCgroup?: boolean; render?: (text: string) => string }> = [
  { file: 'containerd-1.6-default.toml', readers: [1, 2], systemdCgroup: false },
  { file: 'containerd-2-default.toml', readers: [2, '2.3'], systemdCgroup: false },
  { file: 'containerd2-version2-2x-names.toml', readers: [2, '2.3'], systemdCgroup: true },
  { file: 'containerd-2.3-v4.toml', readers: ['2.3'], systemdCgroup: false },
  { file: 'version1-explicit.toml', readers: [1], systemdCgroup: true },
  { file: 'dotted-runtimes.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'dotted-cri-under-plugins.toml', readers: [1, 2, '2.3'], systemdCgroup: true },
  { file: 'knawd-original.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'v1-legacy.toml', readers: [1], systemdCgroup: true },
  { file: 'comments-everywhere.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'crlf.toml', readers: [1, 2], systemdCgroup: false },
  { file: 'no-final-newline.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'dotted-keys.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'k3s-rendered-v2.toml', readers: [1, 2], systemdCgroup: true },
  { file: 'microk8s-containerd-template.toml', readers: [1, 2], render: renderMicrok8s },
];

it.each([1, 2, '2.3'] as const)('containerd %s is installed (else run `npm run tools`)', (major) => {
  expect(containerdBinary(major)).toMatch(/containerd$/);
});

describe.each(CASES)('real containerd reads the patched $file', ({ file, readers, systemdCgroup, render }) => {
  it.each(readers)('containerd %s', (major) => {
    const patched = addContainerdRuntime(fixture(file), { ...SPEC, ...readerSpec(major) }).text;
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

describe('why the plugin name comes from the file, not from its version line', () => {
  it('containerd 2.x ignores a handler added under the 1.x name to a version 2 file that uses 2.x names', () => {
    const file = fixture('containerd2-version2-2x-names.toml');
    const under1x = `${file}\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.${SPEC.handler}]\n  runtime_type = "io.containerd.runc.v2"\n`;
    const dump = TOML.parse(containerdConfigDump(2, under1x)) as Table;
    expect(Object.keys(dump.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes)).toEqual(['runc']);
  });

  it('containerd 2.2 refuses a version 4 file, which 2.3 reads', () => {
    expect(() => containerdConfigDump(2, fixture('containerd-2.3-v4.toml'))).toThrow(/version/);
    expect(containerdConfigDump('2.3', fixture('containerd-2.3-v4.toml'))).toMatch(/^version = 4$/m);
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
