/**
 * Knative Serving as it ships, for the tests: its config-features and config-deployment ConfigMaps and its
 * Service CRD from the knative.dev/serving module (`npm run tools` fetches them per version into the tool
 * cache), and knative-config-check, Knative's own config-deployment parser built from that version.
 */
import * as fs from 'fs';
import * as path from 'path';
import { parse } from 'yaml';
import { KNATIVE_SERVING_API } from '../../lib/catalog';
import type { Cluster } from '../../demo/cluster/control-plane';
import { waitCrdEstablished } from './cluster/objects';
import { REPO, run } from './tools';

function versionsEnv(): Record<string, string> {
  const text = fs.readFileSync(path.join(REPO, 'tools', 'versions.env'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z0-9_]+)=(\S+)$/gm)].map((m) => [m[1], m[2]]));
}

/** The oldest and the newest knative.dev/serving the tools provide (tools/versions.env). */
export const KNATIVE_VERSIONS: readonly string[] = [versionsEnv().KNATIVE_SERVING_OLDEST, versionsEnv().KNATIVE_SERVING_NEWEST];

function entry(version: string): string {
  const dir = path.join(REPO, '.tools', 'knative-serving', version);
  if (!fs.existsSync(path.join(dir, '.complete'))) throw new Error(`${dir} is missing: run \`npm run tools\` (tools/install-tools.sh) first`);
  return dir;
}

export interface ShippedConfigMap {
  readonly apiVersion: 'v1';
  readonly kind: 'ConfigMap';
  readonly metadata: { name: string; namespace: string; labels: Record<string, string>; annotations: Record<string, string> };
  readonly data: Record<string, string>;
}

/** A ConfigMap exactly as Knative Serving `version` ships it. */
export function shippedConfigMap(version: string, file: 'features' | 'deployment'): ShippedConfigMap {
  return parse(fs.readFileSync(path.join(entry(version), 'config', `${file}.yaml`), 'utf8')) as ShippedConfigMap;
}

/** Knative's Service CRD file of `version` (registering it makes the cluster serve serving.knative.dev/v1). */
export function serviceCrdFile(version: string): string {
  return path.join(entry(version), 'config', 'service.yaml');
}

export type KnativeParse =
  | { readonly error: string }
  | { readonly runtimeClassNames?: Record<string, { selector?: Record<string, string> }>; readonly picks?: (string | null)[] };

/** config-deployment data read by Knative `version`'s own parser, and the RuntimeClass it gives each label set. */
export function knativeParse(version: string, data: Record<string, string>, labels: Record<string, string>[] = []): KnativeParse {
  const r = run(path.join(entry(version), 'bin', 'knative-config-check'), [], { input: JSON.stringify({ data, labels }) });
  if (r.code !== 0) throw new Error(`knative-config-check (${version}) failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as KnativeParse;
}

/** Registers Knative `version`'s Service CRD and waits until the cluster serves serving.knative.dev/v1. */
export async function serveKnativeApi(cluster: Cluster, version: string): Promise<void> {
  await cluster.kubectlOk(['apply', '--server-side', '--field-manager=knative', '-f', serviceCrdFile(version)]);
  await waitCrdEstablished(cluster, 'services.serving.knative.dev');
  // Discovery of the new group can lag a moment behind Established.
  for (let i = 0; i < 40; i++) {
    if ((await cluster.kubectl(['get', '--raw', `/apis/${KNATIVE_SERVING_API}`])).code === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the cluster does not serve ${KNATIVE_SERVING_API} after Knative's Service CRD was Established`);
}

/** Removes Knative's Service CRD again: the cluster stops serving serving.knative.dev/v1. */
export async function stopServingKnativeApi(cluster: Cluster): Promise<void> {
  await cluster.kubectlOk(['delete', 'crd', 'services.serving.knative.dev', '--ignore-not-found', '--wait=true', '--timeout=60s']);
  for (let i = 0; i < 40; i++) {
    if ((await cluster.kubectl(['get', '--raw', `/apis/${KNATIVE_SERVING_API}`])).code !== 0) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`the cluster still serves ${KNATIVE_SERVING_API} after Knative's Service CRD was deleted`);
}

/** Applies a ConfigMap exactly as Knative ships it (replacing one of that name). */
export async function applyShipped(cluster: Cluster, cm: ShippedConfigMap): Promise<void> {
  await cluster.kubectl(['-n', cm.metadata.namespace, 'delete', 'configmap', cm.metadata.name, '--ignore-not-found']);
  await cluster.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(cm) });
}
