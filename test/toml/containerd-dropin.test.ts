import * as TOML from '@iarna/toml';
import { containerdDropInFileName, containerdMajorOfFile, findDropInLocation, globMatch, redirectImports, renderContainerdDropIn } from '../../lib/toml';
import { fixture, patchError, SPEC } from './helpers';

const CONFIG = '/etc/containerd/config.toml';
const NAME = containerdDropInFileName(SPEC.handler);

describe('findDropInLocation: the imports of the file itself decide', () => {
  it.each<[string, string, string | undefined]>([
    ["containerd 2.2's default", "imports = ['/etc/containerd/conf.d/*.toml']", '/etc/containerd/conf.d'],
    ['a relative entry resolves against the config directory', 'imports = ["conf.d/*.toml"]', '/etc/containerd/conf.d'],
    ['.. and . are cleaned as Go does', 'imports = ["/etc/containerd/./x/../conf.d/*.toml"]', '/etc/containerd/conf.d'],
    ['the first entry that reads our name wins', 'imports = ["/etc/a/*.conf", "/etc/b/5?-knawd-*.toml", "/etc/c/*.toml"]', '/etc/b'],
    ['a class that includes our first character', 'imports = ["/etc/d/[0-9]*.toml"]', '/etc/d'],
    ['a negated class that excludes it', 'imports = ["/etc/d/[^5]*.toml"]', undefined],
    ['a single file is not a directory of drop-ins', 'imports = ["/etc/containerd/runtime.toml"]', undefined],
    ['a glob in the directory part', 'imports = ["/etc/*/conf.d/*.toml"]', undefined],
    ["microk8s' unresolved placeholder", 'imports = ["${SNAP_DATA}/args/conf.d/*.toml"]', undefined],
    ['empty imports', 'imports = []', undefined],
    ['no imports at all', 'oom_score = 0', undefined],
  ])('%s', (_name, line, dir) => {
    const decision = findDropInLocation(`version = 3\n${line}\n`, CONFIG, SPEC.handler);
    expect(decision.location?.dir).toBe(dir);
    if (dir) expect(decision.location?.path).toBe(`${dir}/${NAME}`);
    else expect(decision).toHaveProperty('why');
  });

  it('says why there is none', () => {
    expect(findDropInLocation('version = 3\n', CONFIG, SPEC.handler)).toEqual({ why: `${CONFIG} imports no other files` });
    expect(findDropInLocation('imports = ["/x/*.conf"]\n', CONFIG, SPEC.handler)).toEqual({
      why: `none of ${CONFIG}'s imports (/x/*.conf) is a directory pattern that reads ${NAME}`,
    });
  });

  it('refuses imports that are not strings, in one line', () => {
    expect(patchError(() => findDropInLocation('imports = [1]\n', CONFIG, SPEC.handler)).message).toMatch(/imports value that is not an array of strings/);
  });
});

describe("globMatch follows Go's filepath.Match", () => {
  it.each<[string, string, boolean]>([
    ['*.toml', '50-knawd-crun-wasm.toml', true],
    ['*.toml', '.hidden.toml', true],
    ['*.toml', 'x.toml.bak', false],
    ['??-*', '50-x', true],
    ['[a-c]x', 'bx', true],
    ['[^a-c]x', 'bx', false],
    ['\\*.toml', '*.toml', true],
    ['\\*.toml', 'a.toml', false],
    ['a.b', 'axb', false],
  ])('%s matches %s: %s', (pattern, name, matches) => {
    expect(globMatch(pattern, name)).toBe(matches);
  });
});

