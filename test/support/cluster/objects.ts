/** Reading the generated manifests, comparing them with what the API server stored, and small kubectl steps. */
import * as fs from 'fs';
import * as path from 'path';
import { parseAllDocuments } from 'yaml';
import { Cluster, REPO } from '../../../demo/cluster/control-plane';

export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [k: string]: any;
};

export const MANIFESTS = path.join(REPO, 'dist', 'manifests');
/** The installer's Knative permission, a file of its own (patchKnative "auto" keeps it out of the others). */
export const KNATIVE_MANIFEST = path.join(MANIFESTS, 'knative.yaml');
export const CHART = path.join(REPO, 'dist', 'charts', 'knawd-deployer');
export const SCC_CRD = path.join(REPO, 'charts-src', 'crds', 'securitycontextconstraints.crd.yaml');
export const SCC_CRD_NAME = 'securitycontextconstraints.security.openshift.io';

/** dist/manifests/<dir>/<ociType>[.uninstall].yaml, `dir` a target or auto / auto-openshift. */
export function manifestPath(dir: string, ociType: string, uninstall = false): string {
  return path.join(MANIFESTS, dir, `${ociType}${uninstall ? '.uninstall' : ''}.yaml`);
}

/** Every object of a multi-document YAML file, in file order (empty documents dropped). */
export function loadObjects(file: string): K8sObject[] {
  if (!fs.existsSync(file)) throw new Error(`${path.relative(REPO, file)} does not exist; run \`npm run synth\``);
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8'));
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors[0].message}`);
    const value = doc.toJS();
    if (value && typeof value === 'object') objects.push(value as K8sObject);
  }
  return objects;
}

export function describeObject(o: Pick<K8sObject, 'kind' | 'metadata'>): string {
  return `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`;
}

/**
 * Where `sent` is not contained in `stored`: every field we sent must be there with the same value; the
 * server may add fields (defaults, metadata). Lists must have the same length and each element must contain
 * the one sent at the same index (no Kubernetes defaulting adds or reorders list elements of these objects).
 * Scalars compare strictly (a "true" string is not a boolean). A sent zero value (0, false, "", [], {}) may be
 * absent on the server: Kubernetes omits zero values of non-pointer fields when it serializes.
 */
export function subsetDifferences(sent: unknown, stored: unknown, at = ''): string[] {
  if (sent === null || typeof sent !== 'object') {
    return Object.is(sent, stored) ? [] : [`${at || '.'}: sent ${JSON.stringify(sent)}, stored ${JSON.stringify(stored)}`];
  }
  if (Array.isArray(sent)) {
    if (!Array.isArray(stored)) return [`${at}: sent a list of ${sent.length}, stored ${JSON.stringify(stored)}`];
    if (sent.length !== stored.length) return [`${at}: sent ${sent.length} element(s), stored ${stored.length}: ${JSON.stringify(stored)}`];
    return sent.flatMap((s, i) => subsetDifferences(s, stored[i], `${at}[${i}]`));
  }
  if (stored === null || typeof stored !== 'object' || Array.isArray(stored)) {
    return [`${at}: sent an object, stored ${JSON.stringify(stored)}`];
  }
  return Object.entries(sent as Record<string, unknown>).flatMap(([k, v]) => {
    const here = `${at}.${k}`;
    if (!(k in (stored as Record<string, unknown>))) {
      // The API drops zero values of non-pointer `omitempty` fields (`minReadySeconds: 0`, `hostNetwork: false`):
      // absent there means exactly that value.
      if (isZeroValue(v)) return [];
      return [`${here}: sent ${JSON.stringify(v)}, missing on the server`];
    }
    return subsetDifferences(v, (stored as Record<string, unknown>)[k], here);
  });
}

/** Go's zero value of a JSON field: 0, false, "", an empty list or object. */
function isZeroValue(v: unknown): boolean {
  if (v === 0 || v === false || v === '') return true;
  if (Array.isArray(v)) return v.length === 0;
  return v !== null && typeof v === 'object' && Object.keys(v).length === 0;
}

/** `kubectl get` of exactly the objects of `file`, in file order. */
export async function readBack(cluster: Cluster, file: string): Promise<K8sObject[]> {
  const out = await cluster.kubectlOk(['get', '-f', file, '-o', 'json']);
  const parsed = JSON.parse(out) as { kind: string; items?: K8sObject[] } & K8sObject;
  return parsed.kind === 'List' ? (parsed.items ?? []) : [parsed];
}

/** `kubectl get` of those of `objects` that exist, in one call. */
export async function readBackExisting(cluster: Cluster, objects: readonly K8sObject[]): Promise<K8sObject[]> {
  const out = await cluster.kubectlOk(['get', '-f', '-', '--ignore-not-found', '-o', 'json'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  if (out.trim() === '') return [];
  const parsed = JSON.parse(out) as { kind: string; items?: K8sObject[] } & K8sObject;
  return parsed.kind === 'List' ? (parsed.items ?? []) : [parsed];
}

/** One line per difference between the objects sent and those stored; a sent object not stored is `missing`. */
export function objectDifferences(sent: readonly K8sObject[], stored: readonly K8sObject[], missing = 'not found on the server'): string[] {
  return sent.flatMap((object) => {
    const match = stored.find(
      (s) => s.kind === object.kind && s.metadata.name === object.metadata.name && (s.metadata.namespace ?? '') === (object.metadata.namespace ?? ''),
    );
    if (!match) return [`${describeObject(object)}: ${missing}`];
    return subsetDifferences(object, match).map((d) => `${describeObject(object)} ${d}`);
  });
}

/** Compares every object of `file` with what the server stored; returns one line per difference. */
export async function storedDifferences(cluster: Cluster, file: string): Promise<string[]> {
  return objectDifferences(loadObjects(file), await readBack(cluster, file));
}

/**
 * Waits until the CRD `name` is Established. Not `kubectl wait --for=condition=Established`: right after an
 * apply the CRD may have no conditions yet, and kubectl wait then fails at once instead of waiting (seen under
 * load: "status.conditions accessor error: <nil>").
 */
export async function waitCrdEstablished(cluster: Cluster, name: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const r = await cluster.kubectl(['get', `crd/${name}`, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    if (r.code === 0 && r.stdout.trim() === 'True') return;
    last = r.code === 0 ? `Established is "${r.stdout.trim()}"` : r.stderr.trim();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`CRD ${name} not Established within ${timeoutMs / 1000} s (${last})`);
}

/** Registers the OpenShift SCC CRD from the fixture and waits until it is Established. */
export async function installSccCrd(cluster: Cluster): Promise<void> {
  await cluster.kubectlOk(['apply', '--server-side', '-f', SCC_CRD]);
  await waitCrdEstablished(cluster, SCC_CRD_NAME);
  // Discovery of the new group can lag a moment behind Established.
  for (let i = 0; i < 40; i++) {
    const r = await cluster.kubectl(['get', 'securitycontextconstraints.security.openshift.io']);
    if (r.code === 0) return;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error('the SecurityContextConstraints API did not appear in discovery after the CRD was Established');
}

/** Kubernetes JSON for `kubectl create -f -`. */
export function json(object: unknown): string {
  return JSON.stringify(object);
}

/** Deletes the objects of `file` except Namespaces (a deleted namespace is never finalized here: no controller-manager). */
export async function deleteExceptNamespaces(cluster: Cluster, file: string): Promise<void> {
  const objects = loadObjects(file).filter((o) => o.kind !== 'Namespace');
  if (objects.length === 0) return;
  await cluster.kubectlOk(['delete', '--ignore-not-found', '--wait=false', '-f', '-'], {
    input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }),
  });
}
