/**
 * Which pods on this node still run under the original knawd-deployer's handler: the runtime's own answer (CRI
 * ListPodSandbox), since after the upgrade the RuntimeClass `crun` names our handler and the API no longer tells
 * which handler a running pod got. Only ready sandboxes count: a stopped one holds no container.
 */
import { ORIGINAL_HANDLER } from '../../catalog';
import { messageOf } from '../errors';
import { Logger } from '../log';
import { HostView } from '../plan/plan';
import { findOriginal, OriginalFindings } from '../plan/takeover';
import { CriSandboxLister } from './cri-status';

const LIST_TIMEOUT_MS = 10_000;

/**
 * The original's leftovers with the pods under its handler, for planInstall; undefined when nothing of the
 * original's is on the node. The pods are unknown (undefined) when the runtime is not running or cannot be asked.
 */
export async function originalOnNode(
  view: HostView,
  socket: string,
  running: boolean,
  list: CriSandboxLister | undefined,
  log: Logger,
): Promise<{ findings: OriginalFindings; podsUnderOriginal: string[] | undefined } | undefined> {
  const findings = findOriginal(view);
  if (!findings) return undefined;
  if (findings.configs.length === 0) return { findings, podsUnderOriginal: [] };
  if (!running || !list) return { findings, podsUnderOriginal: undefined };
  try {
    const sandboxes = await list(socket, LIST_TIMEOUT_MS);
    const pods = sandboxes.filter((s) => s.ready && s.runtimeHandler === ORIGINAL_HANDLER).map((s) => `${s.namespace}/${s.name}`);
    return { findings, podsUnderOriginal: [...new Set(pods)].sort() };
  } catch (error) {
    log.warn(`cannot list the pods on the runtime (${messageOf(error)}): the original knawd-deployer's handler ${ORIGINAL_HANDLER} stays until they can be listed`);
    return { findings, podsUnderOriginal: undefined };
  }
}
