import { App, Chart, Testing } from 'cdk8s';
import { WASM_TEST_IMAGE } from '../../lib/catalog';
import { resolveSettings, WasmTestPod } from '../../lib/constructs';
import { validateObject } from '../support/k8s-schema';

function testPod(image?: string): any {
  const chart = new Chart(new App(), 'c');
  new WasmTestPod(chart, 't', { settings: resolveSettings({ runtimeClassName: 'wasm' }), image });
  const [pod] = Testing.synth(chart);
  return pod;
}

test('the image is a prop; by default the project WASI test image, pinned by digest, pulled only if not present', () => {
  expect(WASM_TEST_IMAGE).toMatch(/^[a-z0-9./-]+@sha256:[0-9a-f]{64}$/);
  expect(testPod().spec.containers[0]).toMatchObject({ image: WASM_TEST_IMAGE, imagePullPolicy: 'IfNotPresent' });
  expect(testPod('registry.example/wasi@sha256:' + 'c'.repeat(64)).spec.containers[0].image).toBe(`registry.example/wasi@sha256:${'c'.repeat(64)}`);
});

test('it runs the WASM handler through the RuntimeClass, with small bounded resources and no token', () => {
  const pod = testPod();
  expect(pod.metadata.annotations).toBeUndefined();
  expect(pod.spec).toMatchObject({ runtimeClassName: 'wasm', restartPolicy: 'Never', automountServiceAccountToken: false });
  expect(pod.spec.containers[0].resources).toEqual({
    requests: { 'cpu': '10m', 'memory': '16Mi', 'ephemeral-storage': '1Mi' },
    limits: { 'cpu': '100m', 'memory': '64Mi', 'ephemeral-storage': '16Mi' },
  });
  expect(validateObject(pod)).toEqual([]);
});

// OpenShift's restricted-v2 SCC (4.11+): runAsUser MustRunAsRange and fsGroup/seLinux MustRunAs (a fixed value
// outside the namespace's range is refused, an absent one is assigned), allowPrivilegeEscalation false,
// capabilities dropped to at most NET_BIND_SERVICE, seccomp runtime/default, no host namespaces or host ports,
// volumes of the kinds configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected, secret.
// Checked here field by field; there is no OpenShift to ask.
test("its securityContext is one OpenShift's restricted-v2 admits (and PodSecurity restricted)", () => {
  const { spec } = testPod();
  const c = spec.containers[0];
  for (const ctx of [spec.securityContext, c.securityContext]) {
    expect(ctx.runAsUser).toBeUndefined();
    expect(ctx.runAsGroup).toBeUndefined();
    expect(ctx.fsGroup).toBeUndefined();
    expect(ctx.seLinuxOptions).toBeUndefined();
  }
  expect(spec.securityContext).toEqual({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
  expect(c.securityContext).toEqual({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
  for (const field of ['hostPID', 'hostIPC', 'hostNetwork', 'volumes']) expect(spec[field]).toBeUndefined();
  expect(c.ports).toBeUndefined();
});
