/** The node label the RuntimeClass schedules on: set after a successful install, taken away first on remove. */
import { INSTALLED_LABEL } from '../../catalog';
import { Logger } from '../log';
import { ClusterApi } from './cluster';

export async function labelNode(cluster: ClusterApi | undefined, nodeName: string | undefined, log: Logger, action: 'set' | 'remove'): Promise<void> {
  if (!cluster) {
    log.info('not running against a cluster (no in-cluster config, no kubeconfig): skipping the node label');
    return;
  }
  if (!nodeName) {
    log.warn('no node name (NODE_NAME or --node-name): skipping the node label', { fix: 'set NODE_NAME from spec.nodeName in the pod' });
    return;
  }
  const node = await cluster.getNode(nodeName);
  const current = node.labels[INSTALLED_LABEL.key];
  if (action === 'set' && current !== INSTALLED_LABEL.value) {
    await cluster.setNodeLabel(nodeName, INSTALLED_LABEL.key, INSTALLED_LABEL.value);
    log.info(`labelled node ${nodeName} ${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`);
  } else if (action === 'remove' && current !== undefined) {
    await cluster.setNodeLabel(nodeName, INSTALLED_LABEL.key, null);
    log.info(`removed label ${INSTALLED_LABEL.key} from node ${nodeName}`);
  }
}
