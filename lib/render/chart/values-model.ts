import {
  DEFAULT_KNATIVE_SELECTOR,
  DEFAULT_PATCH_KNATIVE,
  KNATIVE_DEPLOYMENT,
  KNATIVE_SERVING_API,
  LABEL_KEY_PATTERN,
  LABEL_VALUE_PATTERN,
  PATCH_KNATIVE_MODES,
  DEFAULT_HANDLER,
  DEFAULT_HOST_PREFIX,
  DEFAULT_RUNTIME_CLASS,
  HANDLER_PATTERN,
  HOST_PREFIX_MAX_LENGTH,
  HOST_PREFIX_PATTERN,
  LOG_LEVELS,
  MAX_HANDLER_LENGTH,
  RUNTIMES,
  RUNTIME_NAMES,
  WASM_TEST_IMAGE,
  runtimesFor,
  runtimesForAuto,
  AUTO_CANDIDATES,
  AUTO_TARGET,
  OPENSHIFT_SECURITY_API,
  TARGETS,
  DEFAULT_DRIFT_CHECK_SECONDS,
  DEFAULT_MAX_CONCURRENT_RESTARTS,
  MAX_CONCURRENT_RESTARTS_LIMIT,
  MAX_DRIFT_CHECK_SECONDS,
  RESTART_LEASE_PREFIX,
  TAINT_EFFECTS,
  TARGET_CHOICES,
  DEFAULT_IMAGE_REPOSITORY,
  DEFAULT_IMAGE_TAG,
} from '../../catalog';
import {
  DEFAULT_LOG_LEVEL,
  DEFAULT_OCI_TYPE,
  DEFAULT_PRIORITY_CLASS,
  DEFAULT_PULL_POLICY,
  DEFAULT_RESOURCES,
  DEFAULT_TARGET,
  DEFAULT_UPDATE_STRATEGY,
  DEFAULT_UNINSTALL_PODS_TIMEOUT_SECONDS,
  IMAGE_DIGEST_PATTERN,
  MAX_UNINSTALL_PODS_TIMEOUT_SECONDS,
  TOLERATE_EVERYTHING,
  UNINSTALL_RESTORE_SECONDS,
} from '../../constructs/settings';

/** One key of the chart's values: its default, its schema and the sentence that documents it. */
export interface ValueEntry {
  /** Dotted path in values.yaml. */
  readonly path: string;
  readonly description: string;
  readonly default: unknown;
  /** JSON schema of the value (description is added from `description`). */
  readonly schema: Record<string, unknown>;
}

const quantityMap = { type: 'object', additionalProperties: { type: ['string', 'number'] } };
const intOrString = { type: ['integer', 'string'] };

