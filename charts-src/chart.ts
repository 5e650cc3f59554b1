import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { chartFiles, CHART_NAME, valuesTable } from '../lib/render/chart/chart-files';

const METADATA = {
  description: 'Puts crun with a WebAssembly handler (WasmEdge, wasmtime, wasm-nodejs) onto Kubernetes nodes and offers the RuntimeClass crun.',
  home: 'https://knawd.dev',
  icon: 'https://webassembly.org/css/webassembly.svg',
  maintainers: [{ name: 'knawd', url: 'https://github.com/knawd' }],
  sources: ['https://github.com/knawd/deployer'],
  changes: [
    { kind: 'changed', description: 'Chart generated from cdk8s constructs; identical to the raw manifests' },
    { kind: 'added', description: 'Targets ubuntu_22_04, ubuntu_24_04, k3s, rke2, containerd, crio; containerd 2.x configs' },
    { kind: 'fixed', description: 'Uninstall restores every node before the release is deleted' },
    { kind: 'security', description: 'RBAC limited to config-features and node labels; SCC for every OpenShift target' },
    { kind: 'changed', description: 'patchKnative defaults to auto: Knative is wired up only where the cluster serves it, so a first install works without Knative' },
    { kind: 'added', description: 'knative.runtimeClassName: crun as the default RuntimeClass of labelled Knative Services (config-deployment runtime-class-name)' },
    { kind: 'security', description: 'The uninstall wait Job has its own ServiceAccount that may only watch nodes; the SCC allows only hostPath and projected volumes' },
    { kind: 'changed', description: 'helm test runs test.image (pinned by digest, IfNotPresent) without a token or a writable root, as restricted-v2 admits' },
    { kind: 'changed', description: 'target defaults to auto: each node as the kind it is; a target its node contradicts is refused before any write' },
  ],
};

/** Writes dist/charts/knawd-deployer fresh: generated files plus the static parts from `staticDir`. */
export function synthChart(dist: string, staticDir: string): void {
  const root = join(dist, 'charts', CHART_NAME);
  rmSync(join(dist, 'charts'), { recursive: true, force: true });
  const files = {
    ...chartFiles(METADATA),
    'README.md': `${readFileSync(join(staticDir, 'README.header.md'), 'utf8')}\n${valuesTable()}\n`,
  };
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  copyFileSync(join(staticDir, 'NOTES.txt'), join(root, 'templates', 'NOTES.txt'));
  copyFileSync(join(staticDir, '.helmignore'), join(root, '.helmignore'));
}
