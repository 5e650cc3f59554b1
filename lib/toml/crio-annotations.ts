/**
 * Which `allowed_annotations` our CRI-O handler must carry so that crun sees the annotations that select its
 * WebAssembly handler (`module.wasm.image/variant`, `run.oci.handler`), per CRI-O release. Pure data and one
 * decision; facts from CRI-O's source:
 *
 * - Each entry is checked against the release's list of known annotations (`AllAllowedAnnotations`,
 *   pkg/annotations) by exact string (`validateAllowedAndGenerateDisallowedAnnotations`, pkg/config/config.go;
 *   read at 1.29-dev commit 1530af13, v1.34.0 and v1.36.3): an entry it does not know makes the handler
 *   invalid ("invalid allowed_annotation"), and an invalid non-default handler is dropped with only a warning
 *   (`ValidateRuntimes`, since 1.21: cri-o/cri-o#4631). Some known entries are prefixes (`run.oci.`,
 *   `org.systemd.property.`) and let through every annotation starting with them; `run.oci.handler` itself is
 *   not a known entry.
 * - Before 1.32.0 (cri-o/cri-o#8628, also cherry-picked to 1.31) a known entry listed twice (in the handler, or
 *   in the handler and a matching workload) fails that check too: the first sighting deletes it from the map.
 * - Every annotation a pod carries is let through unless it starts with a known entry the handler did not
 *   allow (`FilterDisallowedAnnotations`, pkg/config/workloads.go).
 * - crun's keys joined the known list with the fix for CVE-2024-3154 (cri-o/cri-o#8085-#8090, 2024-04-29):
 *   from then on they are filtered out unless allowed, and before it they were passed through unfiltered but
 *   could not be listed. Releases with the fix: 1.27.6, 1.28.6, 1.29.4 and every later patch of those lines,
 *   1.30.0 and later. 1.25 and 1.26 got it only on their release branches after their last upstream tags
 *   (#8090, #8089), so builds of the same version number differ; 1.24 did not get it.
 *
 * So no single list works for every release: the fixed ones need exactly {@link CRUN_WASM_ANNOTATIONS}, the
 * others drop the handler if it is there. Where the version cannot decide, the handler gets no list: every
 * release accepts that, and on a release with the fix the WASM annotations are then filtered out (the pod runs
 * its .wasm as an ELF: "exec format error"), which the decision reports.
 */

/** The known entries that let crun's WASM selection through: the variant key, and the prefix of `run.oci.handler`. */
export const CRUN_WASM_ANNOTATIONS: readonly string[] = ['module.wasm.image/variant', 'run.oci.'];

export interface CrioVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  /** A pre-release of major.minor.patch (`1.30.0-dev`, `-rc.1`); a packaging release (`-4.rhaos4.12.git…`) is not. */
  readonly prerelease: boolean;
  /** The version as found, for messages. */
  readonly text: string;
}

/**
 * The CRI-O version in `status.nodeInfo.containerRuntimeVersion` (`cri-o://1.36.3`) or in the output of
 * `crio --version` (`crio version 1.36.3`; before 1.30 also a `Version:` line). Undefined for anything else,
 * e.g. a containerd node.
 */
export function parseCrioVersion(text: string | undefined): CrioVersion | undefined {
  if (text === undefined) return undefined;
  const match = /(?:^cri-o:\/\/|^crio version |^Version:\s+)v?(\d+)\.(\d+)\.(\d+)([-+~][0-9A-Za-z.+~_-]*)?/m.exec(text.trim());
  if (!match) return undefined;
  const [, major, minor, patch, suffix = ''] = match;
  return {
    major: Number(major),
    minor: Number(minor),
    patch: Number(patch),
    // RPM-style releases start with a digit after the dash (OpenShift: 1.25.4-4.rhaos4.12.gitb9319a2.el8).
    prerelease: /^-[A-Za-z]/.test(suffix),
    text: `${major}.${minor}.${patch}${suffix}`,
  };
}

