/**
 * Every config we produce must be accepted by the real containerd that reads it, and containerd's own
 * reading (`config dump`) must show our handler as intended.
 */
import * as TOML from '@iarna/toml';
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { dirname, join } from 'path';
import { addContainerdRuntime, addK3sTemplateRuntime, findDropInLocation, renderContainerdDropIn, WASM_POD_ANNOTATIONS } from '../../lib/toml';
import { installHostBinary } from '../support/chroot-runner';
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

describe('real containerd 2.x reads our drop-in where the config imports a directory, and nothing else changes', () => {
  const K3S_RENDERED = '/var/lib/rancher/k3s/agent/etc/containerd/config.toml';

  /** containerd's reading of the config at `configPath` in a node root holding `files` (absolute imports resolve there). */
  function dumpOnNode(reader: ContainerdReader, configPath: string, files: Record<string, string>): Table {
    const root = mkdtempSync(join(tmpdir(), 'knawd-dropin-'));
    try {
      for (const [path, text] of Object.entries(files)) {
        mkdirSync(dirname(join(root, path)), { recursive: true });
        writeFileSync(join(root, path), text);
      }
      installHostBinary(root, '/usr/bin/containerd', containerdBinary(reader));
      return TOML.parse(execFileSync('chroot', [root, '/usr/bin/containerd', '--config', configPath, 'config', 'dump'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })) as Table;
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }

  const withoutHandler = (dump: Table): Table => {
    const copy = JSON.parse(JSON.stringify(dump));
    delete copy.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes[SPEC.handler];
    return copy;
  };

  it.each<[string, string, string, ContainerdReader[], boolean]>([
    ["containerd 2.2's default config", 'containerd-2-default.toml', '/etc/containerd/config.toml', [2, '2.3'], false],
    ["containerd 2.3's default config (version 4)", 'containerd-2.3-v4.toml', '/etc/containerd/config.toml', ['2.3'], false],
    ["k3s' rendered config importing config-v3.toml.d", 'k3s-rendered-v3-imports.toml', K3S_RENDERED, [2, '2.3'], true],
  ])('%s', (_name, file, configPath, readers, systemdCgroup) => {
    const config = fixture(file);
    const { location } = findDropInLocation(config, configPath, SPEC.handler);
    expect(location).toBeDefined();
    const dropIn = renderContainerdDropIn({ ...SPEC, config: { path: configPath, text: config }, dropIns: [], containerdMinor: 3 });
    for (const reader of readers) {
      const before = dumpOnNode(reader, configPath, { [configPath]: config });
      const after = dumpOnNode(reader, configPath, { [configPath]: config, [location!.path]: dropIn });
      const handler = after.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes[SPEC.handler];
      expect(handler).toMatchObject({ runtime_type: 'io.containerd.runc.v2', pod_annotations: WASM_POD_ANNOTATIONS, options: { BinaryName: SPEC.binaryPath, SystemdCgroup: systemdCgroup } });
      expect(withoutHandler(after)).toEqual(before);
    }
  });

  it("the dump's imports line is not what is read: a config without imports shows the conf.d glob, and ignores a drop-in there", () => {
    const config = fixture('containerd-2-no-imports.toml');
    const dropIn = renderContainerdDropIn({ ...SPEC, config: { path: '/etc/containerd/config.toml', text: config }, dropIns: [] });
    for (const reader of [2, '2.3'] as const) {
      const dump = dumpOnNode(reader, '/etc/containerd/config.toml', { '/etc/containerd/config.toml': config, '/etc/containerd/conf.d/50-knawd-crun-wasm.toml': dropIn });
      expect(dump.imports).toEqual(['/etc/containerd/conf.d/*.toml']);
      expect(Object.keys(dump.plugins['io.containerd.cri.v1.runtime'].containerd.runtimes)).toEqual(['runc']);
    }
  });

  it('containerd 1.6 replaces the whole CRI section with an imported one (why containerd 1.x never gets a drop-in)', () => {
    const config = `${fixture('containerd-1.6-systemd-cgroup.toml').replace('imports = []', 'imports = ["/etc/containerd/conf.d/*.toml"]')}`;
    const dropIn = 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]\n  runtime_type = "io.containerd.runc.v2"\n';
    const dump = dumpOnNode(1, '/etc/containerd/config.toml', { '/etc/containerd/config.toml': config, '/etc/containerd/conf.d/50-knawd-crun-wasm.toml': dropIn });
    const cri = dump.plugins['io.containerd.grpc.v1.cri'];
    expect(cri.containerd.runtimes).toHaveProperty(SPEC.handler);
    // The config's runc (SystemdCgroup = true) is gone with the rest of its CRI section.
    expect(cri.containerd.runtimes.runc?.options?.SystemdCgroup).not.toBe(true);
  });
});
