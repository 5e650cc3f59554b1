/**
 * The registry side of a release, through the ecosystem's own clients: skopeo (images, manifests), helm (the
 * chart) and cosign (SBOM attachments, signatures). Each step first looks at what the registry already holds and
 * writes nothing when it is already there, so a second release of the same build changes nothing. A failure is
 * a ReleaseError whose message is one line.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

export class ReleaseError extends Error {}

export interface Connection {
  readonly registry: string;
  readonly plainHttp: boolean;
  readonly caFile?: string;
}

export interface Tools {
  readonly skopeo: string;
  readonly helm: string;
  readonly cosign: string;
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The environment of every client: the CA (Go reads SSL_CERT_FILE), the key's password. */
function clientEnv(conn: Connection): NodeJS.ProcessEnv {
  return { ...process.env, ...(conn.caFile ? { SSL_CERT_FILE: conn.caFile } : {}), COSIGN_PASSWORD: process.env.COSIGN_PASSWORD ?? '' };
}

function run(conn: Connection, command: string, args: readonly string[], input?: string): Run {
  const r = spawnSync(command, args, { encoding: 'utf8', env: clientEnv(conn), input, maxBuffer: 64 << 20, timeout: 30 * 60_000 });
  return { code: r.error ? null : r.status, stdout: r.stdout ?? '', stderr: `${r.stderr ?? ''}${r.error ? r.error.message : ''}` };
}

