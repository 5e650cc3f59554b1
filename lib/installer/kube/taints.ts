/**
 * The optional startup taint: a taint (a node provisioner's startup taint, say) that keeps workloads off a
 * node until it is installed; once it is, the installer takes it away, so WASM workloads never race the
 * install. Only that taint, only removed: the node-restriction policy refuses anything else on the spec.
 */
import { formatTaint, StartupTaint } from '../../catalog';
import { Logger } from '../log';
import { ClusterApi } from './cluster';

const ATTEMPTS = 5;

/** Removes `taint` (matched by key and effect) from the node if it carries it. */
export async function removeStartupTaint(cluster: ClusterApi, nodeName: string, taint: StartupTaint, log: Logger): Promise<void> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const taints = await cluster.nodeTaints(nodeName);
    const index = taints.findIndex((t) => t.key === taint.key && t.effect === taint.effect);
    if (index < 0) {
      if (attempt === 0) log.debug(`node ${nodeName} does not carry the startup taint ${formatTaint(taint)}`);
      return;
    }
    // The taint as the Node has it (its value and timeAdded too): the JSON patch tests for exactly that entry.
    if ((await cluster.removeNodeTaint(nodeName, index, taints[index])) === 'removed') {
      log.info(`removed the startup taint ${formatTaint(taint)} from node ${nodeName}`);
      return;
    }
  }
  log.warn(`the taints of node ${nodeName} kept changing: the startup taint ${formatTaint(taint)} was not removed`, { fix: `remove it by hand: kubectl taint node ${nodeName} ${formatTaint(taint)}-` });
}
