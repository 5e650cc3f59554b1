/**
 * The restart budget: at most K nodes restart their container runtime at once, across the cluster. Each slot
 * is a coordination.k8s.io Lease `knawd-restart-<i>` in the installer's namespace (the constructs create the K
 * objects; the installer may only get and update them, by name).
 *
 * Protocol, per node (the holder identity is the node's name):
 * - take: read the slots (starting at one derived from the node's name, so nodes spread over them) and write
 *   ourselves as holder into the first one that is free, ours already (an earlier run on this node died
 *   holding it), or expired; the write carries the resourceVersion it was read at, so of two nodes taking the
 *   same slot one gets 409 Conflict and reads on. While every slot is taken, wait and read again.
 * - expired: a holder renews every third of the lease duration, which changes the Lease's resourceVersion. A
 *   slot whose resourceVersion this process has seen unchanged for longer than the duration has a dead holder.
 *   This is measured on this process's monotonic clock, never by comparing the holder's renewTime with ours, so
 *   clock skew between nodes cannot free a slot early (the way client-go's leader election judges leases).
 * - hold: renew while the restart runs; if the slot was taken over anyway (the API server did not answer for
 *   a whole duration), say so loudly: the restart in progress cannot be undone.
 * - release: once the runtime is back and verified (or the run failed), write the slot free again; should
 *   that fail, the lease expires by itself.
 */
import { restartLeaseName } from '../../catalog';
import { InstallerError, messageOf } from '../errors';
import { Logger } from '../log';
import { ClusterApi, Lease, LeaseSpec } from './cluster';

export interface BudgetOptions {
  /** The installer's namespace, where the Leases are. */
  readonly namespace: string;
  /** K. */
  readonly slots: number;
  /** How long a slot stays taken after its holder's last renewal. */
  readonly leaseSeconds: number;
  /** This node's name. */
  readonly holder: string;
  /** Pause between two rounds of reading the slots while all are taken (jittered ±50 %). @default 2000 */
  readonly pollMs?: number;
}

/** A slot this run holds; renewed until released. */
export interface HeldSlot {
  readonly name: string;
  /** How long this run waited for it. */
  readonly waitedMs: number;
  /** Frees the slot (once; later calls do nothing). Never throws: a slot that cannot be freed expires. */
  release(): Promise<void>;
}

/** Told once, when a run finds every slot taken and starts waiting: the current holders. */
export type WaitListener = (holders: readonly string[]) => Promise<void>;

const DEFAULT_POLL_MS = 2000;
const STILL_WAITING_LOG_MS = 60_000;

/** A Lease MicroTime: RFC 3339 with exactly six fractional digits (the API server refuses fewer). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Where a node starts looking, so that K nodes arriving at once do not all race for slot 0. */
function firstSlot(holder: string, slots: number): number {
  let hash = 0;
  for (const c of holder) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return hash % slots;
}

export class RestartBudget {
  /** resourceVersion of each slot as last seen, and since when (monotonic ms). */
  private readonly seen = new Map<string, { resourceVersion: string; since: number }>();

  constructor(
    private readonly cluster: ClusterApi,
    private readonly options: BudgetOptions,
    private readonly log: Logger,
  ) {}

  /** Waits until this node holds a slot. `onWait` is called once if it has to wait. */
  async acquire(onWait: WaitListener): Promise<HeldSlot> {
    const { namespace, slots, holder } = this.options;
    const start = monotonicMs();
    const first = firstSlot(holder, slots);
    const order = Array.from({ length: slots }, (_, i) => restartLeaseName((first + i) % slots));
    let waiting = false;
    let lastLog = start;
    for (;;) {
      const holders: string[] = [];
      let found = 0;
      for (const name of order) {
        const lease = await this.cluster.getLease(namespace, name);
        if (!lease) continue;
        found++;
        const taken = await this.tryTake(lease);
        if (taken) {
          const waitedMs = monotonicMs() - start;
          this.log.info(`holding restart slot ${namespace}/${name}${waiting ? ` after waiting ${Math.round(waitedMs / 1000)} s` : ''}`, { slots });
          return this.hold(taken, waitedMs);
        }
        holders.push(lease.spec.holderIdentity ?? name);
      }
      if (found === 0) {
        throw new InstallerError(
          `none of the restart slots ${order.join(', ')} exists in namespace ${namespace}`,
          `create the Leases (the chart and the manifests do, one per slot of maxConcurrentRestarts), or run with the --namespace / --max-concurrent-restarts they were made for`,
        );
      }
      if (!waiting) {
        waiting = true;
        this.log.info(`waiting for one of ${slots} restart slot(s), held by ${holders.join(', ')}`);
        await onWait(holders);
      } else if (monotonicMs() - lastLog >= STILL_WAITING_LOG_MS) {
        lastLog = monotonicMs();
        this.log.info(`still waiting for a restart slot (${Math.round((lastLog - start) / 1000)} s), held by ${holders.join(', ')}`);
      }
      const poll = this.options.pollMs ?? DEFAULT_POLL_MS;
      await sleep(poll * (0.5 + Math.random()));
    }
  }

