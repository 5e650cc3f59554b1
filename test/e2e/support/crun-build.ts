/**
 * The crun build the end-to-end tests install, and its engine library, staged as the installer image lays
 * out its artifacts: `<dir>/<target artifactDir>/{crun-wasmtime, libwasmtime.so, SHA256SUMS}`.
 *
 * Today that is runtime-artifacts/local/build-crun-wasmtime.sh (crun 1.8.1 with wasmtime, cached). The
 * installer image's own builds (crun >= 1.21, which accepts the runtime-spec 1.3.0 CRI-O 1.36 writes) replace
 * it once they land; until then every test says which crun it ran.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe as describeRun, exec, must, REPO, requireExecutable } from './process';

export interface CrunBuild {
  readonly runtime: 'crun-wasmtime';
  readonly crun: string;
  readonly library: string;
  /** `crun --version`, whole. */
  readonly version: string;
  /** What built it, for the test log. */
  readonly source: string;
}

/** Builds (or reuses the cached) local crun-wasmtime; fails with the build's output when it cannot. */
export function localCrunWasmtime(): CrunBuild {
  const script = join(REPO, 'runtime-artifacts/local/build-crun-wasmtime.sh');
  const build = exec('bash', [script], { cwd: REPO, timeoutMs: 40 * 60_000 });
  if (build.code !== 0) throw new Error(`${script} failed: ${describeRun(build)}`);
  const crun = requireExecutable(join(REPO, '.tools/bin/crun-wasmtime'), 'built by runtime-artifacts/local/build-crun-wasmtime.sh');
  const library = join(REPO, '.tools/lib/libwasmtime.so');
  if (!existsSync(library)) throw new Error(`${library} is missing after ${script}`);
  return { runtime: 'crun-wasmtime', crun, library, version: must(crun, ['--version']).stdout.trim(), source: `runtime-artifacts/local/build-crun-wasmtime.sh: ${build.stdout.trim().split('\n').pop()}` };
}

/** The first line of `crun --version`, e.g. "crun version 1.8.1". */
export function crunRelease(build: CrunBuild): string {
  return build.version.split('\n')[0];
}

/** Lays the build out as the image's artifacts for one target directory and returns the artifacts root. */
export function stageArtifacts(build: CrunBuild, root: string, artifactDir: string): string {
  const dir = join(root, artifactDir);
  mkdirSync(dir, { recursive: true });
  copyFileSync(build.crun, join(dir, build.runtime)); // follows the .tools symlinks
  copyFileSync(build.library, join(dir, 'libwasmtime.so'));
  must('sh', ['-c', `sha256sum ${build.runtime} libwasmtime.so > SHA256SUMS`], { cwd: dir });
  return root;
}
