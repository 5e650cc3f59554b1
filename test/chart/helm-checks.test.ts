import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manifestVariants } from '../../lib/render/manifests';
import { REPO, run, systemTool, toolPath } from '../support/tools';

const CHART = join(REPO, 'dist', 'charts', 'knawd-deployer');

test.each([...new Set(manifestVariants().map((v) => `${v.props.target} ${v.props.ociType}`))].map((p) => p.split(' ')))('helm lint --strict passes for %s / %s', (target, ociType) => {
  const result = run(toolPath('helm'), ['lint', '--strict', CHART, '--set', `target=${target}`, '--set', `ociType=${ociType}`]);
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  expect(result.stdout).toContain('1 chart(s) linted, 0 chart(s) failed');
});

test.each([
  [['--set', 'target=rhel8_plugins', '--set', 'ociType=crun-wasmtime'], "at '/ociType': value must be 'crun-wasmedge'"],
  [['--set', 'target=rhel8_plugins', '--set', 'ociType=crun-wasm-nodejs'], "at '/ociType': value must be 'crun-wasmedge'"],
  [['--set', 'target=ubuntu_16_04'], "at '/target': value must be one of 'auto', 'ubuntu_18_04'"],
  [['--set', 'ociType=crun-wamr'], "at '/ociType': value must be one of"],
  [['--set', 'logLevel=verbose'], "at '/logLevel': value must be one of"],
  [['--set', 'colour=blue'], "additional properties 'colour' not allowed"],
  [['--set', 'image.digests.crun-wasmtime=sha256:abc'], "at '/image/digests/crun-wasmtime'"],
  [['--set', `image.digests.crun-wamr=sha256:${'a'.repeat(64)}`], "invalid propertyName 'crun-wamr'"],
  [['--set', `image.digest=sha256:${'a'.repeat(64)}`], "additional properties 'digest' not allowed"],
  [['--set', 'autoRestart=maybe'], "at '/autoRestart': got string, want boolean"],
  [['--set', 'runtimeClass.handler=Crun_Wasm'], "at '/runtimeClass/handler'"],
  [['--set', 'patchKnative=maybe'], "at '/patchKnative': value must be one of 'auto', true, false"],
  [['--set', 'knative.runtimeClassName.selector.bad\\ key=x'], "invalid propertyName 'bad key'"],
  [['--set', 'knative.runtimeClassName.selector.app=a\\ b'], "at '/knative/runtimeClassName/selector/app'"],
  [['--set', 'knative.runtimeClassName.enabled=true', '--set', 'knative.runtimeClassName.selector.knawd\\.dev/wasm=null'], "at '/knative/runtimeClassName/selector': minProperties: got 0, want 1"],
  [['--set', 'maxConcurrentRestarts=0'], "at '/maxConcurrentRestarts': minimum: got 0, want 1"],
  [['--set', 'maxConcurrentRestarts=101'], "at '/maxConcurrentRestarts': maximum: got 101, want 100"],
  [['--set', 'maxConcurrentRestarts=1.5'], "at '/maxConcurrentRestarts': got string, want integer"],
  [['--set', 'driftCheckSeconds=-5'], "at '/driftCheckSeconds': minimum: got -5, want 0"],
  [['--set', 'uninstallPodsTimeoutSeconds=0'], "at '/uninstallPodsTimeoutSeconds': minimum: got 0, want 1"],
  [['--set', 'uninstallPodsTimeoutSeconds=3601'], "at '/uninstallPodsTimeoutSeconds': maximum: got 3,601, want 3,600"],
  [['--set', 'startupTaint.key=bad\\ key'], "at '/startupTaint/key'"],
  [['--set', 'startupTaint.effect=Sometimes'], "at '/startupTaint/effect': value must be one of 'NoSchedule', 'PreferNoSchedule', 'NoExecute'"],
])('helm template refuses bad values %j with the schema error', (sets, message) => {
  const result = run(toolPath('helm'), ['template', 'knawd', CHART, ...sets]);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain("values don't meet the specifications of the schema");
  expect(result.stderr).toContain(message);
});

test('helm template renders crun-wasm-nodejs for auto and the original\'s targets', () => {
  for (const target of ['auto', 'ubuntu_18_04', 'ubuntu_20_04', 'rhel8', 'microk8s']) {
    const result = run(toolPath('helm'), ['template', 'knawd', CHART, '--set', `target=${target}`, '--set', 'ociType=crun-wasm-nodejs']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('value: "crun-wasm-nodejs"');
  }
});

test('yamllint passes on Chart.yaml and values.yaml', () => {
  const result = run(systemTool('yamllint'), ['-d', '{extends: default, rules: {line-length: {max: 160}, document-start: disable}}', join(CHART, 'Chart.yaml'), join(CHART, 'values.yaml')]);
  expect(result.stdout + result.stderr).toBe('');
  expect(result.code).toBe(0);
});

test('helm package succeeds and the archive holds the chart files unchanged', () => {
  const out = mkdtempSync(join(tmpdir(), 'knawd-package-'));
  try {
    const result = run(toolPath('helm'), ['package', CHART, '--destination', out]);
    expect(result.code).toBe(0);
    const tgz = join(out, 'knawd-deployer-2.0.0.tgz');
    const listing = run('tar', ['-tzf', tgz]).stdout.trim().split('\n');
    expect(listing).toContain('knawd-deployer/templates/daemonset-knawd-installer.yaml');
    expect(run('tar', ['-xzOf', tgz, 'knawd-deployer/values.schema.json']).stdout).toBe(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('helm package is reproducible: the same bytes twice (Helm 4, SOURCE_DATE_EPOCH)', () => {
  // Helm 3's `package` stamps every tar entry with time.Now() (pkg/chartutil/save.go), so its archives differ
  // from one second to the next; Helm 4 takes file times from the chart and honours SOURCE_DATE_EPOCH.
  const digests = [1, 2].map((i) => {
    const out = mkdtempSync(join(tmpdir(), `knawd-package-${i}-`));
    try {
      const result = run(toolPath('helm4'), ['package', CHART, '--destination', out], { env: { ...process.env, SOURCE_DATE_EPOCH: '1700000000' } });
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      return createHash('sha256').update(readFileSync(join(out, 'knawd-deployer-2.0.0.tgz'))).digest('hex');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
  expect(digests[0]).toBe(digests[1]);
});

test('knative.runtimeClassName with patchKnative=false is refused with one line saying why', () => {
  const result = run(toolPath('helm'), ['template', 'knawd', CHART, '--set', 'patchKnative=false', '--set', 'knative.runtimeClassName.enabled=true']);
  expect(result.code).not.toBe(0);
  expect(result.stderr).toContain('knative.runtimeClassName.enabled=true needs patchKnative auto or true: patchKnative=false leaves Knative alone');
});
