import { allVariants, findTarget, resolveVariant, RUNTIMES, TARGETS, TARGET_NAMES, OPENSHIFT_TARGETS } from '../../lib/catalog';

test('the original targets keep their names, next to the new ones', () => {
  expect(TARGET_NAMES).toEqual([
    'ubuntu_18_04', 'ubuntu_20_04', 'ubuntu_22_04', 'ubuntu_24_04', 'rhel8', 'rhel8_plugins',
    'microk8s', 'k3s', 'rke2', 'containerd', 'crio',
  ]);
});

test('each target says how its runtime is configured and restarted', () => {
  expect(findTarget('ubuntu_20_04')).toMatchObject({ cri: 'containerd', configEdit: { kind: 'containerd-config', path: '/etc/containerd/config.toml' }, restartUnits: ['containerd'] });
  expect(findTarget('microk8s')).toMatchObject({
    configEdit: { kind: 'containerd-config', path: '/var/snap/microk8s/current/args/containerd-template.toml' },
    restartUnits: ['snap.microk8s.daemon-containerd'],
  });
  expect(findTarget('rhel8')).toMatchObject({ cri: 'crio', openshift: true, configEdit: { kind: 'crio-dropin', dropInDir: '/etc/crio/crio.conf.d' } });
  expect(findTarget('k3s')).toMatchObject({
    configEdit: { kind: 'containerd-template', template: '/var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl', templateV3: '/var/lib/rancher/k3s/agent/etc/containerd/config-v3.toml.tmpl' },
    restartUnits: ['k3s', 'k3s-agent'],
  });
  expect(findTarget('rke2').restartUnits).toEqual(['rke2-server', 'rke2-agent']);
  expect(OPENSHIFT_TARGETS).toEqual(['rhel8', 'rhel8_plugins']);
});

test('runtimes name their engine library; rhel8_plugins ships only crun-wasmedge', () => {
  expect(RUNTIMES.map((r) => [r.name, r.library])).toEqual([
    ['crun-wasmedge', 'libwasmedge.so.0'],
    ['crun-wasmtime', 'libwasmtime.so'],
    ['crun-wasm-nodejs', 'libnode.so'],
  ]);
  expect(allVariants().filter((v) => v.target.name === 'rhel8_plugins').map((v) => v.runtime.name)).toEqual(['crun-wasmedge']);
  // Hermetic builds: Ubuntu 18.04 (glibc 2.27) ships crun-wasmedge again, as the original did.
  expect(allVariants().filter((v) => v.target.name === 'ubuntu_18_04').map((v) => v.runtime.name)).toEqual(['crun-wasmedge', 'crun-wasmtime']);
  expect(allVariants()).toHaveLength(TARGETS.length * 2 - 1);
  expect(resolveVariant('rhel8_plugins', 'crun-wasmedge').runtime.library).toBe('libwasmedge.so.0');
});

test('crun-wasm-nodejs ships nowhere, and choosing it says so in one line', () => {
  expect(allVariants().some((v) => v.runtime.name === 'crun-wasm-nodejs')).toBe(false);
  for (const t of TARGETS) {
    expect(() => resolveVariant(t.name, 'crun-wasm-nodejs')).toThrow(/^this image ships no crun-wasm-nodejs: [^\n]+$/);
  }
});
