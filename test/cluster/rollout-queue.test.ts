/**
 * Issue 32 on a real kube-apiserver: how the restart budget's waiting behaves (lib/installer/kube/leases.ts),
 * as the installer's ServiceAccount with the manifests' RBAC. Nodes are served in the order they asked (the
 * API server's creation time of their tickets, not their names); a waiting node's requests do not grow with
 * its wait; simultaneous arrivals produce few 409s; a waiter whose turn comes and who does not take it is
 * passed over after a lease duration; clock skew between holders does not free a slot early; the waiting
 * rides out an API server that is killed and started again; and API errors the real server will not produce
 * on demand (503, 429, an ERROR event of 410 Gone on the watch, 403) are injected behind ClusterApi, where
 * every call is recorded and the recording asserted.
 */
import { RESTART_TICKET_LABEL } from '../../lib/catalog';
import { ApiCallError, ClusterApi, connectCluster, LeaseEvent } from '../../lib/installer/kube/cluster';
import { HeldSlot, microTime, RestartBudget, ticketName } from '../../lib/installer/kube/leases';
import { MemoryLogger } from '../../lib/installer/log';
import { renderInstallManifest } from '../../lib/render/manifests';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { serviceAccountKubeconfig } from '../support/cluster/node';

jest.setTimeout(180_000);

const NS = 'knawd';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** ClusterApi with every call recorded (name and outcome) and chosen calls failing first. */
function recorded(api: ClusterApi, faults: { [method: string]: Array<ApiCallError | undefined> } = {}, watchEvents: Array<LeaseEvent | undefined> = []) {
  const calls: string[] = [];
  const wrapped = new Proxy(api, {
    get(target, prop: string) {
      const real = (target as any)[prop];
      if (typeof real !== 'function') return real;
      if (prop === 'watchLeases') {
        return (ns: string, selector: string, rv: string, onEvent: (e: LeaseEvent) => void, idleMs: number) => {
          calls.push('watchLeases');
          // An injected event replaces the real one (undefined: pass the real one on).
          return real.call(target, ns, selector, rv, (e: LeaseEvent) => onEvent(watchEvents.shift() ?? e), idleMs);
        };
      }
      return async (...args: unknown[]) => {
        const fault = faults[prop]?.shift();
        if (fault) {
          calls.push(`${prop}:${fault.status}`);
          throw fault;
        }
        const result = await real.apply(target, args);
        calls.push(result === 'conflict' ? `${prop}:409` : prop);
        return result;
      };
    },
  });
  return { api: wrapped, calls };
}

