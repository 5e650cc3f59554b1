/**
 * Knative Serving, wired up by install and unwired by remove:
 * - the `kubernetes.podspec-runtimeclassname` feature flag in config-features, set to `enabled`;
 * - with a selector, our entry in config-deployment's `runtime-class-name` (Knative 1.15+), which makes the
 *   RuntimeClass the default of revisions carrying those labels (the edit itself is runtime-class-name.ts).
 * Before each change the value it replaces is recorded (so remove can put it back even after a crash here), and
 * remove restores each only while it still holds our value. Writes carry the resourceVersion they were computed
 * from, so two nodes' installers (or a person) editing at once never lose each other's change.
 *
 * Knative being absent, not granted to the installer, or unreachable is never a reason to fail an install: the
 * node is configured either way. With `auto` that is normal and logged at info with how to wire it up later;
 * with `true` (Knative expected) it is a warning.
 */
import { KNATIVE_DEPLOYMENT, KNATIVE_FEATURE, KNATIVE_SERVING_API, PatchKnativeMode } from '../../catalog';
import { messageOf } from '../errors';
import { Logger } from '../log';
import { KnativeRecord } from '../plan/state';
import { ClusterApi } from './cluster';
import { EditResult, Selector, withEntry, withoutEntry } from './runtime-class-name';

export interface KnativeWiring {
  readonly patchKnative: PatchKnativeMode;
  /** The RuntimeClass our config-deployment entry names. */
  readonly runtimeClassName: string;
  /** Revision labels for that entry; undefined leaves config-deployment alone. */
  readonly knativeRuntimeClassSelector?: Selector;
}

const LATER =
  'to wire it up later: install Knative Serving, then run helm upgrade with the same values (raw manifests: kubectl apply -f dist/manifests/knative.yaml, then kubectl rollout restart daemonset/knawd-installer in the installer namespace)';
const NOT_GRANTED_FIX =
  "give the installer Knative's RBAC: helm upgrade with the same values (raw manifests: kubectl apply -f dist/manifests/knative.yaml), then restart the installer pods";
/** Bound on read-compute-write rounds lost to concurrent writers. */
const ATTEMPTS = 5;

/** Keeps the first recorded original of each part: a later run must never take our own value for the original. */
export function mergeKnativeRecord(recorded: KnativeRecord | undefined, update: KnativeRecord): KnativeRecord {
  const merged: { -readonly [K in keyof KnativeRecord]: KnativeRecord[K] } = { ...recorded };
  if (merged.previous === undefined && update.previous !== undefined) merged.previous = update.previous;
  if (update.runtimeClassName) {
    // The selector and name are the latest we wrote (what remove must recognise as ours); the original stays.
    const original = recorded?.runtimeClassName ? recorded.runtimeClassName.previous : update.runtimeClassName.previous;
    merged.runtimeClassName = { ...update.runtimeClassName, previous: original };
  }
  return merged;
}

export async function wireKnative(cluster: ClusterApi, log: Logger, wiring: KnativeWiring, record: (update: KnativeRecord) => void): Promise<void> {
  if (wiring.patchKnative === 'false') return;
  const expected = wiring.patchKnative === 'true';
  const note = (msg: string, fields?: Record<string, unknown>): void => (expected ? log.warn(msg, fields) : log.info(msg, fields));
  // Discovery tells "not installed" from "installed, but not granted to us" (both answer 403 without the
  // RoleBinding in Knative's namespace); with true the ConfigMaps are tried whatever it says.
  try {
    if (!expected && !(await cluster.servesApi(KNATIVE_SERVING_API))) {
      note(`Knative Serving is not installed (the cluster does not serve ${KNATIVE_SERVING_API}): Knative is left alone; ${LATER}`);
      return;
    }
  } catch (error) {
    log.warn(`could not tell whether Knative Serving is installed: ${messageOf(error)}`);
    return;
  }

  const flag = KNATIVE_FEATURE;
  await change(cluster, log, note, {
    target: flag,
    // Knative reads the flag case-insensitively (pkg/apis/config asFlag): "Enabled" is on already, and not ours.
    edit: (current) => (current?.toLowerCase() === flag.value ? { kind: 'unchanged' } : { kind: 'write', value: flag.value }),
    before: (current) => record({ previous: current ?? null }),
    done: `enabled Knative feature ${flag.key}`,
    fix: `kubectl -n ${flag.namespace} patch configmap ${flag.configMap} --type merge -p '{"data":{"${flag.key}":"${flag.value}"}}'`,
  });

  const selector = wiring.knativeRuntimeClassSelector;
  if (!selector) return;
  const name = wiring.runtimeClassName;
  const labels = Object.entries(selector).map(([k, v]) => `${k}=${v}`).join(',');
  await change(cluster, log, note, {
    target: KNATIVE_DEPLOYMENT,
    edit: (current) => withEntry(current, name, selector),
    before: (current) => record({ runtimeClassName: { previous: current ?? null, name, selector } }),
    done: `made RuntimeClass ${name} the default of Knative revisions labelled ${labels}`,
    fix: `add ${JSON.stringify(name)}: {selector: ${JSON.stringify(selector)}} to ${KNATIVE_DEPLOYMENT.key} in kubectl -n ${KNATIVE_DEPLOYMENT.namespace} edit configmap ${KNATIVE_DEPLOYMENT.configMap}`,
  });
}

