import { RUNTIMES, RUNTIME_NAMES, RuntimeSpec } from './runtimes';
import { TARGETS, TARGET_NAMES, TargetName, TargetSpec } from './targets';

/** The target that is no target: the installer decides per node which catalog target it is (runtime/detect-target.ts). */
export const AUTO_TARGET = 'auto';

/** What `target` accepts wherever it is set: a catalog target, or {@link AUTO_TARGET}. */
export type TargetChoice = TargetName | typeof AUTO_TARGET;

export const TARGET_CHOICES: readonly TargetChoice[] = [AUTO_TARGET, ...TARGET_NAMES];

/**
 * The targets `auto` chooses from, most specific first: a distribution that keeps its own runtime config
 * (microk8s, k3s, rke2), OpenShift before any CRI-O, and the plain CRIs last. The ubuntu_* targets are the plain
 * containerd layout named for an OS, rhel8_plugins is rhel8 with a build choice: `auto` names the layout.
 */
export const AUTO_CANDIDATES: readonly TargetName[] = ['microk8s', 'k3s', 'rke2', 'rhel8', 'crio', 'containerd'];

/** A target and a runtime that are shipped together. */
export interface Variant {
  readonly target: TargetSpec;
  readonly runtime: RuntimeSpec;
}

/** Raised for an unknown target or runtime, or a pair that is not shipped; the message names the valid choices. */
export class InvalidVariantError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidVariantError';
  }
}

export function findTarget(name: string): TargetSpec {
  const target = TARGETS.find((t) => t.name === name);
  if (!target) {
    throw new InvalidVariantError(`unknown target "${name}"; valid targets: ${TARGET_NAMES.join(', ')}`);
  }
  return target;
}

export function findRuntime(name: string): RuntimeSpec {
  const runtime = RUNTIMES.find((r) => r.name === name);
  if (!runtime) {
    throw new InvalidVariantError(`unknown ociType "${name}"; valid ociTypes: ${RUNTIME_NAMES.join(', ')}`);
  }
  return runtime;
}

/** The runtimes shipped for `target`, in catalog order. */
export function runtimesFor(target: TargetSpec): RuntimeSpec[] {
  return RUNTIMES.filter((r) => r.targets.some((t) => t === target.name));
}

/** Resolves a (target, ociType) pair, refusing pairs that are not shipped. */
export function resolveVariant(targetName: string, runtimeName: string): Variant {
  const target = findTarget(targetName);
  const runtime = findRuntime(runtimeName);
  const shipped = runtimesFor(target);
  if (!shipped.includes(runtime)) {
    const valid = shipped.map((r) => r.name);
    throw new InvalidVariantError(
      `ociType "${runtime.name}" is not available for target "${target.name}"; valid ociTypes for ${target.name}: ${valid.join(', ')}`,
    );
  }
  return { target, runtime };
}

/**
 * The runtimes `auto` accepts: those shipped for every target it may choose, so that whichever a node turns out
 * to be, the image has the build.
 */
export function runtimesForAuto(): RuntimeSpec[] {
  const candidates = AUTO_CANDIDATES.map(findTarget);
  return RUNTIMES.filter((r) => candidates.every((t) => runtimesFor(t).includes(r)));
}

/** Resolves a target choice: `auto` with a runtime every candidate ships, or a shipped (target, runtime) pair. */
export function resolveChoice(targetName: string, runtimeName: string): { target: TargetSpec | typeof AUTO_TARGET; runtime: RuntimeSpec } {
  if (findTargetChoice(targetName) !== AUTO_TARGET) return resolveVariant(targetName, runtimeName);
  const runtime = findRuntime(runtimeName);
  const shipped = runtimesForAuto();
  if (!shipped.includes(runtime)) {
    throw new InvalidVariantError(`ociType "${runtime.name}" is not available for target auto (not every node kind ships it); valid ociTypes for auto: ${shipped.map((r) => r.name).join(', ')}`);
  }
  return { target: AUTO_TARGET, runtime };
}

/** A catalog target, or {@link AUTO_TARGET}; anything else is refused with the valid choices. */
export function findTargetChoice(name: string): TargetSpec | typeof AUTO_TARGET {
  if (name === AUTO_TARGET) return AUTO_TARGET;
  if (!TARGETS.some((t) => t.name === name)) throw new InvalidVariantError(`unknown target "${name}"; valid targets: ${TARGET_CHOICES.join(', ')}`);
  return findTarget(name);
}

/** Every shipped (target, runtime) pair, in catalog order. */
export function allVariants(): Variant[] {
  return TARGETS.flatMap((target) => runtimesFor(target).map((runtime) => ({ target, runtime })));
}
