/**
 * A real single-node Kubernetes cluster for the lifecycle tests: etcd, kube-apiserver, kube-controller-manager
 * and kube-scheduler (demo/cluster/control-plane.ts in control-plane mode) and one node (node.ts: containerd,
 * kubelet, kube-proxy under PID 1 of its own namespaces), all in one network namespace with no route out
 * (netns.ts). The test's images are imported into the node's containerd (`ctr -n k8s.io images import`), or, with
 * a registry source (registry.ts), nothing is imported and the kubelet pulls everything from the node's own registry.
 *
 * {@link startNodeCluster} resolves once the node is Ready and the default namespace can take pods; {@link NodeCluster.stop} takes everything down and
 * returns what it could not clean (the lifecycle test asserts it is nothing). Everything fails with the failing
 * component's log tail, never skips.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Cluster, KubernetesRelease, RunResult, startCluster } from './control-plane';
import { ensureCrunCgroupLayout, removeCgroupTree } from './cgroups';
import { exec, mounts } from './process';
import { TestImageNames } from './images/test-images';
import { orphanedDirs, ownedTempDir } from './temp-dirs';
import { BuiltImages, cachedImages } from './images/image-cache';
import { createNetworkNamespace, NetworkNamespace, NetworkNamespaceId, NODE_ADDRESS, processesInNetworkNamespace } from './netns';
import { ContainerdMajor, TestNode } from './node';

export const NODE_NAME = 'knawd-node';

export const IMAGES: TestImageNames = {
  pause: 'knawd.test/node/pause:1',
  wasm: 'knawd.test/node/hello-wasm:1',
  busybox: 'knawd.test/node/busybox:1',
  probe: 'knawd.test/node/wasi-probe:1',
};

const DIR_PREFIX = 'knawd-node-';

export interface NodeCluster {
  readonly cluster: Cluster;
  readonly node: TestNode;
  readonly netns: NetworkNamespace;
  readonly images: BuiltImages;
  readonly containerd: ContainerdMajor;
  /** Milliseconds from starting the node to its Ready condition. */
  readonly readyMs: number;
  /** kubectl, throwing with the cluster's and the node's log tails (and the node's health) unless it exits 0. */
  kubectlOk(args: readonly string[], options?: { input?: string; timeoutMs?: number }): Promise<string>;
  /** helm; never throws. */
  helm(args: readonly string[], options?: { timeoutMs?: number }): Promise<RunResult>;
  /** Every component's log tail, for failure messages. */
  logTails(): string;
  /** Resident memory (MiB) of every process of the cluster (control plane, node units, shims, pods), by command. */
  memory(): Record<string, number>;
  /** Stops everything; returns what was left behind (empty when clean). Idempotent. */
  stop(): Promise<string[]>;
}

/**
 * Removes what an earlier run that was SIGKILLed left: its network namespace binding, its cgroups and its
 * directory (its processes died with it: pdeathsig and PID 1's --kill-child).
 */
