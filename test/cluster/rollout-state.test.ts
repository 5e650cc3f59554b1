/**
 * Issue 15 on a real kube-apiserver, piece by piece (the 50-node rollout is rollout.test.ts): the restart
 * budget's Leases as the manifests ship them and the installer's narrow permission on them; the lease protocol
 * (one winner per free slot, waiting, renewal keeping a slot, a dead holder's slot freed after the lease
 * duration and not before, a node's own stale slot taken back at once, missing slots refused); and through
 * the installer CLI (`run`, the ServiceAccount's token): a node waiting for a slot is pending with an Event,
 * the status annotation, `status --cluster` against real Node objects, the startup taint, and the drift check
 * (nothing drifted: no API write at all; drifted: Event, pending, repaired through the budget).
 */
import * as fs from 'fs';
import * as path from 'path';
import { NODE_STATE_LABEL, NODE_STATUS_ANNOTATION } from '../../lib/catalog';
import { RecordingRunner } from '../../lib/installer/host/commands';
import { ClusterApi, connectCluster } from '../../lib/installer/kube/cluster';
import { HeldSlot, microTime, RestartBudget } from '../../lib/installer/kube/leases';
import { MemoryLogger } from '../../lib/installer/log';
import { run } from '../../lib/installer/run';
import { renderInstallManifest } from '../../lib/render/manifests';
import { fixture, handlersOnNodeRoot, makeArtifacts, makeRoot, RESTART } from '../installer/support';
import { Cluster, startCluster } from '../../demo/cluster/control-plane';
import { createNode, nodeEvents, nodeLabels, serviceAccountKubeconfig } from '../support/cluster/node';

jest.setTimeout(120_000);

const NS = 'knawd';
const SA = `system:serviceaccount:${NS}:knawd-installer`;
const TARGET = 'ubuntu_22_04';
const RUNTIME = 'crun-wasmtime';

