/**
 * The restart budget: at most K nodes restart their container runtime at once, across the cluster. Each slot
 * is a coordination.k8s.io Lease `knawd-restart-<i>` in the installer's namespace (the constructs create the K
 * objects; the installer gets and updates them by name).
 *
 * Waiting (issue 32). Polling the slots costs every waiting node K reads per round for as long as it waits:
 * 5,000 nodes and K=10 would be ~25,000 GETs/s for hours, and every release a write race among all of them.
 * Instead a node
 * - lists the slots (by a label selector that leaves the tickets out): one of them may be its own already;
 * - takes a ticket: a Lease `knawd-restart-wait-<node>` of its own (a create never conflicts). The queue is the
 *   tickets in the order of their creationTimestamp (the API server's clock, so the nodes' clocks do not
 *   matter; ties within a second by name);
 * - lists the namespace's Leases once, after its ticket exists: every ticket made before its own is in that
 *   list, so it knows who is ahead of it, and every later ticket is behind it and need not be seen at all;
 * - watches the slots only, from that list's resourceVersion: a node ahead of it that takes a slot leaves the
 *   queue (the taker is the slot's new holder), and releases, takes and renewals come as they happen; while
 *   nothing changes it asks nothing;
 * - takes a slot only when its turn has come: with `a` slots available and `r` nodes still ahead of it, it
 *   takes the r-th available slot when r < a. Every waiter computes the same from the same events, so one
 *   release is one write by the node whose turn it is, and simultaneous releases go to distinct nodes: 409s
 *   come only from waiters whose view lags by an event;
 * - deletes its ticket once it holds a slot.
 * A node costs two lists, a ticket, a watch, a take and the ticket's deletion (plus the release and the
 * renewals of its restart) however long it waits; each slot write is streamed to every waiting node (a slot's
 * release and take: two events per hand-over and waiter, no ticket events at all).
 *
 * Failures:
 * - a dead holder: a holder renews every third of the lease duration, which changes the Lease's
 *   resourceVersion. A slot this process has seen unchanged for longer than the duration is available. This is
 *   measured on this process's monotonic clock, never by comparing the holder's renewTime with ours, so clock
 *   skew between nodes cannot free a slot early (the way client-go's leader election judges leases).
 * - a dead waiter: a slot left available for a whole lease duration has a waiter at its turn that does not
 *   take it; every waiter behind it passes over that ticket, and the node that takes the slot deletes it. (One
 *   that was only slow keeps its place in its own view and takes a slot in its turn, at worst after a 409.)
 * - a node's own slot (an earlier run died holding it) is taken back at once; a node's own ticket from an
 *   earlier run keeps its place.
 * - 409 on a take: someone else took it; the watch brings that write. API errors, 429s and a watch that ends
 *   or breaks (an API server restart): backoff (0.5 s doubling to 30 s, jittered), then the watch resumes
 *   from the last version seen; 410 Gone (that version is compacted away) or an ERROR event: list again.
 *   Bad requests and missing permissions fail the run (retrying cannot help).
 * - hold: renew while the restart runs; if the slot was taken over anyway (the API server did not answer for
 *   a whole duration), say so loudly: the restart in progress cannot be undone.
 * - release: once the runtime is back and verified (or the run failed), write the slot free again; should
 *   that fail, the lease expires by itself.
 */
import { RESTART_TICKET_LABEL, RESTART_TICKET_PREFIX, restartLeaseName } from '../../catalog';
import { InstallerError, messageOf } from '../errors';
import { Logger } from '../log';
import { ApiCallError, ClusterApi, Lease, LeaseEvent, LeaseSpec, LeaseWatch } from './cluster';
import { KubeApiError } from './http';

