/**
 * The Kubernetes releases the cluster suites run on (tools/versions.env): every suite on the newest, the
 * version-sensitive ones (admission policies, the schemas of every shipped object, the chart through Helm) on the
 * oldest supported release too; the node harness test runs a kubelet of each.
 */
import { KubernetesRelease, pinnedVersion, RELEASE_KEYS } from '../../../demo/cluster/control-plane';

export const KUBERNETES_RELEASES: readonly KubernetesRelease[] = ['newest', 'oldest'];

/** The pinned Kubernetes and etcd versions of a release (`v1.37.2`, `v3.7.4`). */
export function releaseVersions(release: KubernetesRelease): { kubernetes: string; etcd: string } {
  return { kubernetes: pinnedVersion(RELEASE_KEYS[release].kubernetes), etcd: pinnedVersion(RELEASE_KEYS[release].etcd) };
}

/** `1.37` of `v1.37.2`. */
export function minorOf(version: string): number {
  const m = /^v1\.(\d+)\./.exec(version);
  if (!m) throw new Error(`not a Kubernetes version: ${version}`);
  return Number(m[1]);
}
