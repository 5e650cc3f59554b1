import {
  DEFAULT_IMAGE_REPOSITORY,
  DEFAULT_IMAGE_TAG,
  installerImageName,
  DEFAULT_KNATIVE_SELECTOR,
  DEFAULT_PATCH_KNATIVE,
  formatSelector,
  SELECTOR_RULE,
  selectorProblem,
  DEFAULT_HANDLER,
  DEFAULT_HOST_PREFIX,
  DEFAULT_RUNTIME_CLASS,
  HANDLER_RULE,
  HOST_PREFIX_RULE,
  InvalidVariantError,
  isHandlerName,
  isHostPrefix,
  LOG_LEVELS,
  LogLevel,
  RuntimeName,
  TargetChoice,
  AUTO_TARGET,
  findRuntime,
  findTarget,
  DEFAULT_DRIFT_CHECK_SECONDS,
  DEFAULT_INSTALLER_NAMESPACE,
  DEFAULT_MAX_CONCURRENT_RESTARTS,
  formatTaint,
  isSlotCount,
  MAX_DRIFT_CHECK_SECONDS,
  parseTaint,
  SLOT_COUNT_RULE,
  StartupTaint,
  TAINT_RULE,
  findTargetChoice,
  resolveChoice,
  ORIGINAL_TAG_PATTERN,
  RUNTIME_NAMES,
} from '../catalog';
import { Inclusion } from './conditions';
import { ImagePullPolicy, ResourceRequirements, Toleration, UpdateStrategy } from './k8s-types';
import { KnawdDeployerProps } from './props';
import { isValueRef, valueRef, valueRefPaths } from './value-ref';
import { PACKAGE_VERSION } from './version';

/** Props with every default filled in and every check done: what the parts render from. */
export interface DeployerSettings {
  readonly target: string;
  readonly ociType: string;
  readonly image: string;
  readonly imagePullPolicy: ImagePullPolicy;
  readonly logLevel: string;
  readonly autoRestart: string;
  /** The installer's PATCH_KNATIVE: auto, true or false. */
  readonly patchKnative: string;
  /** The installer's Knative runtime-class-name selector (`key=value,…`); empty when that is not managed. */
  readonly knativeRuntimeClassSelector: string;
  readonly namespace: string;
  readonly createNamespace: boolean;
  readonly nodeSelector?: Record<string, string>;
  readonly tolerations: Toleration[];
  readonly resources: ResourceRequirements;
  readonly priorityClassName: string;
  readonly imagePullSecrets?: { name: string }[];
  readonly updateStrategy: UpdateStrategy;
  readonly runtimeClassName: string;
  readonly handler: string;
  readonly hostPrefix: string;
  readonly openshift: Inclusion;
  /** Whether {@link KnawdDeployer} carries the Knative RBAC (with "auto" it is {@link KnawdKnativeAccess}'s). */
  readonly knativeRbac: Inclusion;
  /** Whether the Knative RBAC covers config-deployment too. */
  readonly knativeRuntimeClass: Inclusion;
  /** Whether {@link KnawdDeployer} carries the node-restriction policy (with "auto" it is {@link KnawdNodeRestriction}'s). */
  readonly nodeRestriction: Inclusion;
  /** K of the restart budget: a number, or a value reference (then the renderer repeats the Lease). */
  readonly maxConcurrentRestarts: number;
  /** The agent's drift-check interval, in seconds (0: never), as the installer container's argument. */
  readonly driftCheckSeconds: string;
  /** The remover's --pods-timeout-seconds. */
  readonly uninstallPodsTimeoutSeconds: string;
  /** The uninstall wait Job's --timeout-seconds: the remover's wait for pods plus {@link UNINSTALL_RESTORE_SECONDS}. */
  readonly uninstallWaitSeconds: string;
  /** The uninstall wait Job's activeDeadlineSeconds. */
  readonly uninstallWaitDeadlineSeconds: number;
  /** The installer's KNAWD_STARTUP_TAINT (`key:effect`); empty when none. */
  readonly startupTaint: string;
  /** The taint key the node-restriction policy lets the installer remove, as a CEL string literal (`""`: none). */
  readonly startupTaintKeyCel: string;
  readonly version: string;
}

