/**
 * Issue 13 3f on the single-node cluster (containerd 1.7): install and uninstall with the raw manifests of
 * dist/manifests/containerd/crun-wasmtime*.yaml by running exactly the kubectl commands their headers give, on a
 * cluster without Knative (what a raw-manifest user without Knative has). Every step must exit 0, and after the
 * uninstall's wait step the node must already be restored.
 *
 * PASSES ONLY AFTER the fixes issue 13 lists for the raw manifests: today the apply fails on the knative-serving
 * RoleBinding when Knative is not installed, the last uninstall step exits 1 (`daemonsets.apps "knawd-installer"
 * not found`: step 1 deleted it; needs --ignore-not-found), and the wait step has the same flaw as the Helm
 * uninstall (it waits for the installed label, not for the host-changed one).
 *
 * The manifests name the release image with pullPolicy IfNotPresent; the imported installer image is tagged with
 * that name in the node's containerd, as in an air-gapped cluster.
 */
import * as fs from 'fs';
import { HOST_CHANGED_LABEL, INSTALLED_LABEL } from '../../lib/catalog/node-contract';
import { loadObjects, manifestPath } from '../support/cluster/objects';
import { nodeLabels, productLogs, restartsOf, unrestored, waitFor } from '../../demo/cluster/product';
import { clusterForFile } from '../support/node/steps';

jest.setTimeout(10 * 60_000);

/** The kubectl commands a manifest's header tells the user to run (`# Apply: …` or `# N. …`), as argv. */
function headerSteps(file: string): string[][] {
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('#'))
    .map((l) => /^# (?:Apply: |\d+\. )(kubectl .*)$/.exec(l)?.[1])
    .filter((c): c is string => c !== undefined)
    .map((c) => c.split(/\s+/).slice(1));
}

describe('raw manifests on a real node: the header steps, each exiting 0', () => {
  const steps = clusterForFile(1);
  const install = manifestPath('containerd', 'crun-wasmtime');
  const uninstall = manifestPath('containerd', 'crun-wasmtime', true);

  test('the headers give one apply step and four uninstall steps', () => {
    expect(headerSteps(install)).toHaveLength(1);
    expect(headerSteps(uninstall)).toHaveLength(4);
  });

  test('the apply step exits 0 and the node is configured and labelled', async () => {
    const h = steps.need();
    const image = loadObjects(install).find((o) => o.kind === 'DaemonSet')?.spec.template.spec.containers[0].image as string;
    // The manifests name the release image, which the imported archive is: nothing to tag.
    expect(image).toBe(h.images.installer.images['crun-wasmtime'].name);
    for (const argv of headerSteps(install)) {
      const r = await h.cluster.kubectl(argv);
      expect({ step: argv.join(' '), code: r.code, stderr: r.stderr.trim() }).toEqual({ step: argv.join(' '), code: 0, stderr: '' });
    }
    await waitFor(h, 'the node labelled', async () => ((await nodeLabels(h))[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? true : undefined), 120_000);
    expect(restartsOf(h, 'containerd')).toBe(1);
    steps.mark('install');
  });

  test('the uninstall steps each exit 0; after the wait step the node is restored', async () => {
    const h = steps.need('install');
    const [deleteInstaller, applyRemover, wait, deleteAll] = headerSteps(uninstall);
    for (const argv of [deleteInstaller, applyRemover, wait]) {
      const r = await h.cluster.kubectl(argv, { timeoutMs: 400_000 });
      if (r.code !== 0) throw new Error(`\`kubectl ${argv.join(' ')}\` exited ${r.code}: ${r.stderr.trim()}\n${await productLogs(h)}`);
    }
    expect(unrestored(h)).toEqual([]);
    const labels = await nodeLabels(h);
    expect([INSTALLED_LABEL.key, HOST_CHANGED_LABEL.key].filter((k) => k in labels)).toEqual([]);
    expect(restartsOf(h, 'containerd')).toBe(2);
    const r = await h.cluster.kubectl(deleteAll);
    expect({ step: deleteAll.join(' '), code: r.code, stderr: r.stderr.trim() }).toEqual({ step: deleteAll.join(' '), code: 0, stderr: '' });
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await steps.need().stop()).toEqual([]);
  });
});
