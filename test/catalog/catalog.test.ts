import { allVariants, AUTO_CANDIDATES, findTarget, resolveChoice, resolveVariant, runtimesFor, runtimesForAuto, RUNTIMES, TARGETS, TARGET_CHOICES, TARGET_NAMES, OPENSHIFT_TARGETS } from '../../lib/catalog';

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
    ['crun-wasm-nodejs', 'libnode.so.115'],
  ]);
  expect(allVariants().filter((v) => v.target.name === 'rhel8_plugins').map((v) => v.runtime.name)).toEqual(['crun-wasmedge']);
  // Hermetic builds: Ubuntu 18.04 (glibc 2.27) ships crun-wasmedge again, as the original did.
  expect(allVariants().filter((v) => v.target.name === 'ubuntu_18_04').map((v) => v.runtime.name)).toEqual(['crun-wasmedge', 'crun-wasmtime', 'crun-wasm-nodejs']);
  expect(allVariants()).toHaveLength(TARGETS.length * 3 - 2);
  expect(resolveVariant('rhel8_plugins', 'crun-wasmedge').runtime.library).toBe('libwasmedge.so.0');
});

test('crun-wasm-nodejs ships for every target but rhel8_plugins (the original\'s pairs included), and auto accepts it', () => {
  const targets = allVariants().filter((v) => v.runtime.name === 'crun-wasm-nodejs').map((v) => v.target.name);
  expect(targets).toEqual(TARGET_NAMES.filter((t) => t !== 'rhel8_plugins'));
  for (const t of ['ubuntu_18_04', 'ubuntu_20_04', 'rhel8', 'microk8s']) expect(resolveVariant(t, 'crun-wasm-nodejs').runtime.library).toBe('libnode.so.115');
  expect(() => resolveVariant('rhel8_plugins', 'crun-wasm-nodejs')).toThrow(/^ociType "crun-wasm-nodejs" is not available for target "rhel8_plugins"; valid ociTypes for rhel8_plugins: crun-wasmedge$/);
});

test('target auto: a choice beside the targets, choosing among the layouts, most specific first', () => {
  expect(TARGET_CHOICES).toEqual(['auto', ...TARGET_NAMES]);
  expect(AUTO_CANDIDATES).toEqual(['microk8s', 'k3s', 'rke2', 'rhel8', 'crio', 'containerd']);
  // Every layout a target can have is one auto may choose: the ubuntu_* and rhel8_plugins targets share theirs.
  const layouts = (names: readonly string[]) => new Set(names.map((n) => JSON.stringify(findTarget(n).configEdit)));
  expect(layouts(AUTO_CANDIDATES)).toEqual(layouts(TARGET_NAMES));
  // Distributions with a config of their own say where it is, and k3s / rke2 how their kubelet is marked.
  expect(findTarget('k3s').signature).toEqual({ ownPaths: ['/var/lib/rancher/k3s/agent/etc/containerd'], kubeletSuffix: 'k3s' });
  expect(findTarget('rke2').signature).toEqual({ ownPaths: ['/var/lib/rancher/rke2/agent/etc/containerd'], kubeletSuffix: 'rke2' });
  expect(findTarget('microk8s').signature.ownPaths).toEqual(['/var/snap/microk8s/current/args/containerd-template.toml']);
  expect(findTarget('rhel8').signature).toEqual({ nodeLabels: ['node.openshift.io/os_id'], osImage: 'Red Hat Enterprise Linux CoreOS' });
});

test('auto + an ociType resolves to a shipped pair on every node kind auto may find', () => {
  expect(runtimesForAuto().map((r) => r.name)).toEqual(['crun-wasmedge', 'crun-wasmtime', 'crun-wasm-nodejs']);
  for (const runtime of runtimesForAuto()) {
    expect(resolveChoice('auto', runtime.name)).toEqual({ target: 'auto', runtime });
    for (const t of AUTO_CANDIDATES) expect(runtimesFor(findTarget(t))).toContain(runtime);
  }
  expect(() => resolveChoice('autodetect', 'crun-wasmtime')).toThrow(/^unknown target "autodetect"; valid targets: auto, ubuntu_18_04, /);
  expect(resolveChoice('k3s', 'crun-wasmtime').target).toBe(findTarget('k3s'));
});