/** The chart's values, original keys first. Defaults are the constructs' own defaults. */
export const VALUES: readonly ValueEntry[] = [
  {
    path: 'target',
    description: `Kind of node to configure: ${TARGET_CHOICES.join(', ')}. "${AUTO_TARGET}": each node's installer finds out which of ${AUTO_CANDIDATES.join(', ')} its node is (from the Node object and the node's files; its log and knawd-installer plan say why), so one release serves a mixed cluster, and the OpenShift SCC is rendered where the cluster serves ${OPENSHIFT_SECURITY_API}. A target a node contradicts is refused there before anything is written (the node is labelled failed, with an Event saying what was found).`,
    default: DEFAULT_TARGET,
    schema: { type: 'string', enum: TARGET_CHOICES },
  },
  {
    path: 'tag',
    description: "Installer image tag: the image of an ociType is image.repository:<tag>-<ociType>, carrying that ociType's crun build only (ignored for an ociType that image.digests pins).",
    default: DEFAULT_IMAGE_TAG,
    schema: { type: 'string', minLength: 1 },
  },
  {
    path: 'autoRestart',
    description: "Restart the node's container runtime after changing its config; false leaves a restart pending.",
    default: true,
    schema: { type: 'boolean' },
  },
  { path: 'logLevel', description: `Installer log level: ${LOG_LEVELS.join(', ')}.`, default: DEFAULT_LOG_LEVEL, schema: { type: 'string', enum: LOG_LEVELS } },
  {
    path: 'ociType',
    description: `crun build to install: ${RUNTIME_NAMES.join(', ')} (not every target ships every build: the schema refuses a pair that is not shipped).`,
    default: DEFAULT_OCI_TYPE,
    schema: { type: 'string', enum: RUNTIME_NAMES },
  },
  {
    path: 'patchKnative',
    description:
      `Wire Knative Serving up: enable its kubernetes.podspec-runtimeclassname feature flag (restored on uninstall while still ours), with the installer's permission bound in Knative's namespace. "auto": only where the cluster serves ${KNATIVE_SERVING_API} (helm upgrade after installing Knative wires it up); true: always (Knative must be installed first); false: leave Knative alone.`,
    default: DEFAULT_PATCH_KNATIVE,
    schema: { enum: PATCH_KNATIVE_MODES.map((m) => (m === 'auto' ? m : m === 'true')) },
  },
  {
    path: 'nodeRestrictionPolicy',
    description:
      'Install the ValidatingAdmissionPolicy that lets the installer change only the Node its pod runs on, and only its own labels there. "auto": where the cluster serves admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy (Kubernetes 1.30+); true: always; false: never.',
    default: 'auto',
    schema: { enum: ['auto', true, false] },
  },
  {
    path: 'knative.runtimeClassName.enabled',
    description: `Make runtimeClass.name the default RuntimeClass of Knative Services whose revisions carry the selector's labels, through ${KNATIVE_DEPLOYMENT.namespace}/${KNATIVE_DEPLOYMENT.configMap} ${KNATIVE_DEPLOYMENT.key} (Knative 1.15+; other entries kept, ours removed on uninstall while still ours). Needs patchKnative auto or true.`,
    default: false,
    schema: { type: 'boolean' },
  },
  {
    path: 'knative.runtimeClassName.selector',
    description: "Revision labels that select the RuntimeClass: set them in a Knative Service's spec.template.metadata.labels.",
    default: DEFAULT_KNATIVE_SELECTOR,
    schema: {
      type: 'object',
      propertyNames: { pattern: LABEL_KEY_PATTERN.source, maxLength: 317 },
      // `--set` turns true into a boolean; it renders as the label value "true".
      additionalProperties: { anyOf: [{ type: 'string', pattern: LABEL_VALUE_PATTERN.source }, { type: 'boolean' }] },
    },
  },
  { path: 'image.repository', description: 'Installer image repository.', default: DEFAULT_IMAGE_REPOSITORY, schema: { type: 'string', minLength: 1 } },
  {
    path: 'image.digests',
    description: `Installer image index digests (sha256:…) by ociType (${RUNTIME_NAMES.join(', ')}), as a release pins them: the ociType's entry pins its image, repository@digest, for every architecture, and wins over tag.`,
    default: {},
    schema: { type: 'object', propertyNames: { enum: RUNTIME_NAMES }, additionalProperties: { type: 'string', pattern: IMAGE_DIGEST_PATTERN.source } },
  },
  { path: 'image.pullPolicy', description: 'Installer image pull policy.', default: DEFAULT_PULL_POLICY, schema: { type: 'string', enum: ['Always', 'IfNotPresent', 'Never'] } },
  { path: 'imagePullSecrets', description: 'Names of Secrets used to pull the installer image.', default: [], schema: { type: 'array', items: { type: 'string', minLength: 1 } } },
  {
    path: 'nodeSelector',
    description: 'Install only on nodes with these labels (default: every node).',
    default: {},
    schema: { type: 'object', additionalProperties: { type: 'string' } },
  },
  {
    path: 'tolerations',
    description: 'Tolerations of the installer pods (default: tolerate every taint, so no node is skipped).',
    default: TOLERATE_EVERYTHING,
    schema: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        properties: {
          key: { type: 'string' },
          operator: { type: 'string', enum: ['Exists', 'Equal'] },
          value: { type: 'string' },
          effect: { type: 'string', enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] },
          tolerationSeconds: { type: 'integer' },
        },
      },
    },
  },
  {
    path: 'resources',
    description:
      'Resources of the installer container (Helm merges maps: set a default key to null to drop it). Requests are what an installed node\'s pod uses while it idles (the static agent and its readiness probe, measured by npm run bench); limits are sized for an install and a drift check, which run Node.js and copy the artifacts through the page cache.',
    default: DEFAULT_RESOURCES,
    schema: { type: 'object', additionalProperties: false, properties: { requests: quantityMap, limits: quantityMap } },
  },
  { path: 'priorityClassName', description: 'Priority class of the installer pods.', default: DEFAULT_PRIORITY_CLASS, schema: { type: 'string' } },
  {
    path: 'updateStrategy',
    description: 'Update strategy of the installer DaemonSet (with type OnDelete set rollingUpdate: null).',
    default: DEFAULT_UPDATE_STRATEGY,
    schema: {
      type: 'object',
      additionalProperties: false,
      required: ['type'],
      properties: {
        type: { type: 'string', enum: ['RollingUpdate', 'OnDelete'] },
        rollingUpdate: { type: 'object', additionalProperties: false, properties: { maxUnavailable: intOrString, maxSurge: intOrString } },
      },
    },
  },
  { path: 'runtimeClass.name', description: 'Name of the RuntimeClass WASM workloads use.', default: DEFAULT_RUNTIME_CLASS, schema: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$' } },
  {
    path: 'runtimeClass.handler',
    description: 'CRI handler registered in containerd / CRI-O (not "crun": CRI-O 1.31+ names its default runtime so).',
    default: DEFAULT_HANDLER,
    schema: { type: 'string', pattern: HANDLER_PATTERN.source, maxLength: MAX_HANDLER_LENGTH },
  },
  { path: 'hostPrefix', description: 'Host directory everything is installed under.', default: DEFAULT_HOST_PREFIX, schema: { type: 'string', pattern: HOST_PREFIX_PATTERN.source, maxLength: HOST_PREFIX_MAX_LENGTH } },
  {
    path: 'maxConcurrentRestarts',
    description: `How many nodes may restart their container runtime at once (first install, upgrade, drift repair, uninstall): one Lease ${RESTART_LEASE_PREFIX}<i> per slot in the release namespace, held while a runtime restarts and is verified. A node waiting for a slot is labelled pending.`,
    default: DEFAULT_MAX_CONCURRENT_RESTARTS,
    schema: { type: 'integer', minimum: 1, maximum: MAX_CONCURRENT_RESTARTS_LIMIT },
  },
  {
    path: 'driftCheckSeconds',
    description: 'How often (seconds) the staying installer re-checks its node (config block, files, the handler served by the runtime) and repairs drift through the restart budget; 0 never.',
    default: DEFAULT_DRIFT_CHECK_SECONDS,
    schema: { type: 'integer', minimum: 0, maximum: MAX_DRIFT_CHECK_SECONDS },
  },
  {
    path: 'uninstallPodsTimeoutSeconds',
    description: `How long (seconds) each node's remover waits at uninstall for pods still running with the handler before it refuses (the uninstall then fails and the release stays); the uninstall waits this plus ${UNINSTALL_RESTORE_SECONDS} s for every node to be restored.`,
    default: DEFAULT_UNINSTALL_PODS_TIMEOUT_SECONDS,
    schema: { type: 'integer', minimum: 1, maximum: MAX_UNINSTALL_PODS_TIMEOUT_SECONDS },
  },
  {
    path: 'startupTaint.key',
    description: "A taint to remove from each node once it is installed (e.g. a node provisioner's startup taint, such as Karpenter's startupTaints); empty: none. The node-restriction policy lets the installer remove only this taint.",
    default: '',
    schema: { type: 'string', anyOf: [{ const: '' }, { pattern: LABEL_KEY_PATTERN.source, maxLength: 317 }] },
  },
  { path: 'startupTaint.effect', description: "The startup taint's effect.", default: 'NoSchedule', schema: { type: 'string', enum: TAINT_EFFECTS } },
  {
    path: 'test.image',
    description: 'Image helm test runs through the RuntimeClass: a WASI program (.wasm entry point, numeric non-root user), best pinned by digest.',
    default: WASM_TEST_IMAGE,
    schema: { type: 'string', minLength: 1 },
  },
];

