/**
 * `status`: what the state says is installed, checked against the files on the node and, when the artifacts
 * are at hand, against the artifacts of this image.
 *
 * status is the thorough check: every recorded file is re-hashed in full (streamed through a fixed buffer),
 * always. The stat fingerprints in the state, which let `install` and `plan` skip re-hashing unchanged
 * binaries, are deliberately ignored here, so a file modified with its size kept and its mtime set back is
 * still reported as drifted.
 *
 * Exit status: 0 installed and consistent (a pending restart is reported but still 0), 1 not installed,
 * 3 drifted (a file changed or missing, an interrupted run, or installed files that differ from the
 * artifacts).
 */
import { AUTO_TARGET, findTarget } from '../../catalog';
import { loadArtifacts } from '../artifacts';
import { CompileCacheReport, readCompileCache } from '../host/compile-cache';
import { HostFs } from '../host/fs';
import { installedPath } from '../plan/plan';
import { Settings } from '../settings';
import { loadState } from '../plan/host-view';
import { messageOf } from '../errors';
import { ociArchitecture } from '../installer-image';
import { nodeRefusal } from '../node-support';

export interface StatusReport {
  readonly state: 'installed' | 'not-installed' | 'drifted';
  readonly exitCode: 0 | 1 | 3;
  readonly target?: string;
  readonly runtime?: string;
  readonly handler?: string;
  readonly phase?: string;
  readonly restartPending: boolean;
  /** Problems found, one line each. */
  readonly drift: readonly string[];
  /** Whether the installed binary and library equal this image's artifacts; undefined when not checked. */
  readonly artifactsMatch?: boolean;
  /** The node's compile cache of WebAssembly modules: size and counters (hits...); absent until a module started. */
  readonly compileCache?: CompileCacheReport;
  /** Why this image installs nothing on this node (no build for its architecture or for --runtime); absent when it can. */
  readonly refused?: string;
}

export function status(settings: Settings, fs: HostFs, architecture: string = ociArchitecture()): StatusReport {
  const refusal = nodeRefusal(settings.artifacts, settings.runtime, architecture);
  const refused = refusal ? { refused: messageOf(refusal) } : {};
  const state = loadState(fs, settings.prefix);
  if (!state) return { state: 'not-installed', exitCode: 1, restartPending: false, drift: [], ...refused };
  const drift: string[] = [];
  if (state.phase !== 'installed') drift.push(`the last ${state.phase === 'removing' ? 'remove' : 'install'} did not finish: run it again`);
  for (const file of state.files) {
    // Never file.stat: a matching fingerprint is not proof, a full hash is.
    const current = fs.digest(file.path);
    if (current === undefined) drift.push(`${file.path} is missing`);
    else if (current.sha256 !== file.sha256) drift.push(`${file.path} differs from what was installed`);
  }
  let artifactsMatch: boolean | undefined;
  // With auto, the target is the one install chose for this node.
  const target = settings.target === AUTO_TARGET ? findTarget(state.target) : settings.target;
  if (target && settings.runtime) {
    if (settings.runtime.name !== state.runtime || target.name !== state.target) {
      artifactsMatch = false;
      drift.push(`installed ${state.runtime} for ${state.target}, not ${settings.runtime.name} for ${target.name}`);
    } else {
      try {
        const artifacts = loadArtifacts(settings.artifacts, target, settings.runtime, state.prefix);
        const runtime = settings.runtime;
        // A copy whose prefix was rewritten records the artifact it came from; any other copy is the artifact.
        const copiedFrom = (p: string) => {
          const record = state.files.find((f) => f.path === p);
          return record && (record.source ?? record.sha256);
        };
        const differ = artifacts.files.filter((a) => copiedFrom(installedPath(state.prefix, runtime, a)) !== a.sha256);
        artifactsMatch = differ.length === 0;
        if (!artifactsMatch) drift.push(`${differ.map((a) => installedPath(state.prefix, runtime, a)).join(', ')} differ(s) from this image's artifacts: run install to update`);
      } catch (error) {
        drift.push(`artifacts not checked: ${messageOf(error)}`);
        artifactsMatch = undefined;
      }
    }
  }
  const real = drift.filter((d) => !d.startsWith('artifacts not checked'));
  return {
    state: real.length ? 'drifted' : 'installed',
    exitCode: real.length ? 3 : 0,
    target: state.target,
    runtime: state.runtime,
    handler: state.handler,
    phase: state.phase,
    restartPending: state.restartPending,
    drift,
    artifactsMatch,
    compileCache: readCompileCache(fs, state.prefix),
    ...refused,
  };
}
