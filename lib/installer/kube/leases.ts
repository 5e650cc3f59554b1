/**
 * The restart budget: at most K nodes restart their container runtime at once, across the cluster. Each slot
 * is a coordination.k8s.io Lease `knawd-restart-<i>` in the installer's namespace (the constructs create the K
 * objects; the installer gets and updates them by name).
 *
 * Waiting (issue 32). Polling the slots costs every waiting node K reads per round for as long as it waits:
 * 5,000 nodes and K=10 would be ~25,000 GETs/s for hours, and every release a write race among all of them.
 * Instead a waiting node
 * - takes a ticket: a Lease `knawd-restart-wait-<node>` of its own (create never conflicts). The queue is the
 *   tickets in the order of their creationTimestamp (the API server's clock, so the nodes' clocks do not
 *   matter; ties within a second by name), without the tickets of nodes that hold a slot;
 * - lists the namespace's Leases once and then watches them from that list's resourceVersion: it sees every
 *   release, take and renewal as it happens and asks nothing while nothing changes;
 * - takes a slot only when its turn has come: with `a` slots available and it at place `r` in the queue, it
 *   takes the r-th available slot when r < a. Every waiter computes the same from the same events, so one
 *   release is one write by the node whose turn it is, and simultaneous releases go to distinct nodes: 409s
 *   come only from waiters whose view lags by an event;
 * - deletes its ticket once it holds a slot.
 * A node costs a list, a ticket, a watch, a take and the ticket's deletion (plus the release and the
 * renewals of its restart) however long it waits; the API server streams each event to every watcher, which
 * is what it does for every kubelet already.
 *
 * Failures:
 * - a dead holder: a holder renews every third of the lease duration, which changes the Lease's
 *   resourceVersion. A slot this process has seen unchanged for longer than the duration is available. This is
 *   measured on this process's monotonic clock, never by comparing the holder's renewTime with ours, so clock
 *   skew between nodes cannot free a slot early (the way client-go's leader election judges leases).
 * - a dead waiter: a slot left available for a whole lease duration has a waiter at its turn that does not
 *   take it; every watcher passes over that ticket, and the node that takes the slot deletes it. A waiter that
 *   finds its ticket gone (it was only slow) takes a new one, at the end of the queue.
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
  const status = error instanceof ApiCallError || error instanceof KubeApiError ? error.status : undefined;
  if (!(error instanceof ApiCallError || error instanceof KubeApiError)) return false;
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

type Decision =
  | { readonly kind: 'take'; readonly slot: Lease; readonly passedOver: readonly Lease[] }
  | { readonly kind: 'ticket' }
  /** `confirming`: our ticket is not back from the watch yet, so tickets made before it may still be unseen. */
  | { readonly kind: 'wait'; readonly confirming: boolean; readonly place: number; readonly until: number | undefined };