export const DEFAULT_PULL_POLICY: ImagePullPolicy = 'IfNotPresent';
export const DEFAULT_TARGET: TargetChoice = AUTO_TARGET;
export const DEFAULT_OCI_TYPE: RuntimeName = 'crun-wasmedge';
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';
export const DEFAULT_NAMESPACE = DEFAULT_INSTALLER_NAMESPACE;
export const DEFAULT_PRIORITY_CLASS = 'system-node-critical';
/**
 * Measured by `npm run bench` (per-node lines) on the real single-node cluster. Requests: what an installed
 * node's pod uses on average — the agent (0.1 MiB RSS), a working set of ~5 MiB (crun-wasmedge's page cache
 * left from the install is mostly inactive), the readiness probe's exec every 10 s (~0.4m) and one drift check
 * every 300 s (~0.3 s of CPU, ~1m averaged). Limits: an install or a drift check runs Node.js (~0.5-0.9 s of
 * CPU) and copies up to ~170 MB of artifacts (crun-wasmedge with LLVM) through the page cache, which the
 * container's memory counts: peaks of ~200 MiB; 256Mi keeps the copy from reclaiming against itself.
 */
export const DEFAULT_RESOURCES: ResourceRequirements = {
  requests: { cpu: '2m', memory: '8Mi' },
  limits: { cpu: '500m', memory: '256Mi' },
};
export const TOLERATE_EVERYTHING: Toleration[] = [{ operator: 'Exists' }];
export const DEFAULT_UPDATE_STRATEGY: UpdateStrategy = { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } };

export const DEFAULT_UNINSTALL_PODS_TIMEOUT_SECONDS = 120;
export const MAX_UNINSTALL_PODS_TIMEOUT_SECONDS = 3600;
/** What the uninstall wait Job allows beyond the remover's wait for pods: restoring a node (a runtime restart, verified). */
export const UNINSTALL_RESTORE_SECONDS = 120;
/** The wait Job's deadline beyond its own bounded wait: it only guards against a hung pod. */
export const UNINSTALL_DEADLINE_MARGIN_SECONDS = 60;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

function fail(message: string): never {
  throw new InvalidVariantError(message);
}

function checked(value: string, what: string, pattern: RegExp, accepted: string): string {
  if (!isValueRef(value) && !pattern.test(value)) {
    fail(`${what} "${value}" is invalid; expected ${accepted}`);
  }
  return value;
}

/** An image (index) digest as a reference pins it. */
export const IMAGE_DIGEST_PATTERN = /^sha256:[a-f0-9]{64}$/;

/** The installer image of `ociType`: `image.reference` as given, else the ociType's digest, else its tag. */
function imageReference(props: KnawdDeployerProps, ociType: string): string {
  const image = props.image ?? {};
  if ('digest' in image) fail('image.digest is replaced by image.digests: a map from ociType to its image index digest, such as { "crun-wasmtime": "sha256:<64 hex digits>" }');
  if (image.reference !== undefined) {
    if (image.reference.trim() === '') fail(`image.reference is empty; expected a full image reference such as ${DEFAULT_IMAGE_REPOSITORY}:${DEFAULT_IMAGE_TAG}-${DEFAULT_OCI_TYPE}`);
    return image.reference;
  }
  const repository = image.repository ?? DEFAULT_IMAGE_REPOSITORY;
  if (repository.trim() === '') fail('image.repository is empty; expected a repository such as quay.io/knawd/deployer');
  const digests = image.digests ?? {};
  for (const [name, digest] of Object.entries(digests)) {
    if (!(RUNTIME_NAMES as readonly string[]).includes(name)) fail(`image.digests has an entry for "${name}", which is no ociType; expected keys among ${RUNTIME_NAMES.join(', ')}`);
    if (!isValueRef(digest) && !IMAGE_DIGEST_PATTERN.test(String(digest))) fail(`image.digests["${name}"] "${digest}" is invalid; expected sha256:<64 hex digits>`);
  }
  if (isValueRef(ociType)) fail('image: an ociType decided at render time needs image.reference (the renderer builds the reference)');
  const digest = digests[ociType as RuntimeName];
  if (digest !== undefined) return `${repository}@${digest}`;
  const tag = image.tag ?? DEFAULT_IMAGE_TAG;
  if (tag.trim() === '') fail(`image.tag is empty; expected a tag such as ${DEFAULT_IMAGE_TAG} (or set image.digests)`);
  if (repository === DEFAULT_IMAGE_REPOSITORY && !isValueRef(tag) && new RegExp(ORIGINAL_TAG_PATTERN).test(tag)) {
    fail(`image.tag "${tag}" names an image of the original knawd-deployer (1.x), which has only its Rust manager; expected a 2.x tag such as ${DEFAULT_IMAGE_TAG}`);
  }
  return installerImageName(ociType, repository, tag);
}

/**
 * Which optional part an Inclusion-deciding prop leads to: a value reference defers the decision to the renderer.
 * The SCC: where `openshift` says, else for the OpenShift targets; `auto` cannot know (a synth does not see the
 * cluster), so it takes `openshift: true` on OpenShift.
 */