/** The last meaningful line a client printed: what went wrong, in its words. */
export function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !/^(WARNING|Note:)/i.test(l));
  const last = lines.pop() ?? 'no output';
  // skopeo logs through logrus: `time=… level=fatal msg="…"`; the message is what matters.
  const logrus = /\blevel=\w+ msg="((?:[^"\\]|\\.)*)"/.exec(last);
  return (logrus ? logrus[1].replace(/\\n/g, ' ').replace(/\\"/g, '"') : last).replace(/\s+/g, ' ').trim().slice(0, 400);
}

function must(conn: Connection, what: string, command: string, args: readonly string[]): string {
  const r = run(conn, command, args);
  if (r.code !== 0) throw new ReleaseError(`${what} failed: ${lastLine(r.stderr || r.stdout)}`);
  return r.stdout;
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Answers /v2/ (200 or 401: a registry); anything else is one line saying what happened. */
export function checkReachable(conn: Connection, timeoutMs = 10_000): Promise<void> {
  const host = conn.registry.split('/')[0];
  const url = `${conn.plainHttp ? 'http' : 'https'}://${host}/v2/`;
  return new Promise((resolve, reject) => {
    const options = conn.caFile ? { ca: readFileSync(conn.caFile), timeout: timeoutMs } : { timeout: timeoutMs };
    const request = (conn.plainHttp ? http : https).get(url, options, (res) => {
      res.resume();
      if (res.statusCode === 200 || res.statusCode === 401) resolve();
      else reject(new ReleaseError(`${url} answered HTTP ${res.statusCode}: not a registry (distribution API v2)`));
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    request.on('error', (e) => reject(new ReleaseError(`cannot reach the registry at ${url}: ${e.message}`)));
  });
}

function skopeoTls(conn: Connection, flag: 'src' | 'dest' | 'plain'): string[] {
  if (!conn.plainHttp) return [];
  return [flag === 'plain' ? '--tls-verify=false' : `--${flag}-tls-verify=false`];
}

/** The raw manifest under `ref` (tag or digest), or undefined when the registry has none. */
export function rawManifest(conn: Connection, tools: Tools, ref: string): string | undefined {
  const r = run(conn, tools.skopeo, ['inspect', '--raw', ...skopeoTls(conn, 'plain'), `docker://${ref}`]);
  if (r.code === 0) return r.stdout;
  if (/manifest unknown|not found|name unknown/i.test(r.stderr)) return undefined;
  throw new ReleaseError(`reading ${ref} from the registry failed: ${lastLine(r.stderr)}`);
}

/** The one manifest (or index) digest an OCI archive's index.json names. */
export function archiveDigest(archive: string): string {
  const r = spawnSync('tar', ['-xOf', archive, 'index.json'], { encoding: 'utf8' });
  if (r.status !== 0) throw new ReleaseError(`${archive}: cannot read index.json (${lastLine(r.stderr)}): run npm run image`);
  const index = JSON.parse(r.stdout) as { manifests: Array<{ digest: string }> };
  if (index.manifests.length !== 1) throw new ReleaseError(`${archive}: index.json names ${index.manifests.length} manifests, expected one (an image or an index)`);
  return index.manifests[0].digest;
}

/**
 * Pushes the OCI archive to `ref` (repository:tag) with every manifest of an index (skopeo copy --all), keeping
 * the digest; nothing is written when the tag already points at it. Returns whether it pushed.
 */
export function pushImage(conn: Connection, tools: Tools, archive: string, ref: string, digest: string): boolean {
  const existing = rawManifest(conn, tools, ref);
  if (existing !== undefined && sha256(existing) === digest) return false;
  must(conn, `pushing ${ref}`, tools.skopeo, ['copy', '--all', '--preserve-digests', '--quiet', ...skopeoTls(conn, 'dest'), `oci-archive:${archive}`, `docker://${ref}`]);
  const pushed = rawManifest(conn, tools, ref);
  if (pushed === undefined || sha256(pushed) !== digest) throw new ReleaseError(`${ref} does not hold ${digest} after the push`);
  return true;
}

function cosignRegistryFlags(conn: Connection): string[] {
  return conn.plainHttp ? ['--allow-http-registry', '--allow-insecure-registry'] : [];
}

/** cosign's tag for an attachment of the image `digest` (`sha256-<hex>.sbom`). */
export function attachmentTag(digest: string, kind: 'sbom' | 'sig'): string {
  return `${digest.replace(':', '-')}.${kind}`;
}

/** Attaches `sbomFile` (CycloneDX JSON) to `repository@digest` the way cosign does, unless the same SBOM is there. */
export function attachSbom(conn: Connection, tools: Tools, repository: string, digest: string, sbomFile: string): boolean {
  const existing = rawManifest(conn, tools, `${repository}:${attachmentTag(digest, 'sbom')}`);
  const want = sha256(readFileSync(sbomFile));
  if (existing !== undefined && (JSON.parse(existing) as { layers?: Array<{ digest: string }> }).layers?.some((l) => l.digest === want)) return false;
  must(conn, `attaching the SBOM to ${repository}@${digest}`, tools.cosign, [
    'attach', 'sbom', '--sbom', sbomFile, '--type', 'cyclonedx', '--input-format', 'json', ...cosignRegistryFlags(conn), `${repository}@${digest}`,
  ]);
  return true;
}

/** The public key of a cosign private key (COSIGN_PASSWORD unlocks it). */
export function publicKey(conn: Connection, tools: Tools, keyFile: string): string {
  const r = run(conn, tools.cosign, ['public-key', '--key', keyFile]);
  if (r.code !== 0 || !r.stdout.includes('BEGIN PUBLIC KEY')) {
    throw new ReleaseError(`--sign-key ${keyFile} is not a cosign private key that COSIGN_PASSWORD unlocks: ${lastLine(r.stderr || r.stdout)}`);
  }
  return r.stdout;
}

/** Artifact Hub's fingerprint of a PEM public key: sha256 of its DER, upper-case hex. */
export function keyFingerprint(pem: string): string {
  const der = Buffer.from(pem.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64');
  return createHash('sha256').update(der).digest('hex').toUpperCase();
}

/** `cosign verify --key` of `repository@digest` (or of its SBOM attachment): whether it verifies, and why not. */
export function verify(conn: Connection, tools: Tools, publicKeyFile: string, reference: string, attachment?: 'sbom'): Run {
  return run(conn, tools.cosign, [
    'verify', '--key', publicKeyFile, '--insecure-ignore-tlog=true', ...(attachment ? ['--attachment', attachment] : []), ...cosignRegistryFlags(conn), reference,
  ]);
}

/** Signs `reference` (by digest) with the key, without the public transparency log; skipped when it already verifies. */
export function sign(conn: Connection, tools: Tools, keyFile: string, publicKeyFile: string, reference: string, attachment?: 'sbom'): boolean {
  if (verify(conn, tools, publicKeyFile, reference, attachment).code === 0) return false;
  must(conn, `signing ${attachment ? `the ${attachment} of ` : ''}${reference}`, tools.cosign, [
    'sign', '--key', keyFile, '--tlog-upload=false', '--yes', ...(attachment ? ['--attachment', attachment] : []), ...cosignRegistryFlags(conn), reference,
  ]);
  return true;
}

/**
 * Pushes the chart archive to oci://<registry> (helm push), unless the chart's tag already holds these bytes;
 * returns the chart manifest's digest and whether it pushed.
 */
export function pushChart(conn: Connection, tools: Tools, archive: string, name: string, version: string): { digest: string; pushed: boolean } {
  const ref = `${conn.registry}/${name}:${version}`;
  const want = sha256(readFileSync(archive));
  const existing = rawManifest(conn, tools, ref);
  if (existing !== undefined && (JSON.parse(existing) as { layers?: Array<{ digest: string }> }).layers?.some((l) => l.digest === want)) {
    return { digest: sha256(existing), pushed: false };
  }
  const tls = conn.plainHttp ? ['--plain-http'] : conn.caFile ? ['--ca-file', conn.caFile] : [];
  const out = must(conn, `helm push of the chart to oci://${conn.registry}`, tools.helm, ['push', archive, `oci://${conn.registry}`, ...tls]);
  const pushed = rawManifest(conn, tools, ref);
  if (pushed === undefined) throw new ReleaseError(`${ref} is missing after helm push (${lastLine(out)})`);
  return { digest: sha256(pushed), pushed: true };
}
