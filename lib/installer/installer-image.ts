/** The node's architecture by the name an OCI index gives it. */

/** Node.js's `process.arch` names where the OCI image spec (and `kubernetes.io/arch`) differs. */
const OCI_NAMES: Readonly<Record<string, string>> = { x64: 'amd64', ia32: '386', ppc64: 'ppc64le' };

/**
 * The OCI architecture of this process, which is the node's: an index gives each node the manifest of its own
 * architecture. Node.js runs on ppc64 little-endian only, so its `ppc64` is OCI's `ppc64le`.
 */
export function ociArchitecture(nodeArch: string = process.arch): string {
  return OCI_NAMES[nodeArch] ?? nodeArch;
}
