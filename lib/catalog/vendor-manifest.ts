/**
 * The contract between the installer image's /vendor and the installer: `artifacts.json` names each build (a
 * crun with its engine and the hermetic userland it runs on) with its files and their roles, and which build
 * serves each (target, runtime) pair; `SHA256SUMS` lists every file under /vendor. runtime-artifacts/
 * vendor-manifest.ts writes it, lib/installer/artifacts.ts reads it.
 */

/**
 * What a file is to the host: `crun` (installed as <prefix>/libexec/<runtime>/crun), the dynamic `loader`, a
 * `library` and the `engine` crun dlopen()s (all three installed as <prefix>/lib/<name>), and `data` the engine
 * reads at run time (libnode's built-in JavaScript: lib/nodejs/<path> installed as <prefix>/lib/nodejs/<path>).
 */
export type VendorRole = 'crun' | 'loader' | 'library' | 'engine' | 'data';

export interface VendorFile {
  /** Path under /vendor, as SHA256SUMS lists it. */
  readonly path: string;
  readonly role: VendorRole;
  /** The file holds the placeholder (PT_INTERP, RUNPATH): the installer rewrites it to the chosen prefix. */
  readonly prefixed?: true;
}

export interface VendorBuild {
  /** The catalog runtime this build is (crun-wasmtime, crun-wasmedge). */
  readonly runtime: string;
  /** Component versions, for humans and `status`. */
  readonly versions: Readonly<Record<string, string>>;
  readonly files: readonly VendorFile[];
}

export interface VendorManifest {
  readonly schema: 1;
  /**
   * The default host prefix padded with "/" to the maximum prefix length: the bytes every prefixed file carries,
   * replaced on copy by the chosen prefix padded to the same length (identity for the default).
   */
  readonly placeholder: string;
  readonly builds: Readonly<Record<string, VendorBuild>>;
  /** target → runtime → build name. */
  readonly targets: Readonly<Record<string, Readonly<Record<string, string>>>>;
  /** Debian packages (name=version) the files come from. */
  readonly packages: readonly string[];
}

export const VENDOR_MANIFEST = { schema: 1, file: 'artifacts.json', sums: 'SHA256SUMS' } as const;