  /** Writes us in as holder when the slot may be taken; undefined when it is someone else's or another node won. */
  private async tryTake(lease: Lease): Promise<Lease | undefined> {
    const { holder } = this.options;
    const current = lease.spec.holderIdentity;
    if (current && current !== holder && !this.expired(lease)) return undefined;
    if (current && current !== holder) this.log.warn(`restart slot ${lease.name} was held by ${current}, which stopped renewing it: taking it over`);
    const now = microTime(new Date());
    const spec: LeaseSpec = {
      holderIdentity: holder,
      leaseDurationSeconds: this.options.leaseSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (lease.spec.leaseTransitions ?? 0) + (current === holder ? 0 : 1),
    };
    const written = await this.cluster.updateLease(this.options.namespace, lease, spec);
    return written === 'conflict' ? undefined : written;
  }

  private expired(lease: Lease): boolean {
    const now = monotonicMs();
    const seen = this.seen.get(lease.name);
    if (!seen || seen.resourceVersion !== lease.resourceVersion) {
      this.seen.set(lease.name, { resourceVersion: lease.resourceVersion, since: now });
      return false;
    }
    const duration = lease.spec.leaseDurationSeconds ?? this.options.leaseSeconds;
    return now - seen.since > duration * 1000;
  }

  private hold(taken: Lease, waitedMs: number): HeldSlot {
    const { namespace, holder, leaseSeconds } = this.options;
    let lease = taken;
    let lost = false;
    let released = false;
    // Renewals and the release are written one after the other, each at the resourceVersion the last one left.
    let queue: Promise<void> = Promise.resolve();
    const write = async (spec: (l: Lease) => LeaseSpec, what: string): Promise<void> => {
      for (let attempt = 0; attempt < 2 && !lost; attempt++) {
        const written = await this.cluster.updateLease(namespace, lease, spec(lease));
        if (written !== 'conflict') {
          lease = written;
          return;
        }
        const fresh = await this.cluster.getLease(namespace, lease.name);
        if (!fresh || fresh.spec.holderIdentity !== holder) {
          lost = true;
          this.log.error(`restart slot ${namespace}/${lease.name} was taken over by ${fresh?.spec.holderIdentity ?? 'nobody (it was deleted)'} while this node held it (${what})`, {
            fix: `the API server did not take a renewal for ${leaseSeconds} s; more than the budget's runtimes may be restarting at once`,
          });
          return;
        }
        lease = fresh;
      }
    };
    const renewals = setInterval(() => {
      queue = queue
        .then(() => write((l) => ({ ...l.spec, renewTime: microTime(new Date()) }), 'renewal'))
        .catch((error) => this.log.warn(`renewing restart slot ${lease.name} failed; retrying`, { error: messageOf(error) }));
    }, (leaseSeconds * 1000) / 3);
    renewals.unref();
    return {
      name: taken.name,
      waitedMs,
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(renewals);
        await queue;
        try {
          await write((l) => ({ leaseDurationSeconds: l.spec.leaseDurationSeconds, leaseTransitions: l.spec.leaseTransitions }), 'release');
          if (!lost) this.log.info(`released restart slot ${namespace}/${taken.name}`);
        } catch (error) {
          this.log.warn(`could not release restart slot ${taken.name}: it frees itself ${leaseSeconds} s after its last renewal`, { error: messageOf(error) });
        }
      },
    };
  }
}

/** Runs `work` holding a slot of `budget` (or at once without one), releasing it however `work` ends. */
export async function withRestartSlot<T>(budget: RestartBudget | undefined, onWait: WaitListener, work: () => Promise<T>): Promise<T> {
  if (!budget) return work();
  const slot = await budget.acquire(onWait);
  try {
    return await work();
  } finally {
    await slot.release();
  }
}