export interface BudgetOptions {
  /** The installer's namespace, where the Leases are. */
  readonly namespace: string;
  /** K. */
  readonly slots: number;
  /** How long a slot stays taken after its holder's last renewal. */
  readonly leaseSeconds: number;
  /** This node's name. */
  readonly holder: string;
  /** A watch that brings nothing (not even a bookmark) for this long is taken for a dead connection. @default 90000 */
  readonly watchIdleMs?: number;
  /** First pause after a failed call or watch; doubles up to 30 s. @default 500 */
  readonly retryMs?: number;
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

const DEFAULT_WATCH_IDLE_MS = 90_000;
const DEFAULT_RETRY_MS = 500;
const MAX_RETRY_MS = 30_000;
const STILL_WAITING_LOG_MS = 60_000;
const MAX_NAME = 253;

/** A Lease MicroTime: RFC 3339 with exactly six fractional digits (the API server refuses fewer). */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** The name of a node's ticket: the prefix and the node's name, shortened with a hash when too long for a name. */
export function ticketName(holder: string): string {
  const name = `${RESTART_TICKET_PREFIX}${holder}`;
  if (name.length <= MAX_NAME) return name;
  let hash = 0;
  for (const c of holder) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `${name.slice(0, MAX_NAME - 9).replace(/[.-]+$/, '')}-${hash.toString(16).padStart(8, '0')}`;
}

function monotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Errors worth waiting out: no answer, throttling, conflicts of the API server itself, server errors. */
function transient(error: unknown): boolean {
  if (!(error instanceof ApiCallError || error instanceof KubeApiError)) return false;
  const status = error.status;
  return status === undefined || status === 429 || status === 410 || status >= 500;
}


/** Queue order: the API server's creation time, then the name. */
function byArrival(a: Lease, b: Lease): number {
  return a.created < b.created ? -1 : a.created > b.created ? 1 : a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
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
    const wait = new SlotWait(this.cluster, this.options, this.log, (lease) => this.expired(lease));
    const { lease, waitedMs, waited } = await wait.run(onWait);
    this.log.info(`holding restart slot ${this.options.namespace}/${lease.name}${waited ? ` after waiting ${Math.round(waitedMs / 1000)} s` : ''}`, { slots: this.options.slots });
    return this.hold(lease, waitedMs);
  }

  /** Whether a slot held by someone else has gone unrenewed for its duration, on this process's clock; else when it would be. */
  private expired(lease: Lease): { expired: boolean; at: number } {
    const now = monotonicMs();
    const seen = this.seen.get(lease.name);
    const duration = (lease.spec.leaseDurationSeconds ?? this.options.leaseSeconds) * 1000;
    if (!seen || seen.resourceVersion !== lease.resourceVersion) {
      this.seen.set(lease.name, { resourceVersion: lease.resourceVersion, since: now });
      return { expired: false, at: now + duration + 1 };
    }
    return { expired: now - seen.since > duration, at: seen.since + duration + 1 };
  }