export async function restoreKnative(cluster: ClusterApi, log: Logger, recorded: KnativeRecord): Promise<void> {
  const note = (msg: string): void => log.warn(msg);
  const flag = KNATIVE_FEATURE;
  const previous = recorded.previous;
  if (previous !== undefined) {
    await change(cluster, log, note, {
      target: flag,
      // Only undo our own change: if someone set another value since, it is theirs.
      edit: (current) => (current === flag.value ? { kind: 'write', value: previous } : { kind: 'unchanged' }),
      done: `restored Knative feature ${flag.key}`,
      fix: `kubectl -n ${flag.namespace} patch configmap ${flag.configMap} --type merge -p '{"data":{"${flag.key}":${JSON.stringify(previous)}}}'`,
    });
  }
  const ours = recorded.runtimeClassName;
  if (ours) {
    await change(cluster, log, note, {
      target: KNATIVE_DEPLOYMENT,
      edit: (current) => withoutEntry(current, ours.previous, ours.name, ours.selector),
      done: `took RuntimeClass ${ours.name} out of Knative's ${KNATIVE_DEPLOYMENT.key}`,
      fix: `remove ${JSON.stringify(ours.name)} from ${KNATIVE_DEPLOYMENT.key} in kubectl -n ${KNATIVE_DEPLOYMENT.namespace} edit configmap ${KNATIVE_DEPLOYMENT.configMap}`,
    });
  }
}

interface Change {
  readonly target: { readonly namespace: string; readonly configMap: string; readonly key: string };
  /** What to write into the key, given its current value (undefined: absent). */
  readonly edit: (current: string | undefined) => EditResult;
  /** Runs with the value about to be replaced, before the write. */
  readonly before?: (current: string | undefined) => void;
  /** The info line once written. */
  readonly done: string;
  /** How to do it by hand, for the warning when it could not be done. */
  readonly fix: string;
}

/** Reads, edits and writes one key of a Knative ConfigMap; again from the top when someone wrote in between. */
async function change(cluster: ClusterApi, log: Logger, note: (msg: string) => void, c: Change): Promise<void> {
  const { namespace, configMap, key } = c.target;
  const where = `${namespace}/${configMap}`;
  try {
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      const read = await cluster.getConfigMap(namespace, configMap);
      if (read.state === 'missing') return note(`Knative's ConfigMap ${where} does not exist: ${key} left alone`);
      if (read.state === 'forbidden') return note(`the installer may not read Knative's ConfigMap ${where} (${read.message}); ${NOT_GRANTED_FIX}`);
      const current = read.data[key];
      const result = c.edit(current);
      if (result.kind === 'unchanged') return;
      if (result.kind === 'refused') return log.warn(`${where} ${key} left alone: ${result.reason}`, { value: current, fix: c.fix });
      c.before?.(current);
      if ((await cluster.patchConfigMap(namespace, configMap, { [key]: result.value }, read.resourceVersion)) === 'patched') {
        return log.info(c.done, { configMap: where, key, previous: current ?? null });
      }
      log.debug(`${where} changed while we edited it; reading it again`, { attempt });
    }
    log.warn(`${where} kept changing while we edited it (${ATTEMPTS} attempts): ${key} left as it is`, { fix: c.fix });
  } catch (error) {
    log.warn(`could not change ${where} ${key}: ${messageOf(error)}`, { fix: c.fix });
  }
}
