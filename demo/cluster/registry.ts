/**
 * A registry of the single-node cluster's own: Debian's docker-registry (distribution) inside the node's network
 * namespace on the node address, TLS with a CA made per run (openssl), and the node's containerd pointed at it
 * through a hosts.toml under /etc/containerd/certs.d (the node's own files, seeded before it starts). Releases go
 * into it with `npm run release` run in the namespace; the kubelet pulls from it by digest. Nothing listens
 * outside the namespace, which has no route out.
 */
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INSTALLED_LABEL } from '../../lib/catalog/node-contract';
import type { ReleaseRecord } from '../../release/main';
import { NODE_NAME, NodeCluster, startNodeCluster } from './cluster';
import { NetworkNamespace, NODE_ADDRESS } from './netns';
import { openssl } from './openssl';
import { exec, REPO, sleep } from './process';
import { NAMESPACE, nodeLabels, productLogs, RELEASE, waitFor } from './product';

export const NODE_REGISTRY = `${NODE_ADDRESS}:5000`;
/** containerd's hosts directory on the node (config_path of its CRI image service). */
export const NODE_REGISTRY_HOSTS_DIR = 'etc/containerd/certs.d';

export interface RegistryCertificates {
  /** The CA's certificate (PEM): `--ca-file` of the release and of helm, `ca` of the node's hosts.toml. */
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A CA and the registry's serving certificate for the node address, in `dir`. */
export function registryCertificates(dir: string): RegistryCertificates {
  fs.mkdirSync(dir, { recursive: true });
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=knawd node registry CA']);
  fs.writeFileSync(path.join(dir, 'san.ext'), `subjectAltName=IP:${NODE_ADDRESS}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'registry.key', '-out', 'registry.csr', '-subj', `/CN=${NODE_ADDRESS}`]);
  openssl(dir, ['x509', '-req', '-in', 'registry.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'registry.pem', '-days', '2', '-extfile', 'san.ext']);
  return { ca: path.join(dir, 'ca.pem'), cert: path.join(dir, 'registry.pem'), key: path.join(dir, 'registry.key') };
}

/** The node's files that make its containerd trust and use the registry (node paths → content). */
export function registryHostFiles(certs: RegistryCertificates): Record<string, string> {
  const dir = `${NODE_REGISTRY_HOSTS_DIR}/${NODE_REGISTRY}`;
  return {
    [`${dir}/ca.crt`]: fs.readFileSync(certs.ca, 'utf8'),
    [`${dir}/hosts.toml`]: `server = "https://${NODE_REGISTRY}"\n\n[host."https://${NODE_REGISTRY}"]\n  capabilities = ["pull", "resolve"]\n  ca = "/${dir}/ca.crt"\n`,
  };
}

export interface NodeRegistry {
  /** Stops the registry (its process leaves the namespace). */
  stop(): Promise<void>;
  /** The registry's storage, for what it holds. */
  readonly dataDir: string;
}

/** Starts docker-registry in the node's namespace on {@link NODE_REGISTRY}; resolves once it answers /v2/ over TLS. */
export async function startNodeRegistry(netns: NetworkNamespace, dir: string, certs: RegistryCertificates): Promise<NodeRegistry> {
  const dataDir = path.join(dir, 'data');
  const config = path.join(dir, 'registry.yml');
  fs.writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${dataDir}`, 'http:', `  addr: ${NODE_REGISTRY}`, '  tls:', `    certificate: ${certs.cert}`, `    key: ${certs.key}`, ''].join('\n'),
  );
  const log = fs.openSync(path.join(dir, 'registry.log'), 'a');
  const argv = netns.enter(['/usr/bin/docker-registry', 'serve', config]);
  const child: ChildProcess = spawn(argv[0], argv.slice(1), { stdio: ['ignore', log, log] });
  fs.closeSync(log);
  let exited: string | undefined;
  child.on('exit', (code, signal) => (exited = signal ? `killed by ${signal}` : `exited with status ${code}`));
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    for (let i = 0; i < 50 && !exited; i++) await sleep(100);
    if (!exited) child.kill('SIGKILL');
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (exited) throw new Error(`docker-registry ${exited} at start-up: ${fs.readFileSync(path.join(dir, 'registry.log'), 'utf8').slice(-2000)}`);
    const probe = exec('/usr/bin/nsenter', [`--net=${netns.file}`, '--', 'curl', '-sf', '--cacert', certs.ca, `https://${NODE_REGISTRY}/v2/`], { timeoutMs: 5_000 });
    if (probe.code === 0) return { stop, dataDir };
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer https://${NODE_REGISTRY}/v2/ within 20 s: ${probe.stderr.trim()}`);
    }
    await sleep(200);
  }
}

