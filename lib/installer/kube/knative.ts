/**
 * Knative's `kubernetes.podspec-runtimeclassname` feature flag: set on install (the value it had recorded
 * first, so remove can put it back), restored on remove only while it still holds our value. Knative being
 * absent or unreachable is never a reason to fail an install: the node is configured either way.
 */
import { KNATIVE_FEATURE } from '../../catalog';
import { messageOf } from '../errors';
import { Logger } from '../log';
import { KnativeRecord } from '../plan/state';
import { ClusterApi } from './cluster';

export async function enableKnative(cluster: ClusterApi, log: Logger, record: (previous: KnativeRecord) => void): Promise<void> {
  const { namespace, configMap, key, value } = KNATIVE_FEATURE;
  try {
    const current = await cluster.getConfigMapKey(namespace, configMap, key);
    if (!current.found) {
      log.warn(`Knative not found (no ConfigMap ${namespace}/${configMap}): not enabling ${key}`);
      return;
    }
    if (current.value === value) return;
    // Record the previous value before changing it, so that remove restores it even after a crash here.
    record({ previous: current.value ?? null });
    await cluster.setConfigMapKey(namespace, configMap, key, value);
    log.info(`enabled Knative feature ${key}`, { previous: current.value ?? null });
  } catch (error) {
    log.warn(`could not enable Knative feature ${key}: ${messageOf(error)}`, {
      fix: `kubectl -n ${namespace} patch configmap ${configMap} --type merge -p '{"data":{"${key}":"${value}"}}'`,
    });
  }
}

export async function restoreKnative(cluster: ClusterApi, log: Logger, recorded: KnativeRecord): Promise<void> {
  const { namespace, configMap, key, value } = KNATIVE_FEATURE;
  try {
    const current = await cluster.getConfigMapKey(namespace, configMap, key);
    // Only undo our own change: if someone set another value since, it is theirs.
    if (!current.found || current.value !== value) return;
    await cluster.setConfigMapKey(namespace, configMap, key, recorded.previous);
    log.info(`restored Knative feature ${key}`, { value: recorded.previous });
  } catch (error) {
    log.warn(`could not restore Knative feature ${key}: ${messageOf(error)}`, {
      fix: `kubectl -n ${namespace} patch configmap ${configMap} --type merge -p '{"data":{"${key}":${JSON.stringify(recorded.previous)}}}'`,
    });
  }
}