  /**
   * A renewal or the release through a throttled or briefly unreachable API server: a few tries over a third of
   * the lease duration at most, then the error (a release left undone costs the others one lease duration).
   */
  private async patiently<T>(call: () => Promise<T>): Promise<T> {
    const deadline = monotonicMs() + (this.options.leaseSeconds * 1000) / 3;
    let pause = this.options.retryMs ?? DEFAULT_RETRY_MS;
    for (;;) {
      try {
        return await call();
      } catch (error) {
        if (!transient(error) || monotonicMs() + pause > deadline) throw error;
        await sleep(pause * (0.5 + Math.random()));
        pause *= 2;
      }
    }
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
        const written = await this.patiently(() => this.cluster.updateLease(namespace, lease, spec(lease)));
        if (written !== 'conflict') {
          lease = written;
          return;
        }
        const fresh = await this.patiently(() => this.cluster.getLease(namespace, lease.name));
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

type Decision =
  | { readonly kind: 'take'; readonly slot: Lease; readonly passedOver: readonly string[] }
  | { readonly kind: 'wait'; readonly place: number; readonly until: number | undefined };

/** Selects the slots (and whatever else lives in the namespace) but not the tickets. */
const NOT_TICKETS = `!${RESTART_TICKET_LABEL}`;

/**
 * One acquire: the slots as the list and the watch tell them, the tickets ahead of ours, and the loop that
 * acts on them.
 */
class SlotWait {
  private readonly names: string[];
  private readonly slots = new Map<string, Lease>();
  /**
   * The tickets ahead of ours, as the list after ours showed them: their names oldest first, and those still
   * waiting (a node that takes a slot leaves the queue). Our place is how many are still waiting.
   */
  private aheadOrder: string[] = [];
  private readonly ahead = new Set<string>();
  /** Since when (monotonic) each available slot has been available, at the resourceVersion it was seen at. */
  private readonly availableSince = new Map<string, { resourceVersion: string; since: number }>();
  /** Slots (`name@resourceVersion`) this run lost a take of: not tried again until they change. */
  private readonly lostAt = new Set<string>();
  /** Tickets of nodes passed over: deleted by whoever takes the slot. */
  private readonly passedOver: string[] = [];
  private readonly ticket: string;
  private hasTicket = false;
  private resourceVersion = '';
  /** `slots`: the slots were listed (they exist; none is ours); `queue`: our ticket and those ahead of it too. */
  private listed: 'no' | 'slots' | 'queue' = 'no';
  private watch: LeaseWatch | undefined;
  /** Set when the watch ended: how to go on. */
  private watchEnded: 'resume' | 'relist' | undefined;
  private failures = 0;
  private wake: (() => void) | undefined;
  private changed = false;

  constructor(
    private readonly cluster: ClusterApi,
    private readonly options: BudgetOptions,
    private readonly log: Logger,
    private readonly expired: (lease: Lease) => { expired: boolean; at: number },
  ) {
    this.names = Array.from({ length: options.slots }, (_, i) => restartLeaseName(i));
    this.ticket = ticketName(options.holder);
  }

  async run(onWait: WaitListener): Promise<{ lease: Lease; waitedMs: number; waited: boolean }> {
    const start = monotonicMs();
    let told = false;
    let lastLog = start;
    try {
      for (;;) {
        // The slots first (cheap, and the error when there are none), then our ticket, then the queue.
        if (this.listed === 'no' && !(await this.attempt(() => this.listSlots()))) continue;
        const own = this.listed === 'slots' ? this.ownSlot() : undefined;
        if (!own && !this.hasTicket && !(await this.attempt(() => this.takeTicket()))) continue;
        if (!own && this.listed === 'slots' && !(await this.attempt(() => this.listQueue()))) continue;
        if (!own && !this.watch && !(await this.attempt(async () => this.startWatch()))) continue;
        const decision: Decision = own ? { kind: 'take', slot: own, passedOver: [] } : this.decide();
        if (decision.kind === 'take') {
          const taken = await this.attempt(() => this.take(decision.slot));
          if (taken) {
            await this.cleanUp(decision.passedOver);
            return { lease: taken, waitedMs: monotonicMs() - start, waited: told };
          }
          continue;
        }
        if (!told) {
          told = true;
          const holders = this.names.map((n) => this.slots.get(n)?.spec.holderIdentity).filter((h): h is string => !!h);
          this.log.info(`waiting for one of ${this.options.slots} restart slot(s), held by ${holders.join(', ') || 'nobody'}`);
          await onWait(holders);
        } else if (monotonicMs() - lastLog >= STILL_WAITING_LOG_MS) {
          lastLog = monotonicMs();
          this.log.info(`still waiting for a restart slot (${Math.round((lastLog - start) / 1000)} s), ${decision.place} node(s) ahead in the queue`);
        }
        await this.nextChange(decision.until);
        if (this.watchEnded) await this.afterWatchEnded();
      }
    } catch (error) {
      await this.cleanUp([]);
      throw error;
    } finally {
      this.watch?.stop();
    }
  }

  /** Runs one API step; a transient failure is waited out (backoff) and answered false, any other thrown. */
  private async attempt<T>(step: () => Promise<T>): Promise<T | false> {
    try {
      const result = await step();
      this.failures = 0;
      return result;
    } catch (error) {
      if (!transient(error)) throw error;
      const pause = this.backoff();
      this.log.warn(`restart slots: ${messageOf(error)}; retrying in ${(pause / 1000).toFixed(1)} s`);
      await sleep(pause);
      return false;
    }
  }

  private backoff(): number {
    const base = Math.min(MAX_RETRY_MS, (this.options.retryMs ?? DEFAULT_RETRY_MS) * 2 ** this.failures++);
    return base * (0.5 + Math.random());
  }

  private async listSlots(): Promise<true> {
    const { namespace } = this.options;
    const list = await this.cluster.listLeases(namespace, NOT_TICKETS);
    this.noteSlots(list.leases);
    if (this.slots.size === 0) {
      throw new InstallerError(
        `none of the restart slots ${this.names.join(', ')} exists in namespace ${namespace}`,
        `create the Leases (the chart and the manifests do, one per slot of maxConcurrentRestarts), or run with the --namespace / --max-concurrent-restarts they were made for`,
      );
    }
    this.listed = 'slots';
    return true;
  }

  /** A slot held by this node already: an earlier run died holding it. */
  private ownSlot(): Lease | undefined {
    return this.names.map((n) => this.slots.get(n)).find((s) => s?.spec.holderIdentity === this.options.holder);
  }

  private async takeTicket(): Promise<true> {
    // `exists`: ours from an earlier run, which keeps its place.
    await this.cluster.createLease(this.options.namespace, this.ticket, { [RESTART_TICKET_LABEL]: '' }, { holderIdentity: this.options.holder });
    this.hasTicket = true;
    return true;
  }

  /**
   * Everything, listed after our ticket was made: every ticket made before ours is in it, so the queue ahead of
   * us is known from here on; later tickets are behind us and need not be seen at all.
   */
  private async listQueue(): Promise<true> {
    const list = await this.cluster.listLeases(this.options.namespace);
    this.noteSlots(list.leases);
    const holders = new Set(this.names.map((n) => this.slots.get(n)?.spec.holderIdentity).filter((h): h is string => !!h).map(ticketName));
    const tickets = list.leases.filter((l) => l.name.startsWith(RESTART_TICKET_PREFIX) && labelsOf(l)[RESTART_TICKET_LABEL] !== undefined).sort(byArrival);
    const mine = tickets.findIndex((t) => t.name === this.ticket);
    if (mine < 0) {
      // Passed over (deleted) before we listed: a new ticket, at the end of the queue.
      this.hasTicket = false;
      return true;
    }
    this.aheadOrder = tickets
      .slice(0, mine)
      .map((t) => t.name)
      .filter((name) => !holders.has(name));
    this.ahead.clear();
    for (const name of this.aheadOrder) this.ahead.add(name);
    this.resourceVersion = list.resourceVersion;
    this.listed = 'queue';
    return true;
  }

  private noteSlots(leases: readonly Lease[]): void {
    for (const lease of leases) if (this.names.includes(lease.name)) this.noteSlot(lease, false);
  }

  private noteSlot(lease: Lease, deleted: boolean): void {
    if (deleted) {
      this.slots.delete(lease.name);
      return;
    }
    this.slots.set(lease.name, lease);
    // A node that takes a slot leaves the queue.
    const holder = lease.spec.holderIdentity;
    if (holder) this.ahead.delete(ticketName(holder));
  }

  /** What to do now, from the slots as last seen and the queue ahead of us. */
  private decide(): Decision {
    const { leaseSeconds } = this.options;
    const now = monotonicMs();
    let until: number | undefined;
    const soonest = (at: number): void => void (until = until === undefined ? at : Math.min(until, at));
    const available: Lease[] = [];
    for (const name of this.names) {
      const slot = this.slots.get(name);
      if (!slot) continue;
      let free = !slot.spec.holderIdentity || slot.spec.holderIdentity === this.options.holder;
      if (!free) {
        const { expired, at } = this.expired(slot);
        if (expired) free = true;
        else soonest(at);
      }
      const since = this.availableSince.get(name);
      if (!free) this.availableSince.delete(name);
      else if (!since || since.resourceVersion !== slot.resourceVersion) this.availableSince.set(name, { resourceVersion: slot.resourceVersion, since: now });
      if (free && !this.lostAt.has(`${name}@${slot.resourceVersion}`)) available.push(slot);
    }
    // A slot available for a whole lease duration: the node whose turn it is does not take it.
    for (let i = 0; i < available.length && i < this.ahead.size; i++) {
      const due = this.availableSince.get(available[i].name)!.since + leaseSeconds * 1000;
      if (now <= due) {
        soonest(due + 1);
        continue;
      }
      this.aheadOrder = this.aheadOrder.filter((name) => this.ahead.has(name));
      const turn = this.aheadOrder[i];
      this.ahead.delete(turn);
      this.log.warn(`restart slot ${available[i].name} stayed free for ${leaseSeconds} s while it was the turn of ${turn}: passing over it`);
      this.passedOver.push(turn);
      this.availableSince.set(available[i].name, { resourceVersion: available[i].resourceVersion, since: now });
      i--;
    }
    const place = this.ahead.size;
    if (place < available.length) return { kind: 'take', slot: available[place], passedOver: this.passedOver };
    return { kind: 'wait', place, until };
  }

  /** Writes us in as holder at the resourceVersion seen; undefined when another node got there first. */
  private async take(slot: Lease): Promise<Lease | undefined> {
    const { holder, namespace } = this.options;
    const current = slot.spec.holderIdentity;
    if (current && current !== holder) this.log.warn(`restart slot ${slot.name} was held by ${current}, which stopped renewing it: taking it over`);
    const now = microTime(new Date());
    const spec: LeaseSpec = {
      holderIdentity: holder,
      leaseDurationSeconds: this.options.leaseSeconds,
      acquireTime: now,
      renewTime: now,
      leaseTransitions: (slot.spec.leaseTransitions ?? 0) + (current === holder ? 0 : 1),
    };
    const written = await this.cluster.updateLease(namespace, slot, spec);
    if (written === 'conflict') {
      // The write that beat ours comes with the watch (or the next list); until then this version is not tried again.
      this.lostAt.add(`${slot.name}@${slot.resourceVersion}`);
      if (!this.watch) this.listed = 'no';
      return undefined;
    }
    return written;
  }

  /** Our ticket, and those of nodes passed over, are no longer in anyone's way. Failures only cost others a lease duration. */
  private async cleanUp(passedOver: readonly string[]): Promise<void> {
    this.watch?.stop();
    for (const name of [...(this.hasTicket ? [this.ticket] : []), ...passedOver]) {
      try {
        await this.cluster.deleteLease(this.options.namespace, name);
      } catch (error) {
        this.log.warn(`could not delete the restart queue ticket ${name}`, { error: messageOf(error) });
      }
    }
    this.hasTicket = false;
  }

  private startWatch(): true {
    this.watchEnded = undefined;
    const watch = this.cluster.watchLeases(this.options.namespace, NOT_TICKETS, this.resourceVersion, (event) => this.onEvent(watch, event), this.options.watchIdleMs ?? DEFAULT_WATCH_IDLE_MS);
    this.watch = watch;
    watch.done.then(
      () => this.ended(watch, 'resume', undefined),
      (error: unknown) => this.ended(watch, error instanceof KubeApiError && error.status === 410 ? 'relist' : 'resume', error),
    );
    return true;
  }

  private onEvent(watch: LeaseWatch, event: LeaseEvent): void {
    if (watch !== this.watch) return;
    if (event.type === 'ERROR') {
      // 410 Gone: the version we resume from is compacted away; anything else: start over from a fresh list too.
      this.log.warn(`restart slots: the watch ended with ${event.status ?? 'an error'}: ${event.message}`);
      watch.stop();
      this.ended(watch, 'relist', undefined);
      return;
    }
    this.failures = 0;
    if (event.type === 'BOOKMARK') this.resourceVersion = event.resourceVersion || this.resourceVersion;
    else {
      this.resourceVersion = event.lease.resourceVersion || this.resourceVersion;
      if (this.names.includes(event.lease.name)) this.noteSlot(event.lease, event.type === 'DELETED');
    }
    this.signal();
  }

  private ended(watch: LeaseWatch, how: 'resume' | 'relist', error: unknown): void {
    if (watch !== this.watch || this.watchEnded) return;
    if (error) this.log.warn(`restart slots: the watch broke: ${messageOf(error)}`);
    this.watchEnded = how;
    this.signal();
  }

  private async afterWatchEnded(): Promise<void> {
    const how = this.watchEnded;
    this.watch?.stop();
    this.watch = undefined;
    this.watchEnded = undefined;
    // A relist reads the queue again too (tickets passed over meanwhile are gone from it).
    if (how === 'relist') this.listed = 'slots';
    // A watch that ends at once again and again (an API server that accepts and drops it) must not spin.
    await sleep(this.backoff());
  }

  private signal(): void {
    this.changed = true;
    this.wake?.();
  }

  /** Until an event, the watch's end, or `until` (monotonic ms): a slot's lease running out, a turn not taken. */
  private async nextChange(until: number | undefined): Promise<void> {
    if (this.changed) {
      this.changed = false;
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = until === undefined ? undefined : setTimeout(resolve, Math.max(0, until - monotonicMs()));
      this.wake = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
    this.changed = false;
  }
}

function labelsOf(lease: Lease): Record<string, string> {
  return (lease.object.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {};
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
