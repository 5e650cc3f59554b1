/**
 * The command line of `npm run release`, checked before anything is built or pushed: a bad argument is one
 * line saying what was wrong and what is accepted.
 */
import { existsSync, statSync } from 'node:fs';

export interface ReleaseArgs {
  /** Where everything goes: `host[:port][/path]`, no scheme, no tag. */
  readonly registry: string;
  /** Speak plain HTTP to the registry (a registry without TLS). */
  readonly plainHttp: boolean;
  /** A cosign private key: images, SBOMs and the chart are signed with it. */
  readonly signKey?: string;
  /** A PEM file of the CA that signed the registry's certificate (when the machine does not trust it already). */
  readonly caFile?: string;
  /** Where users fetch the public key (Artifact Hub's signKey url). */
  readonly signKeyUrl?: string;
  /** Where the release record (references and digests pushed) is written. */
  readonly record?: string;
}

export class UsageError extends Error {}

export const USAGE =
  'usage: npm run release -- --registry <host[:port][/path]> [--plain-http] [--ca-file <pem>] [--sign-key <cosign.key> [--sign-key-url <url>]] [--record <file>]';

// Docker's reference grammar (distribution/reference): a domain of dot-separated labels or an IPv4 address, an
// optional port, then lowercase path components.
const HOST = /^(?:localhost|(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*)(?::([0-9]{1,5}))?$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** Why `registry` is not a registry reference, or undefined when it is one. */
export function registryProblem(registry: string): string | undefined {
  if (/^[a-z]+:\/\//i.test(registry)) return `'${registry}' has a scheme: give host[:port]/path (--plain-http for http)`;
  const [host, ...path] = registry.split('/');
  const hostMatch = HOST.exec(host);
  if (!host || !hostMatch) return `'${registry}' does not start with a host[:port] (e.g. registry.example.com or 127.0.0.1:5000)`;
  if (hostMatch[1] !== undefined && (Number(hostMatch[1]) < 1 || Number(hostMatch[1]) > 65535)) return `'${registry}': port ${hostMatch[1]} is not 1-65535`;
  const bad = path.find((c) => !COMPONENT.test(c));
  if (bad !== undefined) return `'${registry}': path component '${bad}' is not lowercase letters, digits and single separators (. _ __ -), and no tag or digest`;
  return undefined;
}

export function parseArgs(argv: readonly string[]): ReleaseArgs {
  let registry: string | undefined;
  let plainHttp = false;
  let signKey: string | undefined;
  let caFile: string | undefined;
  let signKeyUrl: string | undefined;
  let record: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${arg} needs a value; ${USAGE}`);
      return v;
    };
    if (arg === '--registry') registry = value();
    else if (arg === '--plain-http') plainHttp = true;
    else if (arg === '--sign-key') signKey = value();
    else if (arg === '--ca-file') caFile = value();
    else if (arg === '--sign-key-url') signKeyUrl = value();
    else if (arg === '--record') record = value();
    else throw new UsageError(`unknown argument '${arg}'; ${USAGE}`);
  }
  if (registry === undefined) throw new UsageError(`--registry is required; ${USAGE}`);
  const problem = registryProblem(registry);
  if (problem) throw new UsageError(`--registry ${problem}`);
  for (const [flag, file] of [['--sign-key', signKey], ['--ca-file', caFile]] as const) {
    if (file !== undefined && !(existsSync(file) && statSync(file).isFile())) throw new UsageError(`${flag} ${file}: no such file`);
  }
  if (plainHttp && caFile) throw new UsageError('--plain-http and --ca-file exclude each other: a CA is for TLS');
  if (signKeyUrl !== undefined && !signKey) throw new UsageError('--sign-key-url needs --sign-key');
  if (signKeyUrl !== undefined && !/^https?:\/\/\S+$/.test(signKeyUrl)) throw new UsageError(`--sign-key-url '${signKeyUrl}' is not an http(s) URL`);
  return { registry, plainHttp, signKey, caFile, signKeyUrl, record };
}
