/**
 * Where the installer's API server is and how it authenticates, from the pod's in-cluster config or from a
 * kubeconfig. Pure: text and environment in, an {@link Endpoint} out; files are only named here (absolute
 * paths) and read by the HTTP client at connect time, so a rotated ServiceAccount token is picked up.
 */
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import { InstallerError } from '../errors';

/** Inline bytes or a file to read them from. */
export type Source = { readonly data: string } | { readonly file: string };

export interface Endpoint {
  /** `https://host:port`, maybe with a path prefix (an API proxy's), no trailing slash. */
  readonly server: string;
  /** CA bundle that signs the server's certificate; the system roots when absent. */
  readonly ca?: Source;
  readonly insecureSkipTlsVerify?: boolean;
  /** Name to verify the server certificate against instead of the server's host. */
  readonly tlsServerName?: string;
  /** Bearer token; a file is read before every request (projected tokens rotate). */
  readonly token?: Source;
  readonly clientCertificate?: Source;
  readonly clientKey?: Source;
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * The in-cluster endpoint, as client-go's `rest.InClusterConfig` builds it: `KUBERNETES_SERVICE_HOST`/`PORT`,
 * the ServiceAccount token and CA under `serviceAccountDir`. Undefined outside a pod.
 */
export function inClusterEndpoint(env: NodeJS.ProcessEnv, hasFile: (file: string) => boolean, serviceAccountDir = SERVICE_ACCOUNT_DIR): Endpoint | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const token = path.join(serviceAccountDir, 'token');
  if (!host || !hasFile(token)) return undefined;
  const port = env.KUBERNETES_SERVICE_PORT || '443';
  return {
    server: `https://${host.includes(':') ? `[${host}]` : host}:${port}`,
    ca: { file: path.join(serviceAccountDir, 'ca.crt') },
    token: { file: token },
  };
}

/** Authentication a kubeconfig user may use that this client does not speak, and why it is refused. */
const UNSUPPORTED_USER_KEYS: Readonly<Record<string, string>> = {
  exec: 'an exec credential plugin',
  'auth-provider': 'an auth-provider plugin',
  username: 'basic authentication (removed from Kubernetes in 1.19)',
  password: 'basic authentication (removed from Kubernetes in 1.19)',
  as: 'impersonation',
};

/**
 * The endpoint of a kubeconfig's current context. `file` is the kubeconfig's own path: relative paths in it
 * are relative to its directory, as kubectl resolves them.
 */
export function kubeconfigEndpoint(text: string, file: string): Endpoint {
  const refuse = (what: string): never => {
    throw new InstallerError(`kubeconfig ${file}: ${what}`, 'pass a kubeconfig whose current context has a server, a CA and a token or client certificate');
  };
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (error) {
    return refuse(`not YAML (${error instanceof Error ? error.message : String(error)})`);
  }
  const config = record(doc) ?? refuse('not a kubeconfig (expected a mapping with clusters, users and contexts)');
  const contextName = string(config['current-context']) ?? refuse('no current-context');
  const context = named(config.contexts, 'context', contextName) ?? refuse(`current-context "${contextName}" is not among its contexts`);
  const clusterName = string(context.cluster) ?? refuse(`context "${contextName}" names no cluster`);
  const cluster = named(config.clusters, 'cluster', clusterName) ?? refuse(`cluster "${clusterName}" is not among its clusters`);
  const userName = string(context.user);
  const user = userName === undefined ? {} : (named(config.users, 'user', userName) ?? refuse(`user "${userName}" is not among its users`));

  const server = string(cluster.server) ?? refuse(`cluster "${clusterName}" has no server`);
  if (!/^https:\/\/[^/]+(\/.*)?$/.test(server)) refuse(`cluster "${clusterName}" server "${server}" is not an https:// URL`);
  if (cluster['proxy-url'] !== undefined) refuse(`cluster "${clusterName}" uses proxy-url, which the installer does not support`);
  for (const [key, what] of Object.entries(UNSUPPORTED_USER_KEYS)) {
    if (user[key] !== undefined) refuse(`user "${userName}" uses ${what}, which the installer does not support`);
  }
  const base = path.dirname(path.resolve(file));
  const source = (entry: Record<string, unknown>, dataKey: string, fileKey: string, decode: boolean): Source | undefined => {
    const data = string(entry[dataKey]);
    if (data !== undefined) return { data: decode ? Buffer.from(data, 'base64').toString('utf8') : data };
    const name = string(entry[fileKey]);
    return name === undefined ? undefined : { file: path.resolve(base, name) };
  };
  const clientCertificate = source(user, 'client-certificate-data', 'client-certificate', true);
  const clientKey = source(user, 'client-key-data', 'client-key', true);
  if ((clientCertificate === undefined) !== (clientKey === undefined)) refuse(`user "${userName}" has a client certificate without its key, or a key without its certificate`);
  return {
    server: server.replace(/\/$/, ''),
    ca: source(cluster, 'certificate-authority-data', 'certificate-authority', true),
    insecureSkipTlsVerify: cluster['insecure-skip-tls-verify'] === true,
    tlsServerName: string(cluster['tls-server-name']),
    token: source(user, 'token', 'tokenFile', false),
    clientCertificate,
    clientKey,
  };
}

function record(value: unknown): Record<string, unknown> | undefined {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}

function string(value: unknown): string | undefined {
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/** The `inner` mapping of the list entry called `name` (kubeconfig's `- name: x\n  cluster: {...}` shape). */
function named(list: unknown, inner: string, name: string): Record<string, unknown> | undefined {
  if (!Array.isArray(list)) return undefined;
  const entry = list.map(record).find((e) => e?.name === name);
  return entry ? (record(entry[inner]) ?? {}) : undefined;
}
