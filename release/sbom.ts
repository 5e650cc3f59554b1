/**
 * CycloneDX 1.6 documents (JSON) of the released images, made from what the build recorded (see
 * sbom-inputs.ts). Pure: the same inputs give the same bytes (no timestamp; the serial number is derived from
 * the image digest), so releasing the same build twice attaches the same SBOM.
 */
import { createHash } from 'node:crypto';

export interface DebPackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly source: string;
  readonly sourceVersion: string;
  /** sha256 of the .deb, as Debian's signed index gives it. */
  readonly sha256: string;
}

export interface Crate {
  readonly name: string;
  readonly version: string;
  /** Cargo.lock's checksum (sha256 of the .crate). */
  readonly checksum: string;
}

export interface NpmPackage {
  readonly name: string;
  readonly version: string;
  readonly license?: string;
}

export interface Patch {
  readonly file: string;
  readonly text: string;
}

/** A program built here from source (crun, the agent, a WASM module). */
export interface Built {
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** Upstream package URL, when the program is someone else's. */
  readonly purl?: string;
  readonly patches?: readonly Patch[];
}

/** A build-machine package whose output is in the image (a toolchain, a static library linked in). */
export interface Tool {
  readonly name: string;
  readonly version: string;
  /** Linked into what ships (musl, wasi-libc) rather than only running at build time. */
  readonly linkedIn: boolean;
}

export interface ImageSbomInputs {
  /** Short name (`deployer`), the image's tag name and its manifest (or index) digest. */
  readonly name: string;
  readonly reference: string;
  readonly digest: string;
  readonly shippedDebs: readonly DebPackage[];
  /** Debian packages used to build only (headers). */
  readonly buildDebs: readonly DebPackage[];
  readonly crates: readonly Crate[];
  readonly npm: readonly NpmPackage[];
  readonly built: readonly Built[];
  readonly tools: readonly Tool[];
  readonly projectVersion: string;
  /** Debian release the packages come from (`debian-13`) and the machine's own (`debian-12`). */
  readonly shipDistro: string;
  readonly buildDistro: string;
}

type Json = Record<string, unknown>;

function purlVersion(v: string): string {
  return encodeURIComponent(v);
}

function debPurl(d: DebPackage, distro: string): string {
  const upstream = d.source !== d.name ? `&upstream=${encodeURIComponent(d.source)}` : '';
  return `pkg:deb/debian/${d.name}@${purlVersion(d.version)}?arch=${d.architecture}${upstream}&distro=${distro}`;
}

function npmPurl(p: NpmPackage): string {
  const [scope, name] = p.name.startsWith('@') ? p.name.split('/') : [undefined, p.name];
  return `pkg:npm/${scope ? `${encodeURIComponent(scope)}/` : ''}${name}@${purlVersion(p.version)}`;
}

/** RFC 4122 form of a hash (version 5 and variant bits set): a stable serial number for a stable document. */
function uuidOf(text: string): string {
  const h = createHash('sha256').update(text).digest('hex').slice(0, 32).split('');
  h[12] = '5';
  h[16] = ((parseInt(h[16], 16) & 0x3) | 0x8).toString(16);
  const s = h.join('');
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20)}`;
}

function debComponent(d: DebPackage, distro: string, scope: 'required' | 'excluded'): Json {
  const purl = debPurl(d, distro);
  return {
    type: 'library',
    'bom-ref': purl,
    name: d.name,
    version: d.version,
    scope,
    hashes: [{ alg: 'SHA-256', content: d.sha256 }],
    purl,
    properties: [
      { name: 'knawd:debian:source', value: d.source },
      { name: 'knawd:debian:source-version', value: d.sourceVersion },
    ],
  };
}

export function imageSbom(inputs: ImageSbomInputs): Json {
  const imageRef = `pkg:oci/${inputs.name}@${encodeURIComponent(inputs.digest)}`;
  const components: Json[] = [
    ...inputs.built.map((b) => {
      const ref = b.purl ?? `knawd-built:${b.name}@${b.version}`;
      return {
        type: 'application',
        'bom-ref': ref,
        name: b.name,
        version: b.version,
        description: b.description,
        ...(b.purl ? { purl: b.purl } : {}),
        ...(b.patches?.length
          ? {
              pedigree: {
                patches: b.patches.map((p) => ({ type: 'unofficial', diff: { url: p.file, text: { contentType: 'text/x-diff', content: p.text } } })),
                notes: `Built from upstream ${b.name} ${b.version} with this project's patches applied in name order.`,
              },
            }
          : {}),
      };
    }),
    ...inputs.shippedDebs.map((d) => debComponent(d, inputs.shipDistro, 'required')),
    ...inputs.buildDebs.map((d) => debComponent(d, inputs.shipDistro, 'excluded')),
    ...inputs.crates.map((c) => {
      const purl = `pkg:cargo/${c.name}@${purlVersion(c.version)}`;
      return { type: 'library', 'bom-ref': purl, name: c.name, version: c.version, hashes: [{ alg: 'SHA-256', content: c.checksum }], purl };
    }),
    ...inputs.npm.map((p) => {
      const purl = npmPurl(p);
      return { type: 'library', 'bom-ref': purl, name: p.name, version: p.version, ...(p.license ? { licenses: [{ expression: p.license }] } : {}), purl };
    }),
    ...inputs.tools.map((t) => {
      const purl = `pkg:deb/debian/${t.name}@${purlVersion(t.version)}?arch=amd64&distro=${inputs.buildDistro}`;
      return { type: 'application', 'bom-ref': purl, name: t.name, version: t.version, scope: t.linkedIn ? 'required' : 'excluded', purl };
    }),
  ];
  const refs = components.map((c) => String(c['bom-ref']));
  const duplicate = refs.find((r, i) => refs.indexOf(r) !== i);
  if (duplicate) throw new Error(`SBOM of ${inputs.name}: component ${duplicate} listed twice`);
  return {
    $schema: 'http://cyclonedx.org/schema/bom-1.6.schema.json',
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidOf(`${inputs.digest} ${JSON.stringify(components)}`)}`,
    version: 1,
    metadata: {
      tools: { components: [{ type: 'application', name: 'knawd-deployer release', version: inputs.projectVersion }] },
      component: { type: 'container', 'bom-ref': imageRef, name: inputs.name, version: inputs.digest, description: inputs.reference, purl: imageRef },
      licenses: [{ expression: 'Apache-2.0' }],
    },
    components,
    dependencies: [{ ref: imageRef, dependsOn: refs }, ...refs.map((ref) => ({ ref }))],
  };
}