describe('waiting for a restart slot, against a real API server', () => {
  let cluster: Cluster;
  let api: ClusterApi;
  let admin: ClusterApi;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['apply', '--server-side', '-f', '-'], { input: renderInstallManifest({ target: 'containerd', ociType: 'crun-wasmtime', maxConcurrentRestarts: 2 }) });
    api = connectCluster(await serviceAccountKubeconfig(cluster, NS, 'knawd-installer'), {})!;
    admin = connectCluster(cluster.kubeconfig, {})!;
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const budget = (holder: string, options: { slots?: number; leaseSeconds?: number; cluster?: ClusterApi; retryMs?: number } = {}, log = new MemoryLogger()) =>
    new RestartBudget(options.cluster ?? api, { namespace: NS, slots: options.slots ?? 1, leaseSeconds: options.leaseSeconds ?? 15, holder, retryMs: options.retryMs }, log);
  const holderOf = async (slot: number) => (await admin.getLease(NS, `knawd-restart-${slot}`))?.spec.holderIdentity;
  const tickets = async () => (await admin.listLeases(NS)).leases.filter((l) => l.name.startsWith('knawd-restart-wait-')).map((l) => l.spec.holderIdentity);

  afterEach(async () => {
    expect([await holderOf(0), await holderOf(1)]).toEqual([undefined, undefined]);
    expect(await tickets()).toEqual([]);
  });

  it('serves waiters in the order they asked, not by name, and a waiter makes the same few requests however long it waits', async () => {
    const first = await budget('holder').acquire(async () => undefined);
    // z… asks first, a… last; over a second apart, so the API server's creation times differ.
    const names = ['q-z', 'q-m', 'q-f', 'q-a'];
    const order: string[] = [];
    const calls: string[][] = [];
    const waiting: Array<Promise<void>> = [];
    for (const name of names) {
      const r = recorded(api);
      calls.push(r.calls);
      let told = false;
      waiting.push(
        budget(name, { cluster: r.api })
          .acquire(async () => void (told = true))
          .then(async (slot) => {
            order.push(name);
            await sleep(200);
            await slot.release();
          }),
      );
      while (!(await tickets()).includes(name) || !told) await sleep(50);
      await sleep(1100);
    }
    await first.release();
    await Promise.all(waiting);
    expect(order).toEqual(names);
    // The first waited ~1 s, the last ~5 s: the same calls (renewals aside: none in 200 ms).
    const expected = ['listLeases', 'createLease', 'listLeases', 'watchLeases', 'updateLease', 'deleteLease', 'updateLease'];
    for (const c of calls) expect(c).toEqual(expected);
  });

  it('twenty nodes asking at once for two slots: at most two hold, all get through, each with the same seven calls and few 409s', async () => {
    const counted = recorded(api);
    let holding = 0;
    let most = 0;
    const order: string[] = [];
    const nodes = Array.from({ length: 20 }, (_, i) => `burst-${String(i).padStart(2, '0')}`);
    await Promise.all(
      nodes.map(async (n) => {
        const slot = await budget(n, { slots: 2, cluster: counted.api }).acquire(async () => undefined);
        order.push(n);
        most = Math.max(most, ++holding);
        await sleep(150);
        holding--;
        await slot.release();
      }),
    );
    expect(most).toBe(2);
    expect(order.sort()).toEqual(nodes);
    // Every node: two lists, a ticket, a watch, a take, the ticket deleted, the release; 409s only from lagging views.
    const count = (call: string) => counted.calls.filter((c) => c === call).length;
    console.log(`20 nodes, 2 slots: ${count('updateLease:409')} conflicts, ${counted.calls.length} calls`);
    expect(count('updateLease:409')).toBeLessThanOrEqual(2 * 20);
    expect(count('updateLease')).toBe(2 * 20);
    for (const call of ['watchLeases', 'createLease', 'deleteLease']) expect(count(call)).toBe(20);
    expect(count('listLeases')).toBe(2 * 20);
  });

  it('a waiter whose turn comes and who does not take it is passed over after the lease duration; its ticket goes', async () => {
    const first = await budget('holder', { leaseSeconds: 3 }).acquire(async () => undefined);
    // A node that took a ticket and died.
    expect(await admin.createLease(NS, ticketName('ghost-waiter'), { [RESTART_TICKET_LABEL]: '' }, { holderIdentity: 'ghost-waiter' })).not.toBe('exists');
    await sleep(1100);
    const log = new MemoryLogger();
    let second: HeldSlot | undefined;
    const waiting = budget('live-waiter', { leaseSeconds: 3 }, log)
      .acquire(async () => undefined)
      .then((s) => (second = s));
    await sleep(500);
    const released = Date.now();
    await first.release();
    await sleep(2000);
    expect(second).toBeUndefined();
    await waiting;
    const waited = Date.now() - released;
    expect(waited).toBeGreaterThanOrEqual(3000);
    expect(waited).toBeLessThan(6000);
    expect(log.records).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'restart slot knawd-restart-0 stayed free for 3 s while it was the turn of knawd-restart-wait-ghost-waiter: passing over it' }));
    expect(await tickets()).toEqual([]);
    await second!.release();
  });

  it('clock skew: a holder an hour behind keeps its slot while it renews; one an hour ahead loses it a lease duration after its last renewal, not before', async () => {
    const skewed = async (offsetMs: number, renewFor: number): Promise<void> => {
      const until = Date.now() + renewFor;
      let lease = (await admin.getLease(NS, 'knawd-restart-0'))!;
      const t = microTime(new Date(Date.now() + offsetMs));
      lease = (await admin.updateLease(NS, lease, { holderIdentity: 'skewed', leaseDurationSeconds: 3, acquireTime: t, renewTime: t, leaseTransitions: 1 })) as typeof lease;
      while (Date.now() < until) {
        await sleep(1000);
        lease = (await admin.updateLease(NS, lease, { ...lease.spec, renewTime: microTime(new Date(Date.now() + offsetMs)) })) as typeof lease;
      }
    };
    const behind = skewed(-3_600_000, 7000);
    await sleep(300);
    let taken: number | undefined;
    const started = Date.now();
    const waiter = budget('punctual').acquire(async () => undefined).then((s) => ((taken = Date.now()), s));
    await behind;
    const lastRenewal = Date.now();
    expect(taken).toBeUndefined();
    const slot = await waiter;
    expect(taken! - started).toBeGreaterThan(6500);
    expect(taken! - lastRenewal).toBeGreaterThanOrEqual(2900);
    expect(taken! - lastRenewal).toBeLessThan(6000);
    await slot.release();

    const ahead = skewed(3_600_000, 2000);
    await sleep(300);
    const started2 = Date.now();
    const slot2 = await budget('punctual').acquire(async () => undefined);
    await ahead;
    expect(Date.now() - started2).toBeGreaterThanOrEqual(1700 + 2900);
    await slot2.release();
  });

  it('rides out an API server killed and started again while it waits: the watch breaks, resumes, and the release is seen', async () => {
    // A lease long enough that the holder's renewals lost while the server is down do not free its slot.
    const first = await budget('holder', { leaseSeconds: 60 }).acquire(async () => undefined);
    const log = new MemoryLogger();
    let told = false;
    let second: HeldSlot | undefined;
    const waiting = budget('survivor', { retryMs: 200 }, log)
      .acquire(async () => void (told = true))
      .then((s) => (second = s));
    while (!told) await sleep(50);
    await cluster.restartApiServer(2000);
    await first.release();
    const released = Date.now();
    await waiting;
    // At most one backoff pause (doubling from 0.2 s while the server was down) after the server is back.
    expect(Date.now() - released).toBeLessThan(20_000);
    expect(await holderOf(0)).toBe('survivor');
    expect(log.records.filter((r) => r.level === 'warn').map((r) => r.msg)).toContainEqual(expect.stringMatching(/^restart slots: the watch broke: /));
    await second!.release();
  });

  it('API errors while waiting: 503 and 429 are retried, a 410 Gone ERROR event on the watch lists again, 403 fails at once with one line', async () => {
    const unavailable = new ApiCallError('Kubernetes API: cannot list Leases in knawd (HTTP 503): injected', 'retry', 503);
    const throttled = new ApiCallError('Kubernetes API: cannot create Lease knawd/x (HTTP 429): injected', 'retry', 429);
    const gone: LeaseEvent = { type: 'ERROR', status: 410, message: 'too old resource version: injected' };
    const r = recorded(api, { listLeases: [unavailable], createLease: [throttled] }, [undefined, undefined, gone]);
    const first = await budget('holder').acquire(async () => undefined);
    const log = new MemoryLogger();
    const waiting = budget('stubborn', { cluster: r.api, retryMs: 100 }, log).acquire(async () => undefined);
    const lists = () => r.calls.filter((c) => c === 'listLeases').length;
    while (!r.calls.includes('watchLeases')) await sleep(50);
    // Changes the waiter's watch sees (slot 1 is not one of its slots): the third one's event is replaced by 410 Gone.
    for (let i = 0; i < 5 && lists() < 3; i++) {
      const l = (await admin.getLease(NS, 'knawd-restart-1'))!;
      await admin.updateLease(NS, l, { ...l.spec, leaseTransitions: (l.spec.leaseTransitions ?? 0) + 1 });
      await sleep(300);
    }
    while (lists() < 3) await sleep(50);
    await first.release();
    const slot = await waiting;
    expect(r.calls.slice(0, 6)).toEqual(['listLeases:503', 'listLeases', 'createLease:429', 'createLease', 'listLeases', 'watchLeases']);
    // After the 410: the queue listed again (the ticket is there, the slots are read) and a new watch.
    expect(r.calls.slice(6, 8)).toEqual(['listLeases', 'watchLeases']);
    expect(lists()).toBe(3);
    expect(log.records.map((x) => x.msg)).toContainEqual('restart slots: the watch ended with 410: too old resource version: injected');
    await slot.release();

    const forbidden = recorded(api, { listLeases: [new ApiCallError('Kubernetes API: cannot list Leases in knawd (HTTP 403): injected', 'grant it', 403)] });
    await expect(budget('refused', { cluster: forbidden.api }).acquire(async () => undefined)).rejects.toThrow('Kubernetes API: cannot list Leases in knawd (HTTP 403): injected');
    expect(forbidden.calls).toEqual(['listLeases:403']);
  });
});
