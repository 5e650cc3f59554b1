/**
 * The installer image the node tests import. This is the one place that says which image that is: today a
 * STAND-IN built here, until `npm run image` (issue 12, test/support/image.ts) builds the real one; switching
 * is replacing {@link installerImage}'s body with a call to that builder.
 *
 * The stand-in has the real image's layout (lib/installer/artifacts.ts, lib/catalog/node-contract.ts): the
 * installer bundle at /usr/local/lib/knawd-installer.js run by `node`, nsenter (the installer runs
 * `nsenter -t 1 -m -- systemctl …`), and /vendor/containerd/{crun-wasmtime,libwasmtime.so,SHA256SUMS} from
 * runtime-artifacts/local/build-crun-wasmtime.sh. It differs from the real image in where its userland comes
 * from: this machine's own node and nsenter with the shared libraries they load (ldd), not Debian's nodejs
 * package, and it is assembled by the tests' OCI layout writer (test/e2e/support/oci-image.ts), not a Debian
 * image builder. Tests that run on it say so ({@link InstallerImage.standIn}).
 */
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_ARTIFACTS_DIR, INSTALLER_ENTRYPOINT } from '../../../lib/catalog/node-contract';
import { buildOciImage, ImageFile } from '../../e2e/support/oci-image';
import { must, REPO, requireExecutable } from '../../e2e/support/process';
import { bundleInstaller } from '../tools';

/** Whether {@link installerImage} builds the stand-in; false once it returns the image of `npm run image`. */
export const INSTALLER_IMAGE_IS_STAND_IN = true;

/**
 * What the stand-in's crun (Debian's 1.8.1 with the wasmtime handler) cannot do: it accepts only runtime-spec
 * 1.0.x (crun 1.8.1 src/libcrun/container.c: `strstr (def->oci_version, "1.0") == NULL` → "unknown version
 * specified"), and containerd 2.x writes runtime-spec 1.2: no pod with its handler starts under containerd 2.
 * The real image ships crun >= 1.21 (issue 12).
 */
export const STAND_IN_CRUN_REFUSES = 'unknown version specified';

export interface InstallerImage {
  /** Image reference, as `image.repository:tag` of the chart. */
  readonly repository: string;
  readonly tag: string;
  /** OCI archive for `ctr images import`. */
  readonly archive: string;
  /** True while this is the stand-in, not the image `npm run image` builds. */
  readonly standIn: boolean;
  /** One line for test output. */
  readonly description: string;
  /** Machine directories the image's binaries could load from outside the node (to mask inside it). */
  readonly hostOnlyDirs: readonly string[];
}

/** The shared libraries `binary` loads, as absolute paths (the loader included). */
function sharedLibraries(binary: string): string[] {
  return must('ldd', [binary])
    .stdout.split('\n')
    .map((l) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(l)?.[1])
    .filter((p): p is string => p !== undefined);
}

/** Builds the stand-in installer image under `workDir` (which must exist). */
export function installerImage(workDir: string): InstallerImage {
  const crun = fs.realpathSync(requireExecutable(path.join(REPO, '.tools/bin/crun-wasmtime'), 'built by `npm run tools` (runtime-artifacts/local/build-crun-wasmtime.sh)'));
  const library = fs.realpathSync(path.join(REPO, '.tools/lib/libwasmtime.so'));
  const node = fs.realpathSync(requireExecutable('/usr/bin/node', 'the machine\'s Node.js'));
  const nsenter = requireExecutable('/usr/bin/nsenter', "Debian's util-linux");
  const bundle = bundleInstaller(path.join(workDir, 'knawd-installer.js'));

  const vendor = path.posix.join(DEFAULT_ARTIFACTS_DIR, 'containerd');
  const sums = [crun, library].map((f, i) => `${createHash('sha256').update(fs.readFileSync(f)).digest('hex')}  ${['crun-wasmtime', 'libwasmtime.so'][i]}`).join('\n') + '\n';
  const libs = [...new Set([...sharedLibraries(node), ...sharedLibraries(nsenter)])];
  const files: ImageFile[] = [
    { path: '/usr/bin/node', from: node },
    { path: '/usr/bin/nsenter', from: nsenter },
    ...libs.map((l) => ({ path: l, from: l })),
    { path: INSTALLER_ENTRYPOINT[1], from: bundle, mode: 0o644 },
    { path: `${vendor}/crun-wasmtime`, from: crun },
    { path: `${vendor}/libwasmtime.so`, from: library, mode: 0o644 },
    { path: `${vendor}/SHA256SUMS`, content: sums, mode: 0o644 },
  ];
  const repository = 'knawd.test/node/installer-stand-in';
  const tag = 'v0';
  const built = buildOciImage({ name: `${repository}:${tag}`, files, entrypoint: [...INSTALLER_ENTRYPOINT] }, workDir);
  return {
    repository,
    tag,
    archive: built.archive,
    standIn: INSTALLER_IMAGE_IS_STAND_IN,
    description: `STAND-IN installer image ${repository}:${tag} (this machine's node + the installer bundle + crun-wasmtime from build-crun-wasmtime.sh), not the image \`npm run image\` builds`,
    hostOnlyDirs: [path.dirname(library)],
  };
}
