/**
 * What this node runs: its Node object as the kubelet reports it ({@link readNode}), and for the target chosen
 * the container runtime's version (from the Node object, which the kubelet fills from the runtime it really
 * talks to, else from the host's runtime binary), the handlers the kubelet reports, and the host binary that can
 * judge a candidate config ({@link detectRuntime}). Which target the node is: detect-target.ts.
 */
import type { TargetSpec } from '../../catalog';
import { messageOf } from '../errors';
import { CommandRunner } from '../host/commands';
import { HostFs } from '../host/fs';
import { ClusterApi, NodeInfo } from '../kube/cluster';
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
}

/** The `<scheme>://` the kubelet prefixes the runtime version with, per CRI of the catalog. */
export const VERSION_SCHEME: Record<TargetSpec['cri'], string> = { containerd: 'containerd://', crio: 'cri-o://' };

/**
 * This node's Node object; undefined without a cluster or a node name, or when it cannot be read (then the run
 * goes on with what the host says, and says so).
 */
export async function readNode(cluster: ClusterApi | undefined, nodeName: string | undefined, log: Logger): Promise<NodeInfo | undefined> {
  if (!cluster || !nodeName) return undefined;
  try {
    return await cluster.getNode(nodeName);
  } catch (error) {
    log.warn('cannot read the node object; what the node is comes from its files, the runtime version from the host binary or the catalog', { error: messageOf(error) });
    return undefined;
  }
}

export async function detectRuntime(target: TargetSpec, fs: HostFs, runner: CommandRunner, node: NodeInfo | undefined, log: Logger): Promise<NodeRuntime> {
  const reported = node?.containerRuntimeVersion ?? '';
  // Another CRI on the Node is a target mismatch, refused before this runs (detect-target.ts).
  const fromNode = reported.startsWith(VERSION_SCHEME[target.cri]) ? parseRuntimeVersion(reported) : undefined;
  const nodeHandlers = node?.runtimeHandlers && node.runtimeHandlers.length > 0 ? node.runtimeHandlers : undefined;
  const binary = await findRuntimeBinary(target, fs, runner);
  const fromBinary = parseRuntimeVersion(binary?.version);
  if (fromNode && fromBinary && fromNode.major !== fromBinary.major) {
    log.warn(`the node reports ${target.cri} ${formatVersion(fromNode)} but ${binary?.path} is ${formatVersion(fromBinary)}: the kubelet talks to another ${target.cri} than that binary`);
  }
  const version = fromNode ?? fromBinary;
  const versionText = fromNode ? reported : binary?.versionText;
  const versionSource = fromNode ? 'as reported by the node object' : fromBinary ? `as ${binary?.path} --version reports` : 'unknown';
  return { version, versionText, versionSource, binary, nodeHandlers };
}
