import { RUNTIMES, RUNTIME_NAMES, RuntimeSpec } from './runtimes';
import { TARGETS, TARGET_NAMES, TargetSpec } from './targets';

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
  if (runtime.notShipped !== undefined) throw new InvalidVariantError(runtime.notShipped);
  if (!shipped.includes(runtime)) {
    const valid = shipped.map((r) => r.name);
    throw new InvalidVariantError(
      `ociType "${runtime.name}" is not available for target "${target.name}"; valid ociTypes for ${target.name}: ${valid.join(', ')}`,
    );
  }
  return { target, runtime };
}

/** Every shipped (target, runtime) pair, in catalog order. */
export function allVariants(): Variant[] {
  return TARGETS.flatMap((target) => runtimesFor(target).map((runtime) => ({ target, runtime })));
}