/** The values as a nested object. */
export function defaultValues(): Record<string, unknown> {
  const root: Record<string, any> = {};
  for (const v of VALUES) {
    const keys = v.path.split('.');
    let node = root;
    for (const k of keys.slice(0, -1)) node = node[k] ??= {};
    node[keys[keys.length - 1]] = structuredClone(v.default);
  }
  return root;
}

/** values.schema.json: every key typed and documented, unknown keys refused, unshipped pairs refused. */
export function valuesSchema(): Record<string, unknown> {
  const root: any = { $schema: 'https://json-schema.org/draft-07/schema#', type: 'object', additionalProperties: false, properties: {} };
  for (const v of VALUES) {
    const keys = v.path.split('.');
    let node = root;
    for (const k of keys.slice(0, -1)) {
      node.properties[k] ??= { type: 'object', additionalProperties: false, properties: {} };
      node = node.properties[k];
    }
    node.properties[keys[keys.length - 1]] = { description: v.description, ...v.schema };
  }
  root.allOf = [...variantRules(), ...knativeRules()];
  return root;
}

/** Knative's runtime-class-name needs a selector to match on (that it needs patchKnative is the template's check: its message says why). */
function knativeRules(): Record<string, unknown>[] {
  const enabled = { properties: { knative: { properties: { runtimeClassName: { properties: { enabled: { const: true } }, required: ['enabled'] } }, required: ['runtimeClassName'] } }, required: ['knative'] };
  return [
    {
      if: enabled,
      then: { properties: { knative: { properties: { runtimeClassName: { properties: { selector: { description: 'knative.runtimeClassName.selector needs at least one label', minProperties: 1 } } } } } } },
    },
  ];
}

/** Pairs that are not shipped are refused. */
function variantRules(): Record<string, unknown>[] {
  const auto = { target: AUTO_TARGET as string, shipped: runtimesForAuto().map((r) => r.name) };
  return [auto, ...TARGETS.map((t) => ({ target: t.name as string, shipped: runtimesFor(t).map((r) => r.name) }))]
    .filter(({ shipped }) => shipped.length < RUNTIMES.length)
    .map(({ target, shipped }) => ({
      if: { properties: { target: { const: target } }, required: ['target'] },
      then: { properties: { ociType: { description: `target ${target} ships only: ${shipped.join(', ')}`, enum: shipped } } },
    }));
}