describe('the restart budget, node state and drift check against a real API server', () => {
  let cluster: Cluster;
  let kubeconfig: string;
  let api: ClusterApi;
  let admin: ClusterApi;

  beforeAll(async () => {
    cluster = await startCluster();
    await cluster.kubectlOk(['apply', '--server-side', '-f', '-'], { input: renderInstallManifest({ target: TARGET, ociType: RUNTIME, maxConcurrentRestarts: 2 }) });
    kubeconfig = await serviceAccountKubeconfig(cluster, NS, 'knawd-installer');
    api = connectCluster(kubeconfig, {})!;
    admin = connectCluster(cluster.kubeconfig, {})!;
  }, 180_000);

  afterAll(async () => {
    await cluster?.stop();
  });

  const budget = (holder: string, options: { slots?: number; leaseSeconds?: number } = {}, log = new MemoryLogger()) =>
    new RestartBudget(api, { namespace: NS, slots: options.slots ?? 1, leaseSeconds: options.leaseSeconds ?? 15, holder }, log);
  const holderOf = async (slot: number): Promise<string | undefined> => (await admin.getLease(NS, `knawd-restart-${slot}`))?.spec.holderIdentity;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('the manifests create the K slots free; the installer may get and update them by name, and list, watch, create and delete Leases in its namespace only', async () => {
    const leases = JSON.parse(await cluster.kubectlOk(['-n', NS, 'get', 'leases', '-o', 'json'])).items;
    expect(leases.map((l: any) => [l.metadata.name, l.spec.holderIdentity])).toEqual([['knawd-restart-0', undefined], ['knawd-restart-1', undefined]]);
    const can = async (...args: string[]) => (await cluster.kubectl(['auth', 'can-i', ...args, '-n', NS, '--as', SA])).stdout.trim();
    expect(await can('get', 'leases/knawd-restart-0')).toBe('yes');
    expect(await can('update', 'leases/knawd-restart-1')).toBe('yes');
    expect(await can('update', 'leases/knawd-restart-2')).toBe('no');
    expect(await can('update', 'leases/kube-scheduler')).toBe('no');
    for (const verb of ['list', 'watch', 'create', 'delete']) expect(await can(verb, 'leases')).toBe('yes');
    expect(await can('patch', 'leases')).toBe('no');
    for (const verb of ['get', 'list', 'watch', 'create', 'delete']) expect((await cluster.kubectl(['auth', 'can-i', verb, 'leases/knawd-restart-0', '-n', 'kube-system', '--as', SA])).stdout.trim()).toBe('no');
  });

  it('one slot, two nodes: the second waits (told who holds it) and takes it once the first releases', async () => {
    const first = await budget('node-1').acquire(async () => {
      throw new Error('the first node must not wait');
    });
    expect(await holderOf(0)).toBe('node-1');
    const told: string[][] = [];
    const second = budget('node-2').acquire(async (holders) => void told.push([...holders]));
    await sleep(1000);
    expect(told).toEqual([['node-1']]);
    expect(await holderOf(0)).toBe('node-1');
    await first.release();
    const held = await second;
    expect(held.name).toBe('knawd-restart-0');
    expect(held.waitedMs).toBeGreaterThanOrEqual(900);
    expect(await holderOf(0)).toBe('node-2');
    await held.release();
    expect(await holderOf(0)).toBeUndefined();
  });

  it('eight nodes racing for two slots: never more than two holders, every node gets through', async () => {
    let holding = 0;
    let most = 0;
    const nodes = Array.from({ length: 8 }, (_, i) => `racer-${i}`);
    await Promise.all(
      nodes.map(async (n) => {
        const slot = await budget(n, { slots: 2 }).acquire(async () => undefined);
        holding++;
        most = Math.max(most, holding);
        const holders = [await holderOf(0), await holderOf(1)];
        expect(holders).toContain(n);
        await sleep(300);
        holding--;
        await slot.release();
      }),
    );
    expect(most).toBe(2);
    expect([await holderOf(0), await holderOf(1)]).toEqual([undefined, undefined]);
  });

  it('a holder renews its slot: a waiter does not take it after the lease duration while the holder lives', async () => {
    const holder = await budget('renewer', { leaseSeconds: 3 }).acquire(async () => undefined);
    let waiter: HeldSlot | undefined;
    const waiting = budget('patient', { leaseSeconds: 3 }).acquire(async () => undefined).then((s) => (waiter = s));
    await sleep(7000);
    expect(waiter).toBeUndefined();
    expect(await holderOf(0)).toBe('renewer');
    await holder.release();
    await waiting;
    expect(await holderOf(0)).toBe('patient');
    await waiter!.release();
  });

  it("a dead holder's slot is free once its lease has not changed for the lease duration, not before", async () => {
    // What a killed installer leaves: itself as holder, renewals stopped.
    const lease = (await admin.getLease(NS, 'knawd-restart-0'))!;
    const now = microTime(new Date());
    await admin.updateLease(NS, lease, { holderIdentity: 'ghost', leaseDurationSeconds: 4, acquireTime: now, renewTime: now, leaseTransitions: 1 });
    const log = new MemoryLogger();
    const started = Date.now();
    const slot = await budget('heir', {}, log).acquire(async () => undefined);
    const waited = Date.now() - started;
    expect(waited).toBeGreaterThanOrEqual(4000);
    expect(waited).toBeLessThan(8000);
    expect(log.records).toContainEqual(expect.objectContaining({ level: 'warn', msg: 'restart slot knawd-restart-0 was held by ghost, which stopped renewing it: taking it over' }));
    const taken = (await admin.getLease(NS, 'knawd-restart-0'))!.spec;
    expect(taken).toMatchObject({ holderIdentity: 'heir', leaseDurationSeconds: 15, leaseTransitions: 2 });
    await slot.release();
  });

  it("a node's own slot from an earlier run that died is taken back at once", async () => {
    const lease = (await admin.getLease(NS, 'knawd-restart-0'))!;
    const now = microTime(new Date());
    await admin.updateLease(NS, lease, { holderIdentity: 'phoenix', leaseDurationSeconds: 15, acquireTime: now, renewTime: now, leaseTransitions: 7 });
    const started = Date.now();
    const slot = await budget('phoenix').acquire(async () => {
      throw new Error('must not wait for its own slot');
    });
    expect(Date.now() - started).toBeLessThan(2000);
    expect((await admin.getLease(NS, 'knawd-restart-0'))!.spec.leaseTransitions).toBe(7);
    await slot.release();
  });

  it('slots that do not exist are refused with one line naming them', async () => {
    const wrong = new RestartBudget(api, { namespace: 'default', slots: 2, leaseSeconds: 15, holder: 'n' }, new MemoryLogger());
    await expect(wrong.acquire(async () => undefined)).rejects.toThrow(/^Kubernetes API: cannot list Leases in default \(HTTP 403\)/);
    const missing = new RestartBudget(admin, { namespace: 'default', slots: 2, leaseSeconds: 15, holder: 'n' }, new MemoryLogger());
    await expect(missing.acquire(async () => undefined)).rejects.toThrow('none of the restart slots knawd-restart-0, knawd-restart-1 exists in namespace default');
  });

  describe('through the installer CLI', () => {
    const config = fixture('containerd-1.6-systemd-cgroup.toml');

    async function installer(command: string, node: string, root: string, artifacts: string, extra: string[] = []) {
      const out: string[] = [];
      const err: string[] = [];
      const runner = new RecordingRunner();
      const code = await run(
        [command, '--target', TARGET, '--runtime', RUNTIME, '--node-root', root, '--artifacts', artifacts, '--node-name', node, '--kubeconfig', kubeconfig, '--patch-knative', 'false', '--max-concurrent-restarts', '2', ...extra],
        {},
        { stdout: (l) => out.push(l), stderr: (l) => err.push(l) },
        { runner, probeSocket: async () => true, waitForSocket: async () => true, readCriStatus: async () => ({ conditions: [], info: {}, runtimeHandlers: handlersOnNodeRoot(root) }) },
      );
      return { code, out, err: err.join('\n'), runner };
    }
    const annotation = async (node: string) => JSON.parse(JSON.parse(await cluster.kubectlOk(['get', 'node', node, '-o', 'json'])).metadata.annotations[NODE_STATUS_ANNOTATION]);

    it('a node waiting for a slot is pending, says so in an Event, and installs once a slot frees', async () => {
      await createNode(cluster, 'wait-node', 'containerd://1.7.22');
      const holders = [await budget('busy-a', { slots: 2 }).acquire(async () => undefined), await budget('busy-b', { slots: 2 }).acquire(async () => undefined)];
      const root = makeRoot({ '/etc/containerd/config.toml': config });
      const done = installer('install', 'wait-node', root, makeArtifacts(TARGET));
      let labels: Record<string, string> = {};
      for (let i = 0; i < 100 && !(await nodeEvents(cluster, 'wait-node')).some((e) => e[1] === 'WaitingForRestartSlot'); i++) await sleep(100);
      labels = await nodeLabels(cluster, 'wait-node');
      expect(labels[NODE_STATE_LABEL]).toBe('pending');
      expect(await annotation('wait-node')).toMatchObject({ state: 'pending', reason: 'WaitingForRestartSlot' });
      await sleep(2500);
      expect((await nodeLabels(cluster, 'wait-node'))[NODE_STATE_LABEL]).toBe('pending');
      await holders[1].release();
      const r = await done;
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      await holders[0].release();
      expect(r.runner.calls.filter((c) => c.join(' ') === RESTART('containerd').join(' '))).toHaveLength(1);
      expect(await nodeEvents(cluster, 'wait-node')).toEqual([
        ['Normal', 'Installing', `installing ${RUNTIME} as handler crun-wasm for target ${TARGET}`],
        ['Normal', 'WaitingForRestartSlot', expect.stringMatching(/^waiting for one of 2 restart slot\(s\), held by busy-[ab], busy-[ab]$/)],
        ['Normal', 'Installed', `containerd serves handler crun-wasm (${RUNTIME}, target ${TARGET})`],
      ]);
      expect(await annotation('wait-node')).toMatchObject({ state: 'installed', reason: 'Installed', target: TARGET, runtime: RUNTIME });
      const log = r.out.map((l) => JSON.parse(l).msg);
      expect(log).toContainEqual(expect.stringMatching(/^holding restart slot knawd\/knawd-restart-[01] after waiting \d+ s$/));
      expect(log).toContainEqual(expect.stringMatching(/^released restart slot knawd\/knawd-restart-[01]$/));
      expect([await holderOf(0), await holderOf(1)]).toEqual([undefined, undefined]);
    });

    it('the drift check: nothing drifted changes nothing in the API; a drifted config is reported, made pending and repaired', async () => {
      await createNode(cluster, 'drift-node', 'containerd://1.7.22');
      const root = makeRoot({ '/etc/containerd/config.toml': config });
      const artifacts = makeArtifacts(TARGET);
      expect((await installer('install', 'drift-node', root, artifacts)).code).toBe(0);
      const version = async () => JSON.parse(await cluster.kubectlOk(['get', 'node', 'drift-node', '-o', 'json'])).metadata.resourceVersion;
      const before = await version();
      const quiet = await installer('install', 'drift-node', root, artifacts, ['--drift-check']);
      expect({ code: quiet.code, err: quiet.err, restarts: quiet.runner.calls.filter((c) => c.includes('restart')).length }).toEqual({ code: 0, err: '', restarts: 0 });
      expect(await version()).toBe(before);
      expect((await nodeEvents(cluster, 'drift-node')).map((e) => e[1])).toEqual(['Installing', 'Installed']);

      // A distribution upgrade rewrote the config without our block.
      fs.writeFileSync(path.join(root, 'etc/containerd/config.toml'), config);
      const repaired = await installer('install', 'drift-node', root, artifacts, ['--drift-check']);
      expect({ code: repaired.code, err: repaired.err }).toEqual({ code: 0, err: '' });
      expect(repaired.runner.calls).toContainEqual(RESTART('containerd'));
      expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toContain('crun-wasm');
      const events = await nodeEvents(cluster, 'drift-node');
      expect(events.slice(2)).toEqual([
        ['Warning', 'DriftDetected', expect.stringMatching(/^repairing: \/etc\/containerd\/config\.toml: changed \(update\); containerd does not serve handler crun-wasm/)],
        ['Normal', 'Installed', `containerd serves handler crun-wasm (${RUNTIME}, target ${TARGET})`],
      ]);
      expect((await nodeLabels(cluster, 'drift-node'))[NODE_STATE_LABEL]).toBe('installed');
      const driftLine = repaired.out.map((l) => JSON.parse(l)).find((l) => l.msg === 'drift check: the node drifted; repairing it');
      expect(driftLine.drift).toEqual(expect.arrayContaining([expect.stringContaining('/etc/containerd/config.toml: changed')]));
      expect(repaired.out.map((l) => JSON.parse(l).msg)).toContainEqual(expect.stringMatching(/^released restart slot knawd\/knawd-restart-[01]$/));

      // The uninstall runs the remover while the installer pods stay: their drift checks must not install again.
      expect((await installer('remove', 'drift-node', root, artifacts)).code).toBe(0);
      const removed = await version();
      const standing = await installer('install', 'drift-node', root, artifacts, ['--drift-check']);
      expect({ code: standing.code, err: standing.err, commands: standing.runner.calls.filter((c) => c.includes('systemctl')) }).toEqual({ code: 0, err: '', commands: [] });
      expect(standing.out.map((l) => JSON.parse(l).msg)).toContain('drift check: the node has no knawd.dev/crun-wasm label: remove took it away (the uninstall runs, or ran), so nothing is repaired');
      expect(fs.existsSync(path.join(root, 'opt/knawd'))).toBe(false);
      expect(fs.readFileSync(path.join(root, 'etc/containerd/config.toml'), 'utf8')).toBe(config);
      expect(await version()).toBe(removed);
    });

    it('the startup taint is removed once the node is installed, and only it', async () => {
      await createNode(cluster, 'tainted-node', 'containerd://1.7.22');
      await cluster.kubectlOk(['taint', 'node', 'tainted-node', 'example.com/wasm-not-ready:NoSchedule', 'example.com/keep:NoExecute']);
      const root = makeRoot({ '/etc/containerd/config.toml': config });
      const r = await installer('install', 'tainted-node', root, makeArtifacts(TARGET), ['--startup-taint', 'example.com/wasm-not-ready:NoSchedule']);
      expect({ code: r.code, err: r.err }).toEqual({ code: 0, err: '' });
      const taints = JSON.parse(await cluster.kubectlOk(['get', 'node', 'tainted-node', '-o', 'json'])).spec.taints.map((t: any) => `${t.key}:${t.effect}`);
      expect(taints.filter((t: string) => t.startsWith('example.com/'))).toEqual(['example.com/keep:NoExecute']);
      expect(r.out.map((l) => JSON.parse(l).msg)).toContain('removed the startup taint example.com/wasm-not-ready:NoSchedule from node tainted-node');
    });

    it('status --cluster: one line per node with target, runtime, state, since and reason; exit 1 while a node is pending or failed', async () => {
      await createNode(cluster, 'bare-node', 'containerd://1.7.22');
      const statusOf = async () => {
        const out: string[] = [];
        const code = await run(['status', '--cluster', '--kubeconfig', cluster.kubeconfig], {}, { stdout: (l) => out.push(l), stderr: (l) => out.push(l) });
        return { code, out };
      };
      const settled = await statusOf();
      expect(settled.code).toBe(0);
      const row = (node: string) => settled.out.find((l) => l.startsWith(`${node} `))!.split(/\s{2,}/);
      expect(settled.out[0].split(/\s{2,}/)).toEqual(['NODE', 'TARGET', 'RUNTIME', 'STATE', 'SINCE', 'REASON']);
      expect(row('wait-node')).toEqual(['wait-node', TARGET, RUNTIME, 'installed', expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(\d+s\)$/), `Installed: containerd serves handler crun-wasm (${RUNTIME}, target ${TARGET})`]);
      expect(row('bare-node')).toEqual(['bare-node', '-', '-', '-', '-', '-']);
      // Removed: its labels and its status annotation are gone with the install.
      expect(row('drift-node')).toEqual(['drift-node', '-', '-', '-', '-', '-']);
      expect(settled.out[settled.out.length - 1]).toMatch(/^\d+ node\(s\): 0 pending, 2 installed, 0 failed, 0 removing, 2 without an install$/);

      // A failed install: exit 1 and the reason on the line.
      await createNode(cluster, 'broken-node', 'containerd://1.7.22');
      const broken = await installer('install', 'broken-node', makeRoot({ '/etc/containerd/config.toml': 'this is [not toml' }), makeArtifacts(TARGET));
      expect(broken.code).not.toBe(0);
      const failing = await statusOf();
      expect(failing.code).toBe(1);
      const line = failing.out.find((l) => l.startsWith('broken-node '))!.split(/\s{2,}/);
      expect(line.slice(0, 4)).toEqual(['broken-node', TARGET, RUNTIME, 'failed']);
      expect(line[5]).toMatch(/^InstallFailed: /);

      const noCluster = await run(['status', '--cluster'], { KUBERNETES_SERVICE_HOST: '' }, { stdout: () => undefined, stderr: (l) => failing.out.push(l) });
      expect(noCluster).toBe(1);
      expect(failing.out[failing.out.length - 1]).toBe('knawd-installer status: error: status --cluster needs the Kubernetes API: no kubeconfig and no in-cluster config (fix: pass --kubeconfig FILE (or set KUBECONFIG))');
    });
  });
});
