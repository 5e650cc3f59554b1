/** What the installer's runs reach outside the process through, and what a run reports. */
import { CommandRunner } from './host/commands';
import { HostFs } from './host/fs';
import { StopRequest } from './host/signals';
import { ClusterApi } from './kube/cluster';
import { Logger } from './log';
import { CriSandboxLister, CriStatusReader } from './runtime/cri-status';
import { SocketProbe, SocketWaiter } from './runtime/socket';

/** Everything that reaches outside the process. Tests inject recorders and fakes. */
export interface Effects {
  readonly fs: HostFs;
  readonly runner: CommandRunner;
  /** Whether the runtime's socket answers now: is it running at all. */
  readonly probeSocket: SocketProbe;
  readonly waitForSocket: SocketWaiter;
  /** Asks the runtime which handlers it serves (CRI Status). */
  readonly readCriStatus: CriStatusReader;
  /** Lists the runtime's pod sandboxes (CRI ListPodSandbox); undefined: the pods are unknown. */
  readonly listPodSandboxes?: CriSandboxLister;
  /** Undefined when not running against a cluster: the API steps are skipped. */
  readonly cluster?: ClusterApi;
  readonly log: Logger;
  /** SIGTERM/SIGINT asking the run to stop (host/signals.ts); undefined: never asked. */
  readonly stop?: StopRequest;
  /** The node's architecture by its OCI name (amd64, arm64, s390x...); undefined: this process's (installer-image.ts). */
  readonly architecture?: string;
}

/** What a run did; the counters are what the benchmark reads. */
export interface RunReport {
  readonly bytesWritten: number;
  readonly filesWritten: number;
  readonly restarts: number;
  /** The runtime has not been restarted since its config changed (`--restart none`). */
  readonly restartPending: boolean;
  /** Host paths created, changed or deleted. */
  readonly changed: readonly string[];
}