export function sweepStale(): void {
  for (const dir of orphanedDirs(DIR_PREFIX)) {
    for (const m of mounts().reverse()) if (m.mountPoint.startsWith(dir + '/')) exec('umount', ['-l', m.mountPoint]);
    removeCgroupTree(`/${path.basename(dir)}`);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** VmRSS of the processes in the cluster's network namespace or the node's PID namespace, summed by command. */
function clusterMemory(netns: NetworkNamespaceId, pidNamespace: string | undefined): Record<string, number> {
  const pids = new Set(processesInNetworkNamespace(netns).map((p) => p.pid));
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || !pidNamespace) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/ns/pid`) === pidNamespace) pids.add(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  const byCommand: Record<string, number> = {};
  for (const pid of pids) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
      const name = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? '?';
      byCommand[name] = (byCommand[name] ?? 0) + kib / 1024;
    } catch {
      // gone meanwhile
    }
  }
  return byCommand;
}

/** Which Kubernetes release, and where the node gets its images: imported archives (`ctr images import`, the default), or a registry it pulls from. */
export interface NodeClusterOptions {
  /** Whose kubelet, kube-proxy and control plane. @default 'newest' */
  readonly kubernetes?: KubernetesRelease;
  /**
   * Nothing is imported: the sandbox image is `<registry>/knawd-test/pause:1` (the caller pushes
   * `images.test.pause` there before the first pod) and containerd reads `seedFiles`' hosts.toml (registry.ts).
   */
  readonly registry?: { readonly address: string; readonly seedFiles: Readonly<Record<string, string>>; readonly hostsDir: string };
}

export async function startNodeCluster(containerd: ContainerdMajor, options: NodeClusterOptions = {}): Promise<NodeCluster> {
  const { kubernetes = 'newest', ...source } = options;
  if (process.getuid?.() !== 0) throw new Error('the node harness needs root (namespaces, mounts, cgroups); run the tests as root');
  ensureCrunCgroupLayout();
  const images = cachedImages(IMAGES);
  sweepStale();
  const base = ownedTempDir(DIR_PREFIX);
  const cleanups: Array<() => Promise<string[]> | string[]> = [];
  let stopped: string[] | undefined;
  let netnsId: NetworkNamespaceId | undefined;
  const stop = async (): Promise<string[]> => {
    if (stopped) return stopped;
    const problems: string[] = [];
    for (const c of cleanups.reverse()) {
      try {
        problems.push(...(await c()));
      } catch (error) {
        problems.push(String(error));
      }
    }
    if (netnsId !== undefined) {
      for (const p of processesInNetworkNamespace(netnsId)) problems.push(`process ${p.pid} still in the node's network namespace: ${p.cmdline}`);
    }
    if (process.env.KNAWD_KEEP_CLUSTER !== '1') fs.rmSync(base, { recursive: true, force: true });
    stopped = problems;
    return problems;
  };

  try {
    const netns = createNetworkNamespace(base);
    netnsId = { inode: netns.inode, marker: netns.marker };
    cleanups.push(() => netns.remove());
    const cluster = await startCluster({
      kubernetes,
      controlPlane: { netns: netns.file, address: NODE_ADDRESS },
      users: { [`system:node:${NODE_NAME}`]: ['system:nodes'], 'system:kube-proxy': [] },
    });
    cleanups.push(async () => {
      await cluster.stop();
      return [];
    });
    const node = new TestNode({
      base: path.join(base, 'node'),
      name: NODE_NAME,
      containerd,
      kubernetes,
      netns,
      caFile: cluster.caFile,
      kubeletKubeconfig: cluster.users[`system:node:${NODE_NAME}`],
      kubeProxyKubeconfig: cluster.users['system:kube-proxy'],
      sandboxImage: source.registry ? `${source.registry.address}/knawd-test/pause:1` : IMAGES.pause,
      seedFiles: source.registry?.seedFiles,
      registryHostsDir: source.registry?.hostsDir,
      // Named after the harness directory, so that sweepStale() finds what a killed run left.
      cgroupRoot: `/${path.basename(base)}`,
    });
    fs.mkdirSync(node.options.base);
    cleanups.push(async () => [...(await node.stop()), ...node.leftovers()]);

    const logTails = (): string => `${cluster.logTail(20)}\n${node.logTails()}`;
    const started = Date.now();
    await node.start();
    // Every ociType's installer image: the chart picks `<tag>-<ociType>`, so any ociType installs.
    const installers = Object.values(images.installer.images);
    const imported = source.registry ? [] : [...Object.values(images.test), ...installers, { archive: images.installer.wasiArchive }, { archive: images.installer.serviceArchive }];
    for (const image of imported) {
      node.ctr(['-n', 'k8s.io', 'images', 'import', '--platform', 'linux/amd64', image.archive]);
    }
    // A pull records the image under its digest reference too; an import only under its tag. Pods that name an
    // image by digest (the chart's default test image by its index digest, `image.digests`) need that record (docs/image.md: "Use it").
    const tagged = source.registry ? [] : [...installers, { name: images.installer.wasiName, digest: images.installer.wasiDigest }, { name: images.installer.serviceName, digest: images.installer.serviceDigest }];
    for (const { name, digest } of tagged) {
      node.ctr(['-n', 'k8s.io', 'images', 'tag', '--force', name, `${name.slice(0, name.lastIndexOf(':'))}@${digest}`]);
    }
    const ready = await cluster.kubectl(['wait', '--for=condition=Ready', `node/${NODE_NAME}`, '--timeout=120s'], { timeoutMs: 130_000 });
    if (ready.code !== 0) throw new Error(`node ${NODE_NAME} did not become Ready: ${ready.stderr.trim()}\n${logTails()}`);
    const readyMs = Date.now() - started;
    // A pod is refused until the controller-manager has made its namespace's default ServiceAccount, which on 1.37
    // can come after the node is Ready: the cluster is handed over once the default namespace can take pods.
    const account = await cluster.kubectl(['-n', 'default', 'wait', '--for=create', 'serviceaccount/default', '--timeout=60s'], { timeoutMs: 70_000 });
    if (account.code !== 0) throw new Error(`the default ServiceAccount was not created: ${account.stderr.trim()}\n${logTails()}`);

    return {
      cluster,
      node,
      netns,
      images,
      containerd,
      readyMs,
      async kubectlOk(args, options) {
        const r = await cluster.kubectl(args, options);
        if (r.code !== 0) {
          let health = '';
          try {
            await node.checkHealthy();
          } catch (error) {
            health = `\n${String(error)}`;
          }
          throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}${health}\n${logTails()}`);
        }
        return r.stdout;
      },
      helm: (args, options) => cluster.helm(args, options),
      logTails,
      memory: () => clusterMemory(netns, node.pidNamespace()),
      stop,
    };
  } catch (error) {
    const leftovers = await stop();
    throw new Error(`${error instanceof Error ? error.message : String(error)}${leftovers.length ? `\nleft behind: ${leftovers.join('; ')}` : ''}`);
  }
}