describe('renderContainerdDropIn', () => {
  const render = (text: string, dropIns: Array<{ path: string; text: string }> = [], minor?: number) =>
    renderContainerdDropIn({ ...SPEC, config: { path: CONFIG, text }, dropIns, containerdMinor: minor });

  it.each<[string, string, number, string]>([
    ['containerd-2-default.toml', 'version 3', 3, 'io.containerd.cri.v1.runtime'],
    ['containerd-2.3-v4.toml', 'version 4', 4, 'io.containerd.cri.v1.runtime'],
    ['containerd2-version2-2x-names.toml', 'version 2 with 2.x names', 2, 'io.containerd.cri.v1.runtime'],
    ['containerd-1.6-systemd-cgroup.toml', 'version 2 with 1.x names', 2, 'io.containerd.grpc.v1.cri'],
  ])('%s (%s): its version and plugin names, no imports of its own', (file, _what, version, plugin) => {
    const text = render(fixture(file), [], 3);
    const parsed = TOML.parse(text) as Record<string, any>;
    expect(parsed.version).toBe(version);
    expect(Object.keys(parsed.plugins)).toEqual([plugin]);
    expect(parsed.plugins[plugin].containerd.runtimes[SPEC.handler].options.BinaryName).toBe(SPEC.binaryPath);
    expect(parsed).not.toHaveProperty('imports');
    expect(text).toMatch(/^# Managed by knawd-deployer: adds the containerd runtime handler "crun-wasm"/);
    expect(text).toContain('# BEGIN knawd-deployer managed block: runtime crun-wasm');
  });

  it("takes SystemdCgroup from the config, then from the drop-ins in their order (the last that sets it wins)", () => {
    const runc = (value: boolean) => `version = 3\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]\n  SystemdCgroup = ${value}\n`;
    const cgroup = (text: string) => (TOML.parse(text) as any).plugins['io.containerd.cri.v1.runtime'].containerd.runtimes[SPEC.handler].options.SystemdCgroup;
    expect(cgroup(render(fixture('containerd-2-default.toml')))).toBe(false);
    expect(cgroup(render(fixture('containerd-2-default.toml'), [{ path: '/etc/containerd/conf.d/10-a.toml', text: runc(true) }]))).toBe(true);
    expect(
      cgroup(render(fixture('containerd-2-default.toml'), [{ path: '/etc/containerd/conf.d/10-a.toml', text: runc(true) }, { path: '/etc/containerd/conf.d/20-b.toml', text: 'version = 3\n' }])),
    ).toBe(true);
  });

  it.each<[string, string, Array<{ path: string; text: string }>, RegExp]>([
    [
      'the handler in the config',
      'version = 3\nimports = ["conf.d/*.toml"]\n[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]\n  runtime_type = "x"\n',
      [],
      /^runtime "crun-wasm" is already defined in \/etc\/containerd\/config\.toml \(line 3\); containerd would merge it with ours field by field/,
    ],
    [
      'the handler in another drop-in, under the 1.x name',
      'version = 3\n',
      [{ path: '/etc/containerd/conf.d/99-other.toml', text: 'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]\n  runtime_type = "x"\n' }],
      /^runtime "crun-wasm" is already defined in \/etc\/containerd\/conf\.d\/99-other\.toml \(line 2\)/,
    ],
    ['a version 1 config (containerd 2.x reads 2, 3, 4)', 'imports = ["conf.d/*.toml"]\n[plugins.cri]\n  x = 1\n', [], /is a version 1 config, which containerd 2\.x cannot read/],
    ['the CRI switched off', 'version = 3\ndisabled_plugins = ["io.containerd.cri.v1.runtime"]\n', [], /disables containerd's CRI plugin/],
  ])('refuses %s', (_name, text, dropIns, message) => {
    expect(patchError(() => render(text, dropIns)).message).toMatch(message);
  });

  it('refuses version 4 for containerd 2.2', () => {
    expect(patchError(() => render(fixture('containerd-2.3-v4.toml'), [], 2)).message).toMatch(/version 4 needs containerd 2\.3 or later/);
  });
});

describe('redirectImports: the pre-flight copy of the drop-in directory, every other byte kept', () => {
  it('points the entries that read the directory at the copy, keeps the others', () => {
    const config = 'version = 3\n# why\nimports = [\n  "/etc/other/*.toml", # theirs\n  \'conf.d/*.toml\',\n]\noom_score = 0\n';
    expect(redirectImports(config, CONFIG, '/etc/containerd/conf.d', '/run/knawd-preflight')).toBe(
      'version = 3\n# why\nimports = ["/etc/other/*.toml", "/run/knawd-preflight/*.toml"]\noom_score = 0\n',
    );
  });

  it('undefined when no entry reads the directory', () => {
    expect(redirectImports('imports = ["/etc/other/*.toml"]\n', CONFIG, '/etc/containerd/conf.d', '/run/x')).toBeUndefined();
    expect(redirectImports('version = 3\n', CONFIG, '/etc/containerd/conf.d', '/run/x')).toBeUndefined();
  });
});

describe('containerdMajorOfFile: what the file says when nothing else does', () => {
  it.each<[string, string, 2 | undefined]>([
    ['version 3', 'containerd-2-default.toml', 2],
    ['version 4', 'containerd-2.3-v4.toml', 2],
    ['version 2 with 2.x plugin names (AKS)', 'containerd2-version2-2x-names.toml', 2],
    ['version 2 with 1.x names', 'containerd-1.6-systemd-cgroup.toml', undefined],
    ['version 1', 'version1-explicit.toml', undefined],
  ])('%s', (_name, file, major) => {
    expect(containerdMajorOfFile(fixture(file))?.major).toBe(major);
  });

  it('says why', () => {
    expect(containerdMajorOfFile(fixture('containerd2-version2-2x-names.toml'))?.why).toBe('the config uses containerd 2.x plugin names (io.containerd.cri.v1.runtime) under version = 2');
  });
});