function openshiftInclusion(target: string, openshift: boolean | undefined): Inclusion {
  if (openshift !== undefined) {
    if (openshift !== true && openshift !== false) fail(`openshift ${JSON.stringify(openshift)} is invalid; expected true or false`);
    return openshift;
  }
  if (isValueRef(target)) return 'openshift';
  return target === AUTO_TARGET ? false : findTarget(target).openshift;
}

function nodeRestrictionInclusion(mode: boolean | 'auto'): Inclusion {
  if (isValueRef(mode)) return 'nodeRestriction';
  if (mode !== true && mode !== false && mode !== 'auto') fail(`nodeRestrictionPolicy ${JSON.stringify(mode)} is invalid; expected true, false or "auto"`);
  return mode === true;
}

type KnativeSettings = Pick<DeployerSettings, 'patchKnative' | 'knativeRuntimeClassSelector' | 'knativeRbac' | 'knativeRuntimeClass'>;

function knativeSettings(props: KnawdDeployerProps): KnativeSettings {
  const mode = props.patchKnative ?? (DEFAULT_PATCH_KNATIVE as 'auto');
  const runtimeClass = props.knative?.runtimeClassName;
  const selector = runtimeClass && (runtimeClass.selector ?? DEFAULT_KNATIVE_SELECTOR);
  if (selector !== undefined && !isValueRef(selector)) {
    const problem = selectorProblem(selector);
    if (problem) fail(`knative.runtimeClassName.selector is invalid (${problem}); expected ${SELECTOR_RULE}`);
  }
  const selectorText = selector === undefined ? '' : isValueRef(selector) ? (selector as unknown as string) : formatSelector(selector);
  if (isValueRef(mode)) {
    return {
      patchKnative: mode as unknown as string,
      knativeRuntimeClassSelector: selectorText,
      knativeRbac: 'knative',
      knativeRuntimeClass: selector === undefined ? false : isValueRef(selector) ? 'knativeRuntimeClass' : true,
    };
  }
  if (mode !== true && mode !== false && mode !== 'auto') fail(`patchKnative ${JSON.stringify(mode)} is invalid; expected true, false or "auto"`);
  if (mode === false && selector !== undefined) fail('knative.runtimeClassName needs patchKnative true or "auto"; false leaves Knative alone');
  return {
    patchKnative: String(mode),
    knativeRuntimeClassSelector: selectorText,
    knativeRbac: mode === true,
    knativeRuntimeClass: selector !== undefined,
  };
}

/** An empty map or list means "none" and is left out; a value reference is kept for the renderer. */
function unlessEmpty<T>(value: T | undefined, size: (v: T) => number): T | undefined {
  if (value === undefined) return undefined;
  return isValueRef(value) || size(value) > 0 ? value : undefined;
}

function slotCount(value: number | undefined): number {
  const slots = value ?? DEFAULT_MAX_CONCURRENT_RESTARTS;
  if (!isValueRef(slots) && !isSlotCount(slots)) fail(`maxConcurrentRestarts ${JSON.stringify(slots)} is invalid; expected ${SLOT_COUNT_RULE}`);
  return slots;
}

function driftCheckSeconds(value: number | undefined): string {
  const seconds = value ?? DEFAULT_DRIFT_CHECK_SECONDS;
  if (isValueRef(seconds)) return seconds as unknown as string;
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > MAX_DRIFT_CHECK_SECONDS) {
    fail(`driftCheckSeconds ${JSON.stringify(seconds)} is invalid; expected a whole number of seconds from 0 (never) to ${MAX_DRIFT_CHECK_SECONDS}`);
  }
  return String(seconds);
}

type UninstallSettings = Pick<DeployerSettings, 'uninstallPodsTimeoutSeconds' | 'uninstallWaitSeconds' | 'uninstallWaitDeadlineSeconds'>;

function uninstallTimeouts(value: number | undefined): UninstallSettings {
  const seconds = value ?? DEFAULT_UNINSTALL_PODS_TIMEOUT_SECONDS;
  if (isValueRef(seconds)) {
    const [path] = valueRefPaths(seconds as unknown as string);
    return { uninstallPodsTimeoutSeconds: seconds as unknown as string, uninstallWaitSeconds: valueRef(`${path}Wait`), uninstallWaitDeadlineSeconds: valueRef(`${path}Deadline`) };
  }
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > MAX_UNINSTALL_PODS_TIMEOUT_SECONDS) {
    fail(`uninstallPodsTimeoutSeconds ${JSON.stringify(seconds)} is invalid; expected a whole number of seconds from 1 to ${MAX_UNINSTALL_PODS_TIMEOUT_SECONDS}`);
  }
  const wait = seconds + UNINSTALL_RESTORE_SECONDS;
  return { uninstallPodsTimeoutSeconds: String(seconds), uninstallWaitSeconds: String(wait), uninstallWaitDeadlineSeconds: wait + UNINSTALL_DEADLINE_MARGIN_SECONDS };
}

