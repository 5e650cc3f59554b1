/** What the node says about its container runtime. */
import { CrioVersion, parseCrioVersion } from '../../toml';
import { messageOf } from '../errors';
import { CommandRunner, IN_HOST } from '../host/commands';
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

/** A CRI-O version and where it was read, for the log. */
export interface CrioVersionReport {
  readonly version: CrioVersion;
  readonly source: 'node object' | 'host crio --version';
}

const CRIO_VERSION_TIMEOUT_MS = 30_000;

/**
 * The node's CRI-O version: from the Node object (`cri-o://1.36.3`, what the kubelet got from the running
 * daemon), else from the host's own binary (`crio --version` in PID 1's mount namespace, what a restart will
 * run). Undefined when neither answers; the drop-in then gets the form every CRI-O release accepts.
 */
export async function nodeCrioVersion(
  cluster: ClusterApi | undefined,
  nodeName: string | undefined,
  runner: CommandRunner,
  log: Logger,
): Promise<CrioVersionReport | undefined> {
  if (cluster && nodeName) {
    try {
      const version = parseCrioVersion((await cluster.getNode(nodeName)).containerRuntimeVersion);
      if (version) return { version, source: 'node object' };
    } catch (error) {
      log.warn('cannot read the node object; asking the host crio binary for its version', { error: messageOf(error) });
    }
  }
  const result = await runner.run([...IN_HOST, 'crio', '--version'], CRIO_VERSION_TIMEOUT_MS);
  const version = result.code === 0 ? parseCrioVersion(result.stdout) : undefined;
  if (version) return { version, source: 'host crio --version' };
  log.debug('no CRI-O version: neither the node object nor `crio --version` on the host answered', {
    exitCode: result.code,
    stderr: result.stderr.trim().slice(0, 200),
  });
  return undefined;
}
