/**
 * Where the handler goes, decided from the host's files and the runtime version alone (pure: a reader over a
 * map of host files). The real loaders judge the results in test/toml/containerd-real and preflight.test.
 */
import { findTarget } from '../../lib/catalog';
import { candidateConfigPaths, ConfigReader, desiredConfig, HandlerSpec } from '../../lib/installer/runtime/config-edit';
import { fixture } from './support';

const K3S = '/var/lib/rancher/k3s/agent/etc/containerd';
const SPEC: HandlerSpec = { handler: 'crun-wasm', binaryPath: '/opt/knawd/bin/crun-wasmtime' };
const CONTAINERD_1_7: HandlerSpec = { ...SPEC, runtimeVersion: { major: 1, minor: 7, patch: 22 }, runtimeVersionSource: 'as reported by the node object' };

function reader(files: Record<string, string>): ConfigReader {
  return {
    readText: (p) => files[p],
    list: (dir) => {
      const names = Object.keys(files).filter((p) => p.startsWith(dir + '/')).map((p) => p.slice(dir.length + 1).split('/')[0]);
      return names.length > 0 ? [...new Set(names)] : undefined;
    },
  };
}

const importing = (config: string, entry: string): string => config.replace(/^version = (\d)\n/m, (line) => `${line}imports = [${JSON.stringify(entry)}]\n`);

describe('containerd 1.x never gets a drop-in, even where its config imports a directory', () => {
  it('plain containerd 1.7: the block goes into the config', () => {
    const config = importing(fixture('containerd-1.6-systemd-cgroup.toml').replace('imports = []\n', ''), '/etc/containerd/conf.d/*.toml');
    const desired = desiredConfig(findTarget('containerd').configEdit, CONTAINERD_1_7, reader({ '/etc/containerd/config.toml': config }));
    expect(desired).toMatchObject({ path: '/etc/containerd/config.toml', role: 'containerd-config' });
    expect(desired.text.startsWith(config)).toBe(true);
    expect(desired.notes).toContain('no drop-in: containerd 1.x replaces whole plugin sections with those of imported files (containerd#5837)');
  });

  it('k3s with containerd 1.7 rendering config.toml.d imports: the template', () => {
    const rendered = importing(fixture('k3s-rendered-v2.toml'), `${K3S}/config.toml.d/*.toml`);
    const desired = desiredConfig(findTarget('k3s').configEdit, { ...CONTAINERD_1_7, runtimeVersion: { major: 1, minor: 7, patch: 23 } }, reader({ [`${K3S}/config.toml`]: rendered }));
    expect(desired).toMatchObject({ path: `${K3S}/config.toml.tmpl`, role: 'containerd-template' });
    expect(desired.notes[0]).toMatch(/^no drop-in: containerd 1\.x replaces whole plugin sections/);
  });
});

describe('k3s on containerd 2.x', () => {
  it('a rendered config without imports (k3s before #13680): the template, as before', () => {
    const desired = desiredConfig(findTarget('k3s').configEdit, SPEC, reader({ [`${K3S}/config.toml`]: fixture('k3s-rendered-v3.toml') }));
    expect(desired).toMatchObject({ path: `${K3S}/config-v3.toml.tmpl`, role: 'containerd-template' });
    expect(desired.notes).toContain(`no drop-in: ${K3S}/config.toml imports no other files`);
  });

  it('a rendered config importing config-v3.toml.d: our drop-in there, even with a template of the user beside it', () => {
    const files = { [`${K3S}/config.toml`]: fixture('k3s-rendered-v3-imports.toml'), [`${K3S}/config-v3.toml.tmpl`]: fixture('k3s-config-v3.toml.tmpl') };
    const desired = desiredConfig(findTarget('k3s').configEdit, SPEC, reader(files));
    expect(desired).toMatchObject({ path: `${K3S}/config-v3.toml.d/50-knawd-crun-wasm.toml`, role: 'containerd-dropin', current: undefined });
    expect(candidateConfigPaths(findTarget('k3s').configEdit, 'crun-wasm', reader(files))).toContainEqual({ path: desired.path, role: 'containerd-dropin' });
  });

  it('k3s already renders the handler (its binary on PATH): refused, as for the template', () => {
    const rendered = `${fixture('k3s-rendered-v3-imports.toml')}\n[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.'crun-wasm']\n  runtime_type = "io.containerd.runc.v2"\n`;
    expect(() => desiredConfig(findTarget('k3s').configEdit, SPEC, reader({ [`${K3S}/config.toml`]: rendered }))).toThrow(
      /^runtime "crun-wasm" is already defined in \/var\/lib\/rancher\/k3s\/agent\/etc\/containerd\/config\.toml \(line \d+\); containerd would merge it with ours/,
    );
  });
});

describe('without a Node object or a runtime binary, the file decides', () => {
  it('a version 2 file with containerd 2.x plugin names gets its block under those names, not under the 1.x ones', () => {
    const config = fixture('containerd2-version2-2x-names.toml');
    const desired = desiredConfig(findTarget('containerd').configEdit, SPEC, reader({ '/etc/containerd/config.toml': config }));
    expect(desired.text.slice(config.length)).toContain('[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.crun-wasm]');
    expect(desired.text.slice(config.length)).not.toContain('io.containerd.grpc.v1.cri');
    expect(desired.notes[0]).toBe('containerd 2.x (the config uses containerd 2.x plugin names (io.containerd.cri.v1.runtime) under version = 2; neither the node object nor a host binary said)');
  });

  it('a version 2 file with 1.x names: the catalog default (containerd 1.x), names as written', () => {
    const desired = desiredConfig(findTarget('containerd').configEdit, SPEC, reader({ '/etc/containerd/config.toml': fixture('containerd-1.6-systemd-cgroup.toml') }));
    expect(desired.notes[0]).toBe('containerd 1.x (catalog default; neither the node object nor a host binary said)');
    expect(desired.text).toContain('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun-wasm]');
  });
});