type TaintSettings = Pick<DeployerSettings, 'startupTaint' | 'startupTaintKeyCel'>;

function startupTaint(taint: StartupTaint | undefined): TaintSettings {
  if (taint === undefined) return { startupTaint: '', startupTaintKeyCel: '""' };
  if (isValueRef(taint)) {
    const [path] = valueRefPaths(taint as unknown as string);
    return { startupTaint: taint as unknown as string, startupTaintKeyCel: valueRef(`${path}KeyCel`) };
  }
  const text = formatTaint(taint);
  const parsed = parseTaint(text);
  if (!parsed || parsed.key !== taint.key) fail(`startupTaint ${JSON.stringify(taint)} is invalid; expected ${TAINT_RULE}`);
  return { startupTaint: text, startupTaintKeyCel: JSON.stringify(taint.key) };
}

function imagePullSecrets(names: string[] | undefined): { name: string }[] | undefined {
  const kept = unlessEmpty(names, (n) => n.length);
  if (kept === undefined || isValueRef(kept)) return kept as { name: string }[] | undefined;
  return kept.map((name) => ({ name }));
}

export function resolveSettings(props: KnawdDeployerProps): DeployerSettings {
  const target: string = props.target ?? DEFAULT_TARGET;
  const ociType: string = props.ociType ?? DEFAULT_OCI_TYPE;
  if (!isValueRef(target) && !isValueRef(ociType)) resolveChoice(target, ociType);
  else if (!isValueRef(target)) findTargetChoice(target);
  else if (!isValueRef(ociType)) findRuntime(ociType);

  const logLevel: string = props.logLevel ?? DEFAULT_LOG_LEVEL;
  if (!isValueRef(logLevel) && !(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    fail(`logLevel "${logLevel}" is invalid; valid levels: ${LOG_LEVELS.join(', ')}`);
  }
  const hostPrefix = props.hostPrefix ?? DEFAULT_HOST_PREFIX;
  if (!isValueRef(hostPrefix) && !isHostPrefix(hostPrefix)) fail(`hostPrefix "${hostPrefix}" is invalid; expected ${HOST_PREFIX_RULE}`);
  const handler = props.handler ?? DEFAULT_HANDLER;
  if (!isValueRef(handler) && !isHandlerName(handler)) fail(`handler "${handler}" is invalid; expected ${HANDLER_RULE}`);
  return {
    target,
    ociType,
    image: imageReference(props, ociType),
    imagePullPolicy: props.image?.pullPolicy ?? DEFAULT_PULL_POLICY,
    logLevel,
    autoRestart: String(props.autoRestart ?? true),
    ...knativeSettings(props),
    nodeRestriction: nodeRestrictionInclusion(props.nodeRestrictionPolicy ?? 'auto'),
    namespace: checked(props.namespace ?? DEFAULT_NAMESPACE, 'namespace', DNS_LABEL, 'a DNS label (lower-case letters, digits, "-")'),
    createNamespace: props.createNamespace ?? true,
    nodeSelector: unlessEmpty(props.nodeSelector, (m) => Object.keys(m).length),
    tolerations: props.tolerations ?? TOLERATE_EVERYTHING,
    resources: props.resources ?? DEFAULT_RESOURCES,
    priorityClassName: props.priorityClassName ?? DEFAULT_PRIORITY_CLASS,
    imagePullSecrets: imagePullSecrets(props.imagePullSecrets),
    updateStrategy: props.updateStrategy ?? DEFAULT_UPDATE_STRATEGY,
    runtimeClassName: checked(props.runtimeClassName ?? DEFAULT_RUNTIME_CLASS, 'runtimeClassName', DNS_SUBDOMAIN, 'a DNS subdomain name'),
    handler,
    hostPrefix,
    openshift: openshiftInclusion(target, props.openshift),
    maxConcurrentRestarts: slotCount(props.maxConcurrentRestarts),
    driftCheckSeconds: driftCheckSeconds(props.driftCheckSeconds),
    ...uninstallTimeouts(props.uninstallPodsTimeoutSeconds),
    ...startupTaint(props.startupTaint),
    version: PACKAGE_VERSION,
  };
}
