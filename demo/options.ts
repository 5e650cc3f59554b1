/**
 * `npm run demo` arguments: `[--keep] [--knative] [--runtime <ociType>] [--port <n>]`, or `down`. Bad input is one line
 * saying what was wrong and what is accepted.
 */
import { RUNTIMES, RuntimeName } from '../lib/catalog/runtimes';

/** The loopback port the API server is forwarded to (`--port`). */
export const DEFAULT_PORT = 16443;

export type DemoCommand = { readonly command: 'run'; readonly keep: boolean; readonly knative: boolean; readonly runtime: RuntimeName; readonly port: number } | { readonly command: 'down' };

export const USAGE = 'usage: npm run demo [-- [--keep] [--knative] [--runtime <ociType>] [--port <n>]] | npm run demo -- down';

/** The engines the image ships, in the catalog's order. */
export const SHIPPED: readonly RuntimeName[] = RUNTIMES.filter((r) => r.targets.length > 0).map((r) => r.name);

export class BadInput extends Error {}

export function parseArgs(argv: readonly string[]): DemoCommand {
  if (argv.length === 1 && argv[0] === 'down') return { command: 'down' };
  let keep = false;
  let knative = false;
  let runtime: RuntimeName = 'crun-wasmedge';
  let port = DEFAULT_PORT;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new BadInput(`${a} needs a value; ${USAGE}`);
      return v;
    };
    if (a === '--keep') keep = true;
    else if (a === '--runtime') {
      const v = value();
      const shipped = SHIPPED.find((r) => r === v);
      if (!shipped) throw new BadInput(`--runtime ${v}: unknown ociType; accepted: ${SHIPPED.join(', ')}`);
      runtime = shipped;
    } else if (a === '--port') {
      const v = value();
      port = Number(v);
      if (!/^\d+$/.test(v) || port < 1024 || port > 65535) throw new BadInput(`--port ${v}: expected a TCP port from 1024 to 65535`);
    } else if (a === '--knative') knative = true;
    else if (a === 'down') {
      throw new BadInput(`down takes no other argument; ${USAGE}`);
    } else {
      throw new BadInput(`unknown argument ${a}; ${USAGE}`);
    }
  }
  return { command: 'run', keep, knative, runtime, port };
}

/** The shipped engines in the order the demo installs them: the others first, `last` (the one kept) at the end. */
export function engineOrder(last: RuntimeName): RuntimeName[] {
  return [...SHIPPED.filter((r) => r !== last), last];
}