/** One acquire: the namespace's Leases as the list and the watch tell them, and the loop that acts on them. */
class SlotWait {
  private readonly names: string[];
  private readonly slots = new Map<string, Lease>();
  private readonly tickets = new Map<string, Lease>();
  /** Since when (monotonic) each available slot has been available, at the resourceVersion it was seen at. */
  private readonly availableSince = new Map<string, { resourceVersion: string; since: number }>();
  /** Tickets (`name@resourceVersion`) whose node let a slot stay available for a lease duration. */
  private readonly passedOver = new Set<string>();
  /** Slots (`name@resourceVersion`) this run lost a take of: not tried again until they change. */
  private readonly lostAt = new Set<string>();
  private readonly ticket: string;
  /** resourceVersion of our ticket as the list or the watch gave it: every older ticket came before it. */
  private confirmed: string | undefined;
  /** Our ticket was asked for (made, or there already): until the watch brings it, no second one. */
  private ticketAsked = false;
  private resourceVersion = '';
  private listed = false;
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
        if (!this.listed && !(await this.attempt(() => this.list()))) continue;
        if (!this.watch && !(await this.attempt(async () => this.startWatch()))) continue;
        const decision = this.decide();
        if (decision.kind === 'take') {
          const taken = await this.attempt(() => this.take(decision.slot));
          if (taken) {
            await this.cleanUp(decision.passedOver);
            return { lease: taken, waitedMs: monotonicMs() - start, waited: told };
          }
          continue;
        }
        if (decision.kind === 'ticket') {
          await this.attempt(() => this.takeTicket());
          continue;
        }
        if (decision.confirming) {
          // nothing to tell yet
        } else if (!told) {
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

  private async list(): Promise<true> {
    const { namespace } = this.options;
    const list = await this.cluster.listLeases(namespace);
    this.slots.clear();
    this.tickets.clear();
    this.ticketAsked = false;
    for (const lease of list.leases) this.note(lease, false);
    this.resourceVersion = list.resourceVersion;
    if (this.slots.size === 0) {
      throw new InstallerError(
        `none of the restart slots ${this.names.join(', ')} exists in namespace ${namespace}`,
        `create the Leases (the chart and the manifests do, one per slot of maxConcurrentRestarts), or run with the --namespace / --max-concurrent-restarts they were made for`,
      );
    }
    this.listed = true;
    return true;
  }

  private note(lease: Lease, deleted: boolean): void {
    if (this.names.includes(lease.name)) {
      if (deleted) this.slots.delete(lease.name);
      else this.slots.set(lease.name, lease);
    } else if (lease.name.startsWith(RESTART_TICKET_PREFIX) && (lease.object.metadata as { labels?: Record<string, string> } | undefined)?.labels?.[RESTART_TICKET_LABEL] !== undefined) {
      if (deleted) this.tickets.delete(lease.name);
      else this.tickets.set(lease.name, lease);
      if (lease.name === this.ticket) {
        this.confirmed = deleted ? undefined : lease.resourceVersion;
        this.ticketAsked = !deleted;
      }
    }
  }

  /** What to do now, from the Leases as last seen. */
  private decide(): Decision {
    const { holder, leaseSeconds } = this.options;
    const now = monotonicMs();
    let until: number | undefined;
    const soonest = (at: number): void => void (until = until === undefined ? at : Math.min(until, at));
    const available: Lease[] = [];
    const holders = new Set<string>();
    for (const name of this.names) {
      const slot = this.slots.get(name);
      if (!slot) continue;
      const current = slot.spec.holderIdentity;
      if (current === holder) return { kind: 'take', slot, passedOver: [] };
      if (current) holders.add(current);
      let free = !current;
      if (current) {
        const { expired, at } = this.expired(slot);
        if (expired) free = true;
        else soonest(at);
      }
      const since = this.availableSince.get(name);
      if (!free) this.availableSince.delete(name);
      else if (!since || since.resourceVersion !== slot.resourceVersion) this.availableSince.set(name, { resourceVersion: slot.resourceVersion, since: now });
      if (free && !this.lostAt.has(`${name}@${slot.resourceVersion}`)) available.push(slot);
    }
    const key = (t: Lease): string => `${t.name}@${t.resourceVersion}`;
    const mine = this.tickets.get(this.ticket);
    if (!mine) return this.ticketAsked ? { kind: 'wait', confirming: true, place: -1, until: undefined } : { kind: 'ticket' };
    if (this.confirmed !== mine.resourceVersion) return { kind: 'wait', confirming: true, place: -1, until: undefined };
    const queue = [...this.tickets.values()].filter((t) => t === mine || (!holders.has(t.spec.holderIdentity ?? '') && !this.passedOver.has(key(t)))).sort(byArrival);
    // A slot available for a whole lease duration: the node whose turn it is does not take it.
    const passed: Lease[] = [];
    for (let i = 0; i < available.length; i++) {
      const since = this.availableSince.get(available[i].name)!.since;
      const due = since + leaseSeconds * 1000;
      const turn = queue[i];
      if (now > due && turn && turn !== mine) {
        this.log.warn(`restart slot ${available[i].name} stayed free for ${leaseSeconds} s while it was ${turn.spec.holderIdentity}'s turn: passing over it`);
        this.passedOver.add(key(turn));
        passed.push(turn);
        queue.splice(i, 1);
        this.availableSince.set(available[i].name, { resourceVersion: available[i].resourceVersion, since: now });
        i--;
      } else if (turn && turn !== mine) soonest(due + 1);
    }
    const place = queue.indexOf(mine);
    if (place < available.length) {
      const slot = available[place];
      const passedOver = [...this.tickets.values()].filter((t) => this.passedOver.has(key(t)));
      return { kind: 'take', slot, passedOver: [...new Set([...passed, ...passedOver])] };
    }
    return { kind: 'wait', confirming: false, place, until };
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
      // The write that beat ours comes with the watch; until then this version is not tried again.
      this.lostAt.add(`${slot.name}@${slot.resourceVersion}`);
      return undefined;
    }
    return written;
  }

  private async takeTicket(): Promise<void> {
    const created = await this.cluster.createLease(this.options.namespace, this.ticket, { [RESTART_TICKET_LABEL]: '' }, { holderIdentity: this.options.holder });
    this.ticketAsked = true;
    // `exists`: ours from an earlier run, made after the list: the watch brings it.
    if (created !== 'exists' && !this.tickets.has(created.name)) this.tickets.set(created.name, created);
  }

  /** Our ticket, and those of nodes passed over, are no longer in anyone's way. Failures only cost others a lease duration. */
  private async cleanUp(passedOver: readonly Lease[]): Promise<void> {
    this.watch?.stop();
    for (const name of [...(this.tickets.has(this.ticket) ? [this.ticket] : []), ...passedOver.map((t) => t.name)]) {
      try {
        await this.cluster.deleteLease(this.options.namespace, name);
      } catch (error) {
        this.log.warn(`could not delete the restart queue ticket ${name}`, { error: messageOf(error) });
      }
    }
  }

  private startWatch(): true {
    this.watchEnded = undefined;
    const watch = this.cluster.watchLeases(this.options.namespace, this.resourceVersion, (event) => this.onEvent(watch, event), this.options.watchIdleMs ?? DEFAULT_WATCH_IDLE_MS);
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
      this.note(event.lease, event.type === 'DELETED');
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
    if (how === 'relist') this.listed = false;
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
