/** What the node says about its container runtime. */
import { messageOf } from '../errors';
import { ClusterApi } from '../kube/cluster';
import { Logger } from '../log';
import { containerdMajorOf } from './config-edit';

/** The containerd major the Node object reports; undefined without a cluster, a node name, or an answer. */
export async function nodeContainerdMajor(cluster: ClusterApi | undefined, nodeName: string | undefined, log: Logger): Promise<1 | 2 | undefined> {
  if (!cluster || !nodeName) return undefined;
  try {
    const node = await cluster.getNode(nodeName);
    return containerdMajorOf(node.containerRuntimeVersion);
  } catch (error) {
    log.warn('cannot read the node object; using the catalog default containerd version', { error: messageOf(error) });
    return undefined;
  }
}