/** What the kubelet reported for its pull of `image`: seconds and bytes (its "Successfully pulled image" Event). */
export function pulledFromEvents(eventsJson: string, image: string): { seconds: number; bytes: number } | undefined {
  const events = (JSON.parse(eventsJson) as { items: Array<{ reason: string; message: string }> }).items;
  for (const e of events) {
    if (e.reason !== 'Pulled' || !e.message.startsWith(`Successfully pulled image "${image}"`)) continue;
    const m = /in ([\d.]+)(ms|s) .*Image size: (\d+) bytes/.exec(e.message);
    if (m) return { seconds: Number(m[1]) / (m[2] === 'ms' ? 1000 : 1), bytes: Number(m[3]) };
  }
  return undefined;
}

/** A containerd 2.x single-node cluster that imports nothing, with its registry running; `stop` takes both down. */
export async function startRegistryNodeCluster(dir: string): Promise<{ h: NodeCluster; certs: RegistryCertificates; stop(): Promise<string[]> }> {
  const certs = registryCertificates(path.join(dir, 'certs'));
  const h = await startNodeCluster(2, { registry: { address: NODE_REGISTRY, seedFiles: registryHostFiles(certs), hostsDir: NODE_REGISTRY_HOSTS_DIR } });
  let registry: NodeRegistry;
  try {
    registry = await startNodeRegistry(h.netns, dir, certs);
  } catch (error) {
    await h.stop();
    throw error;
  }
  return {
    h,
    certs,
    stop: async () => {
      await registry.stop();
      return h.stop();
    },
  };
}

function inNetns(h: NodeCluster, argv: readonly string[], env: NodeJS.ProcessEnv = {}): { code: number | null; stdout: string; stderr: string } {
  const full = h.netns.enter(argv);
  const r = spawnSync(full[0], full.slice(1), { cwd: REPO, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 64 << 20, timeout: 10 * 60_000 });
  return { code: r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/**
 * The harness's pause image (skopeo) and `npm run release` into the node's registry, both run inside its network
 * namespace; returns what the release printed and recorded.
 */
export function releaseIntoNode(h: NodeCluster, certs: RegistryCertificates): { stdout: string; record: ReleaseRecord } {
  const pause = inNetns(h, ['skopeo', 'copy', '--quiet', `oci-archive:${h.images.test.pause.archive}`, `docker://${NODE_REGISTRY}/knawd-test/pause:1`], { SSL_CERT_FILE: certs.ca });
  if (pause.code !== 0) throw new Error(`pushing the pause image into the node's registry failed: ${pause.stderr}`);
  const record = path.join(path.dirname(certs.ca), 'release.json');
  const r = inNetns(h, [path.join(REPO, 'node_modules', '.bin', 'ts-node'), '--transpile-only', path.join(REPO, 'release', 'main.ts'), '--registry', `${NODE_REGISTRY}/knawd`, '--ca-file', certs.ca, '--record', record]);
  if (r.code !== 0) throw new Error(`npm run release into the node's registry failed (exit ${r.code}): ${r.stderr}`);
  return { stdout: r.stdout, record: JSON.parse(fs.readFileSync(record, 'utf8')) as ReleaseRecord };
}

/** `helm install oci://` of the released chart; resolves once the node is labelled installed. */
export async function helmInstallFromRegistry(h: NodeCluster, certs: RegistryCertificates, ociType: string): Promise<void> {
  const r = await h.helm(
    ['install', RELEASE, `oci://${NODE_REGISTRY}/knawd/knawd-deployer`, '--version', '2.0.0', '--ca-file', certs.ca, '--namespace', NAMESPACE, '--create-namespace',
      '--set', 'target=containerd', '--set', `ociType=${ociType}`, '--set', 'patchKnative=false'],
    { timeoutMs: 300_000 },
  );
  if (r.code !== 0) throw new Error(`helm install oci:// failed (exit ${r.code}): ${r.stderr.trim()}\n${await productLogs(h)}`);
  let labels: Record<string, string> = {};
  await waitFor(h, `node ${NODE_NAME} labelled ${INSTALLED_LABEL.key}=${INSTALLED_LABEL.value}`, async () => {
    labels = await nodeLabels(h);
    return labels[INSTALLED_LABEL.key] === INSTALLED_LABEL.value ? true : undefined;
  }, 240_000, () => JSON.stringify(labels));
}

/** The kubelet's pull of `image` as its Event reports it, waited for. */
export function pulledBy(h: NodeCluster, image: string): Promise<{ seconds: number; bytes: number }> {
  return waitFor(h, `the kubelet's Pulled event for ${image}`, async () => pulledFromEvents(await h.kubectlOk(['get', 'events', '-A', '-o', 'json']), image), 60_000);
}
