import * as TOML from '@iarna/toml';
import { addContainerdRuntime, removeContainerdRuntime, WASM_POD_ANNOTATIONS } from '../../lib/toml';
import { expectOnlyBlockAppended, fixture, patchError, SPEC } from './helpers';

type Table = Record<string, any>;

const V2 = ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes'];
const V3 = ['plugins', 'io.containerd.cri.v1.runtime', 'containerd', 'runtimes'];
const V1 = ['plugins', 'cri', 'containerd', 'runtimes'];

function at(root: Table, path: string[]): any {
  return path.reduce<any>((node, key) => node?.[key], root);
}

/** Fixtures we patch, the containerd major that reads them, where the handler lands and the host's SystemdCgroup. */
const ACCEPTED: Array<{ file: string; major: 1 | 2; runtimes: string[]; systemdCgroup?: boolean }> = [
  { file: 'containerd-1.6-default.toml', major: 1, runtimes: V2, systemdCgroup: false },
  { file: 'knawd-original.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'v1-legacy.toml', major: 1, runtimes: V1, systemdCgroup: true },
  { file: 'comments-everywhere.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'crlf.toml', major: 1, runtimes: V2, systemdCgroup: false },
  { file: 'no-final-newline.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'dotted-keys.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'dotted-runtimes.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'dotted-cri-under-plugins.toml', major: 1, runtimes: V2, systemdCgroup: true },
  { file: 'dotted-cri-under-plugins.toml', major: 2, runtimes: V2, systemdCgroup: true },
  { file: 'version1-explicit.toml', major: 1, runtimes: V1, systemdCgroup: true },
  { file: 'microk8s-containerd-template.toml', major: 1, runtimes: V2 },
  { file: 'k3s-rendered-v2.toml', major: 2, runtimes: V2, systemdCgroup: true },
  { file: 'containerd-2-default.toml', major: 2, runtimes: V3, systemdCgroup: false },
  // version 2, but containerd 2.x names: the handler goes where containerd 2.x reads them.
  { file: 'containerd2-version2-2x-names.toml', major: 2, runtimes: V3, systemdCgroup: true },
  { file: 'containerd-2.3-v4.toml', major: 2, runtimes: V3, systemdCgroup: false },
];

describe.each(ACCEPTED)('addContainerdRuntime on $file for containerd $major.x', ({ file, major, runtimes, systemdCgroup }) => {
  const options = { ...SPEC, containerdMajor: major };
  let original: string;
  let added: ReturnType<typeof addContainerdRuntime>;
  beforeAll(() => {
    original = fixture(file);
    added = addContainerdRuntime(original, options);
  });

  it('keeps every byte of the original and appends only our block', () => {
    expect(added.changed).toBe(true);
    expectOnlyBlockAppended(original, added.text, SPEC.handler);
  });

  it('defines the handler with the WASM annotations, our binary and the host cgroup driver', () => {
    const runtime = at(TOML.parse(added.text), [...runtimes, SPEC.handler]);
    expect(runtime).toEqual({
      runtime_type: 'io.containerd.runc.v2',
      privileged_without_host_devices: false,
      pod_annotations: WASM_POD_ANNOTATIONS,
      options: systemdCgroup === undefined ? { BinaryName: SPEC.binaryPath } : { BinaryName: SPEC.binaryPath, SystemdCgroup: systemdCgroup },
    });
  });

  it('changes nothing when added again', () => {
    expect(addContainerdRuntime(added.text, options)).toEqual({ text: added.text, changed: false });
  });

  it('restores the original byte for byte on removal, and then has nothing more to remove', () => {
    const removed = removeContainerdRuntime(added.text, SPEC.handler);
    expect(removed).toEqual({ text: original, changed: true, deletable: false });
    expect(removeContainerdRuntime(removed.text, SPEC.handler)).toEqual({ text: original, changed: false, deletable: false });
  });

  it('replaces the block in place when the binary path changes', () => {
    const moved = addContainerdRuntime(added.text, { ...options, binaryPath: '/opt/knawd/bin/crun-wasmedge' });
    expect(moved.changed).toBe(true);
    expectOnlyBlockAppended(original, moved.text, SPEC.handler);
    expect(at(TOML.parse(moved.text), [...runtimes, SPEC.handler, 'options', 'BinaryName'])).toBe('/opt/knawd/bin/crun-wasmedge');
    expect(removeContainerdRuntime(moved.text, SPEC.handler).text).toBe(original);
  });
});

describe('addContainerdRuntime with several handlers', () => {
  it.each(['knawd-original.toml', 'no-final-newline.toml', 'crlf.toml'])('adds and removes them independently in %s', (file) => {
    const original = fixture(file);
    const one = addContainerdRuntime(original, { ...SPEC, containerdMajor: 1 }).text;
    const both = addContainerdRuntime(one, { handler: 'crun-wasmedge', binaryPath: '/opt/knawd/bin/crun-wasmedge', containerdMajor: 1 }).text;
    expect(removeContainerdRuntime(both, 'crun-wasmedge').text).toBe(one);
    const onlySecond = removeContainerdRuntime(both, SPEC.handler).text;
    expect(onlySecond).toBe(addContainerdRuntime(original, { handler: 'crun-wasmedge', binaryPath: '/opt/knawd/bin/crun-wasmedge', containerdMajor: 1 }).text);
    expect(removeContainerdRuntime(onlySecond, 'crun-wasmedge').text).toBe(original);
  });
});

describe('a host running containerd on its defaults', () => {
  it.each([
    [undefined, 1, 2, true],
    ['', 2, 3, true],
    ['  \n\n', 1, 2, true],
    ['# nothing configured yet\n', 2, 3, false],
  ] as const)('config %j with containerd %d gets a minimal version %d config', (config, major, version, deletable) => {
    const added = addContainerdRuntime(config, { ...SPEC, containerdMajor: major });
    expect(added.changed).toBe(true);
    const parsed = TOML.parse(added.text) as Table;
    expect(parsed.version).toBe(version);
    expect(at(parsed, [...(version === 2 ? V2 : V3), SPEC.handler, 'options'])).toEqual({ BinaryName: SPEC.binaryPath });
    expectOnlyBlockAppended(config ?? '', added.text, SPEC.handler);
    expect(addContainerdRuntime(added.text, { ...SPEC, containerdMajor: major }).changed).toBe(false);
    expect(removeContainerdRuntime(added.text, SPEC.handler)).toEqual({ text: config ?? '', changed: true, deletable });
  });

  it('has nothing to remove from a missing config', () => {
    expect(removeContainerdRuntime(undefined, SPEC.handler)).toEqual({ text: '', changed: false, deletable: true });
  });
});

describe('refused inputs', () => {
  it.each([
    ['existing-handler.toml', /runtime "crun-wasm" is already defined .*line 7.*outside the knawd-deployer block/],
    ['inline-runtimes.toml', /runtimes is an inline table \(line 5\)/],
    ['invalid.toml', /is not valid TOML \(line 4, column \d+: .+\)/],
    ['unknown-version.toml', /unsupported version = 5; accepted are version = 1 \(or no version key\) and 2 \(containerd 1.x\), 2 and 3 \(containerd 2.x\), 4 \(containerd 2.3 and later\)/],
  ])('%s', (file, message) => {
    const error = patchError(() => addContainerdRuntime(fixture(file), { ...SPEC, containerdMajor: 2 }));
    expect(error.message).toMatch(message);
  });

  it('a handler defined inside an inline runtimes table', () => {
    const config = [
      'version = 2',
      '[plugins."io.containerd.grpc.v1.cri".containerd]',
      '  runtimes = { crun-wasm = { runtime_type = "io.containerd.runc.v2" } }',
      '',
    ].join('\n');
    const error = patchError(() => addContainerdRuntime(config, { ...SPEC, containerdMajor: 1 }));
    expect(error.message).toBe(
      'runtime "crun-wasm" is already defined in the containerd config outside the knawd-deployer block; remove that definition or choose another handler name',
    );
  });

  it.each<[string, 1 | 2]>([
    [fixture('docker-cri-disabled.toml'), 1],
    ['version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n', 1],
    ['version = 3\ndisabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.cri.v1.runtime"]\n', 2],
  ])('a config whose CRI plugin is disabled (%#)', (config, containerdMajor) => {
    const error = patchError(() => addContainerdRuntime(config, { ...SPEC, containerdMajor }));
    expect(error.message).toMatch(/^the containerd config disables containerd's CRI plugin \(disabled_plugins has "[a-z.0-9]+"\): the kubelet does not use this containerd/);
  });

  it('other disabled plugins are no reason to refuse', () => {
    const config = 'version = 2\ndisabled_plugins = ["io.containerd.internal.v1.opt"]\n';
    expect(addContainerdRuntime(config, { ...SPEC, containerdMajor: 1 }).changed).toBe(true);
  });

  it('a version 3 config for containerd 1.x', () => {
    const error = patchError(() => addContainerdRuntime(fixture('containerd-2-default.toml'), { ...SPEC, containerdMajor: 1 }));
    expect(error.message).toMatch(/version 3 config, which containerd 1.x cannot read/);
  });

  it('runtimes as an inline table: TOML allows no [table] below it', () => {
    const error = patchError(() => addContainerdRuntime(fixture('inline-runtimes.toml'), { ...SPEC, containerdMajor: 1 }));
    expect(error.message).toMatch(/runtimes is an inline table \(line 5\), and TOML allows no \[plugins\."io\.containerd\.grpc\.v1\.cri"\.containerd\.runtimes\.crun-wasm\] table below it; write .* as \[.*\] table sections instead/);
  });

  it('a version 4 config for containerd 1.x, and for containerd 2.0-2.2', () => {
    expect(patchError(() => addContainerdRuntime(fixture('containerd-2.3-v4.toml'), { ...SPEC, containerdMajor: 1 })).message).toMatch(
      /version 4 config, which containerd 1.x cannot read; containerd 1.x accepts config versions 1, 2/,
    );
    expect(patchError(() => addContainerdRuntime(fixture('containerd-2.3-v4.toml'), { ...SPEC, containerdMajor: 2, containerdMinor: 2 })).message).toMatch(
      /version 4 config, which containerd 2.2 cannot read; version 4 needs containerd 2.3 or later/,
    );
    expect(addContainerdRuntime(fixture('containerd-2.3-v4.toml'), { ...SPEC, containerdMajor: 2, containerdMinor: 3 }).changed).toBe(true);
  });

  it('a legacy version 1 config for containerd 2.x', () => {
    const error = patchError(() => addContainerdRuntime(fixture('v1-legacy.toml'), { ...SPEC, containerdMajor: 2 }));
    expect(error.message).toMatch(/version 1 config, which containerd 2.x cannot read/);
  });

  it.each(['', 'Crun', 'crun_wasm', '-crun', 'crun-', 'a'.repeat(64), 'crun.wasm', 'crun wasm'])('handler name %j', (handler) => {
    expect(patchError(() => addContainerdRuntime('', { ...SPEC, handler, containerdMajor: 1 })).message).toMatch(/invalid runtime handler name/);
    expect(patchError(() => removeContainerdRuntime('', handler)).message).toMatch(/invalid runtime handler name/);
  });

  it.each(['crun', 'bin/crun', '', '/opt/crun\nx', '/opt/\u007fcrun'])('binary path %j', (binaryPath) => {
    expect(patchError(() => addContainerdRuntime('', { ...SPEC, binaryPath, containerdMajor: 1 })).message).toMatch(/invalid binaryPath .*absolute path/);
  });

  it('a damaged block', () => {
    const added = addContainerdRuntime(fixture('knawd-original.toml'), { ...SPEC, containerdMajor: 1 }).text;
    const damaged = added.replace(/# END .*\n/, '');
    expect(patchError(() => removeContainerdRuntime(damaged, SPEC.handler)).message).toMatch(/managed block for runtime "crun-wasm" is damaged/);
    expect(patchError(() => addContainerdRuntime(damaged, { ...SPEC, containerdMajor: 1 })).message).toMatch(/is damaged/);
  });

  it('the names the caller gives its file in messages', () => {
    const error = patchError(() =>
      addContainerdRuntime(fixture('invalid.toml'), { ...SPEC, containerdMajor: 1, source: '/etc/containerd/config.toml' }),
    );
    expect(error.message).toMatch(/^\/etc\/containerd\/config.toml is not valid TOML/);
  });
});

describe('SystemdCgroup', () => {
  it("follows the default runtime's options when it is not runc", () => {
    const config = [
      'version = 2',
      '[plugins."io.containerd.grpc.v1.cri".containerd]',
      '  default_runtime_name = "crun"',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]',
      '  SystemdCgroup = true',
      '[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]',
      '  SystemdCgroup = false',
      '',
    ].join('\n');
    const parsed = TOML.parse(addContainerdRuntime(config, { ...SPEC, containerdMajor: 1 }).text) as Table;
    expect(at(parsed, [...V2, SPEC.handler, 'options', 'SystemdCgroup'])).toBe(true);
  });
});
