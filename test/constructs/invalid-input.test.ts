import { App, Chart } from 'cdk8s';
import { KnawdDeployer, KnawdDeployerProps } from '../../lib';

function construct(props: Record<string, unknown>): () => void {
  return () => new KnawdDeployer(new Chart(new App(), 'c'), 'd', props as KnawdDeployerProps);
}

test.each([
  [{ target: 'ubuntu_16_04' }, /^unknown target "ubuntu_16_04"; valid targets: auto, ubuntu_18_04, ubuntu_20_04, .*rhel8_plugins.*crio$/],
  [{ openshift: 'yes' }, /^openshift "yes" is invalid; expected true or false$/],
  [{ ociType: 'crun-wamr' }, /^unknown ociType "crun-wamr"; valid ociTypes: crun-wasmedge, crun-wasmtime, crun-wasm-nodejs$/],
  [{ target: 'rhel8_plugins', ociType: 'crun-wasm-nodejs' }, /^ociType "crun-wasm-nodejs" is not available for target "rhel8_plugins"; valid ociTypes for rhel8_plugins: crun-wasmedge$/],
  [
    { target: 'rhel8_plugins', ociType: 'crun-wasmtime' },
    /^ociType "crun-wasmtime" is not available for target "rhel8_plugins"; valid ociTypes for rhel8_plugins: crun-wasmedge$/,
  ],
  [{ image: { repository: '' } }, /^image.repository is empty; expected a repository/],
  [{ image: { tag: ' ' } }, /^image.tag is empty/],
  [{ image: { tag: 'v1.2.0' } }, /^image.tag "v1.2.0" names an image of the original knawd-deployer \(1\.x\), which has only its Rust manager; expected a 2\.x tag such as v2\.0\.0$/],
  [{ image: { reference: '' } }, /^image.reference is empty/],
  [{ image: { digests: { 'crun-wasmtime': 'sha256:abc' } } }, /^image.digests\["crun-wasmtime"\] "sha256:abc" is invalid; expected sha256:<64 hex digits>$/],
  [{ image: { digests: { 'crun-wamr': `sha256:${'a'.repeat(64)}` } } }, /^image.digests has an entry for "crun-wamr", which is no ociType; expected keys among crun-wasmedge, crun-wasmtime, crun-wasm-nodejs$/],
  [{ image: { digest: `sha256:${'a'.repeat(64)}` } }, /^image.digest is replaced by image.digests: a map from ociType to its image index digest/],
  [{ logLevel: 'verbose' }, /^logLevel "verbose" is invalid; valid levels: error, warn, info, debug$/],
  [{ namespace: 'Knawd_NS' }, /^namespace "Knawd_NS" is invalid; expected a DNS label/],
  [{ handler: 'crun wasm' }, /^handler "crun wasm" is invalid/],
  [{ hostPrefix: 'opt/knawd' }, /^hostPrefix "opt\/knawd" is invalid; expected an absolute directory at least two levels deep/],
  [{ hostPrefix: `/opt/${'k'.repeat(60)}` }, /^hostPrefix "\/opt\/k+" is invalid; expected an absolute directory at least two levels deep and at most 64 characters long/],
  [{ patchKnative: 'yes' }, /^patchKnative "yes" is invalid; expected true, false or "auto"$/],
  [{ patchKnative: false, knative: { runtimeClassName: {} } }, /^knative.runtimeClassName needs patchKnative true or "auto"; false leaves Knative alone$/],
  [{ knative: { runtimeClassName: { selector: {} } } }, /^knative.runtimeClassName.selector is invalid \(it is empty\); expected one or more label=value pairs/],
  [{ knative: { runtimeClassName: { selector: { 'bad key!': 'x' } } } }, /^knative.runtimeClassName.selector is invalid \("bad key!" is not a label key\)/],
  [{ knative: { runtimeClassName: { selector: { app: 'a b' } } } }, /^knative.runtimeClassName.selector is invalid \("a b" \(of app\) is not a label value\)/],
  [{ maxConcurrentRestarts: 0 }, /^maxConcurrentRestarts 0 is invalid; expected a whole number from 1 to 100$/],
  [{ maxConcurrentRestarts: 2.5 }, /^maxConcurrentRestarts 2.5 is invalid; expected a whole number from 1 to 100$/],
  [{ maxConcurrentRestarts: 101 }, /^maxConcurrentRestarts 101 is invalid/],
  [{ driftCheckSeconds: -1 }, /^driftCheckSeconds -1 is invalid; expected a whole number of seconds from 0 \(never\) to 86400$/],
  [{ uninstallPodsTimeoutSeconds: 0 }, /^uninstallPodsTimeoutSeconds 0 is invalid; expected a whole number of seconds from 1 to 3600$/],
  [{ uninstallPodsTimeoutSeconds: 7.5 }, /^uninstallPodsTimeoutSeconds 7.5 is invalid; expected a whole number of seconds from 1 to 3600$/],
  [{ uninstallPodsTimeoutSeconds: 3601 }, /^uninstallPodsTimeoutSeconds 3601 is invalid/],
  [{ startupTaint: { key: 'bad key', effect: 'NoSchedule' } }, /^startupTaint \{"key":"bad key","effect":"NoSchedule"\} is invalid; expected KEY:EFFECT/],
  [{ startupTaint: { key: 'example.com/x', effect: 'Sometimes' } }, /^startupTaint .* is invalid; expected KEY:EFFECT with a label key and an effect of NoSchedule, PreferNoSchedule, NoExecute/],
])('%j is refused with one clear line', (props, message) => {
  expect(construct(props)).toThrow(message);
  try {
    construct(props)();
  } catch (e) {
    expect((e as Error).message).not.toContain('\n');
  }
});