/** First patch of each minor line that carries the CVE-2024-3154 fix; lines from 1.30 on have it from .0. */
const FIXED_FROM_PATCH: Readonly<Record<string, number>> = { '1.27': 6, '1.28': 6, '1.29': 4 };
/** Lines whose fix exists only in release-branch builds that share version numbers with unfixed ones. */
const FIXED_ON_BRANCH_ONLY = ['1.25', '1.26'];
const FIRST_LINE_FIXED_FROM_ZERO = { major: 1, minor: 30 };

export type WasmAnnotationFilter = 'filters' | 'passes' | 'unknown';

export interface CrioAnnotationDecision {
  /** What the handler's `allowed_annotations` must be; undefined: leave the key out. */
  readonly allowedAnnotations: readonly string[] | undefined;
  /** Whether this CRI-O filters crun's WASM annotations unless allowed ('unknown': cannot tell from the version). */
  readonly filter: WasmAnnotationFilter;
  /** One line for the log: the version, where it came from, and what follows from it. */
  readonly note: string;
  /** Set when WASM pods may not work with what is written: what to check. */
  readonly warning?: string;
}

/** Whether a release filters crun's annotations (has the CVE-2024-3154 fix), from its version alone. */
export function wasmAnnotationFilter(version: CrioVersion): WasmAnnotationFilter {
  const { major, minor, patch, prerelease } = version;
  const line = `${major}.${minor}`;
  const first = FIRST_LINE_FIXED_FROM_ZERO;
  if (major > first.major || (major === first.major && minor > first.minor)) return 'filters';
  if (major === first.major && minor === first.minor) return prerelease && patch === 0 ? 'unknown' : 'filters';
  if (FIXED_ON_BRANCH_ONLY.includes(line)) return 'unknown';
  const from = FIXED_FROM_PATCH[line];
  if (from === undefined) return 'passes';
  if (patch > from) return 'filters';
  if (patch === from) return prerelease ? 'unknown' : 'filters';
  return 'passes';
}

/**
 * The `allowed_annotations` for our handler on a node whose CRI-O version is `version` (as reported by
 * `source`, e.g. "the node object"), or undefined when neither the node nor the host said.
 */
export function crioAnnotationDecision(version: CrioVersion | undefined, source: string): CrioAnnotationDecision {
  const list = `allowed_annotations = [${CRUN_WASM_ANNOTATIONS.map((a) => JSON.stringify(a)).join(', ')}]`;
  if (version === undefined) {
    return {
      allowedAnnotations: undefined,
      filter: 'unknown',
      note: 'CRI-O version unknown: the handler gets no allowed_annotations, the form every CRI-O accepts',
      warning:
        'the CRI-O version is unknown (no node object, no `crio --version` on the host); CRI-O 1.27.6+, 1.28.6+, 1.29.4+ and 1.30+ ' +
        `filter crun's WASM annotations unless the handler has ${list}: WASM pods there fail with "exec format error". ` +
        'Run install where the node object or the host crio binary can be read',
    };
  }
  const filter = wasmAnnotationFilter(version);
  const about = `CRI-O ${version.text} (${source})`;
  switch (filter) {
    case 'filters':
      return {
        allowedAnnotations: CRUN_WASM_ANNOTATIONS,
        filter,
        note: `${about} filters annotations the handler does not allow: writing ${list}`,
      };
    case 'passes':
      return {
        allowedAnnotations: undefined,
        filter,
        note: `${about} passes crun's WASM annotations through and would drop a handler that lists them: no allowed_annotations`,
      };
    case 'unknown':
      return {
        allowedAnnotations: undefined,
        filter,
        note: `${about}: whether this build has the CVE-2024-3154 fix cannot be told from its version; no allowed_annotations, the form every CRI-O accepts`,
        warning:
          `${about} may be a build with the CVE-2024-3154 fix, which filters crun's WASM annotations unless the handler has ${list}; ` +
          'if WASM pods fail with "exec format error", the node\'s CRI-O needs that list (and drops the handler with it when it lacks the fix)',
      };
  }
}
