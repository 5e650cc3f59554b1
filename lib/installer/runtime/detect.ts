/**
 * What this node runs: the container runtime's version (from the Node object, which the kubelet fills from the
 * runtime it really talks to, else from the host's runtime binary), the handlers the kubelet reports, and the
 * host binary that can judge a candidate config.
 */
import type { TargetSpec } from '../../catalog';
import { messageOf } from '../errors';
import { CommandRunner } from '../host/commands';
import { HostFs } from '../host/fs';
import { ClusterApi } from '../kube/cluster';
import { Logger } from '../log';
import { findRuntimeBinary, RuntimeBinary } from './loader';
import { formatVersion, parseRuntimeVersion, RuntimeVersion } from './version';

export interface NodeRuntime {
  /** The runtime's version, when the Node object or the host binary said. */
  readonly version?: RuntimeVersion;
  /** The version as it was printed (`cri-o://1.30.0-dev`): CRI-O's rules tell pre-releases apart. */
  readonly versionText?: string;
  /** Where `version` came from, for humans. */
  readonly versionSource: string;
  /** The host binary that loads candidate configs; undefined when none of the target's was found. */
  readonly binary?: RuntimeBinary;
  /**
   * `node.status.runtimeHandlers` as the kubelet reports them (Kubernetes 1.30+, when the runtime reports
   * them over CRI); undefined when the node reports none or could not be read.
   */
  readonly nodeHandlers?: readonly string[];
  /** The Node's labels as read now; undefined when the Node was not read. */
  readonly nodeLabels?: Readonly<Record<string, string>>;
}

/** The `<scheme>://` the kubelet prefixes the runtime version with, per CRI of the catalog. */
const VERSION_SCHEME: Record<TargetSpec['cri'], string> = { containerd: 'containerd://', crio: 'cri-o://' };

export async function detectRuntime(
  target: TargetSpec,
  fs: HostFs,
  runner: CommandRunner,
  cluster: ClusterApi | undefined,
  nodeName: string | undefined,
  log: Logger,
): Promise<NodeRuntime> {
  let fromNode: RuntimeVersion | undefined;
  let nodeText: string | undefined;
  let nodeHandlers: readonly string[] | undefined;
  let nodeLabels: Readonly<Record<string, string>> | undefined;
  if (cluster && nodeName) {
    try {
      const node = await cluster.getNode(nodeName);
      nodeLabels = node.labels;
      const reported = node.containerRuntimeVersion ?? '';
      if (reported.startsWith(VERSION_SCHEME[target.cri])) {
        fromNode = parseRuntimeVersion(reported);
        nodeText = reported;
      }
      else if (reported !== '') log.warn(`the node reports runtime ${reported}, but target ${target.name} configures ${target.cri}`);
      if (node.runtimeHandlers && node.runtimeHandlers.length > 0) nodeHandlers = node.runtimeHandlers;
    } catch (error) {
      log.warn('cannot read the node object; the runtime version comes from the host binary or the catalog', { error: messageOf(error) });
    }
  }
  const binary = await findRuntimeBinary(target, fs, runner);
  const fromBinary = parseRuntimeVersion(binary?.version);
  if (fromNode && fromBinary && fromNode.major !== fromBinary.major) {
    log.warn(`the node reports ${target.cri} ${formatVersion(fromNode)} but ${binary?.path} is ${formatVersion(fromBinary)}: the kubelet talks to another ${target.cri} than that binary`);
  }
  const version = fromNode ?? fromBinary;
  const versionText = fromNode ? nodeText : binary?.versionText;
  const versionSource = fromNode ? 'as reported by the node object' : fromBinary ? `as ${binary?.path} --version reports` : 'unknown';
  return { version, versionText, versionSource, binary, nodeHandlers, nodeLabels };
}
