/**
 * What a WASI module gets from the shipped crun handlers (issue 31), as cases of the probe program
 * (runtime-artifacts/local/wasi-probe.c, image built by demo/cluster/images/test-images.ts) with what each engine
 * must give. The same cases run on crun bundles (test/image/wasi-behaviour.test.ts), through containerd and CRI-O
 * (test/e2e): each suite runs a case its own way and hands the outcome to {@link checkProbe}.
 */
import { readFileSync } from 'node:fs';
import { PROBE_INPUT } from '../../demo/cluster/images/test-images';

/** crun's handler name, as `crun --version` shows it (+WASM:<engine>). */
export type Engine = 'wasmtime' | 'wasmedge' | 'wasm_nodejs';

/** The handler a catalog runtime's crun build carries: crun-wasm-nodejs → wasm_nodejs. */
export function engineOf(runtime: string): Engine {
  return runtime.replace(/^crun-/, '').replace(/-/g, '_') as Engine;
}

/** Where the volume cases mount a host directory in the container. */
export const PROBE_VOLUME = '/mnt/probe-volume';
/** What the host directory holds in from-host.txt. */
export const HOST_LINE = 'from the host';
/** What the probe writes into the files it creates. */
export const WASM_WRITTEN = 'written by wasm\n';
/** A variable the env case sets: spaces and a second '=' in the value must arrive as they are. */
export const PROBE_ENV = { PROBE_GREETING: 'hello = world' } as const;

/** How each engine's own CLI ends on a trap: wasmtime exits 128 + SIGABRT, wasmedge 1, node (an uncaught error) 1. */
export const TRAP_EXIT: Record<Engine, number> = { wasmtime: 134, wasmedge: 1, wasm_nodejs: 1 };
/** The engine's own message for `unreachable`, which must be on stderr. */
export const TRAP_MESSAGE: Record<Engine, RegExp> = {
  wasmtime: /wasm trap: wasm `unreachable` instruction executed/,
  wasmedge: /execution failed: unreachable, Code: 0x0*40a/,
  wasm_nodejs: /^wasm_nodejs: \S+\.wasm: RuntimeError: unreachable$/m,
};

export interface ProbeCase {
  /** Also the container's name. */
  readonly name: string;
  readonly args: readonly string[];
  /** A host directory is mounted at {@link PROBE_VOLUME}. */
  readonly volume?: boolean;
  /** Variables for the container beside what the runtime puts in. */
  readonly env?: Readonly<Record<string, string>>;
}

export const PROBE_CASES: readonly ProbeCase[] = [
  { name: 'files', args: ['files'] },
  { name: 'volume', args: ['volume', PROBE_VOLUME], volume: true },
  { name: 'exit-0', args: ['exit', '0'] },
  { name: 'exit-3', args: ['exit', '3'] },
  { name: 'exit-255', args: ['exit', '255'] },
  { name: 'trap', args: ['trap'] },
  { name: 'env', args: ['env'], env: PROBE_ENV },
  { name: 'stdout', args: ['stdout'] },
  { name: 'poll-stdin', args: ['poll-stdin'] },
];

export interface ProbeOutcome {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** process.env of the OCI spec the runtime was given. */
  readonly specEnv: readonly string[];
  /** The host directory mounted at PROBE_VOLUME (volume case). */
  readonly volumeDir?: string;
  /** The container's /tmp/wasi-probe-out.txt as the host sees it afterwards, when the suite can read it. */
  readonly writtenFile?: string;
}

/** Exit code and stdout the case must give; stdout is compared byte for byte (no engine noise in it). */
export function expected(engine: Engine, c: ProbeCase, specEnv: readonly string[]): { code: number; stdout: string } {
  switch (c.name) {
    case 'files':
      return { code: 0, stdout: `files: ${PROBE_INPUT} | ${WASM_WRITTEN.trim()}\n` };
    case 'volume':
      return { code: 0, stdout: `volume: ${HOST_LINE}\n` };
    case 'exit-0':
    case 'exit-3':
    case 'exit-255':
      return { code: Number(c.args[1]), stdout: `exit ${c.args[1]}\n` };
    case 'trap':
      return { code: TRAP_EXIT[engine], stdout: 'before trap\n' };
    case 'env':
      return { code: 0, stdout: specEnv.map((e) => `${e}\n`).join('') };
    case 'stdout':
      return { code: 0, stdout: 'exact output\n' };
    case 'poll-stdin':
      // stdin is /dev/null on a bundle run with no input and in a pod without stdin
      return { code: 0, stdout: 'poll-stdin: ready, read 0\n' };
    default:
      throw new Error(`no expectation for probe case ${c.name}`);
  }
}

/** Every way the outcome differs from what the case must give (empty when it behaves). */
export function probeProblems(engine: Engine, c: ProbeCase, o: ProbeOutcome): string[] {
  const want = expected(engine, c, o.specEnv);
  const problems: string[] = [];
  if (o.code !== want.code) problems.push(`exit code ${o.code}, expected ${want.code}`);
  if (o.stdout !== want.stdout) problems.push(`stdout ${JSON.stringify(o.stdout)}, expected ${JSON.stringify(want.stdout)}`);
  if (c.name === 'trap' && !TRAP_MESSAGE[engine].test(o.stderr)) problems.push(`stderr lacks ${TRAP_MESSAGE[engine]}`);
  if (c.name === 'env') {
    for (const [k, v] of Object.entries(c.env ?? {})) if (!o.specEnv.includes(`${k}=${v}`)) problems.push(`the spec's env lacks ${k}=${v}`);
    const home = o.specEnv.find((e) => e.startsWith('HOME='));
    const moduleHome = o.stdout.split('\n').find((l) => l.startsWith('HOME='));
    if (moduleHome !== home) problems.push(`the module got ${moduleHome ?? 'no HOME'} where the spec has ${home ?? 'no HOME'}`);
  }
  if (c.name === 'volume' && o.volumeDir !== undefined && readOr(`${o.volumeDir}/from-wasm.txt`) !== WASM_WRITTEN) {
    problems.push(`${o.volumeDir}/from-wasm.txt holds ${JSON.stringify(readOr(`${o.volumeDir}/from-wasm.txt`))}, expected ${JSON.stringify(WASM_WRITTEN)}`);
  }
  if (c.name === 'files' && o.writtenFile !== undefined && readOr(o.writtenFile) !== WASM_WRITTEN) {
    problems.push(`${o.writtenFile} holds ${JSON.stringify(readOr(o.writtenFile))}, expected ${JSON.stringify(WASM_WRITTEN)}`);
  }
  return problems.length > 0 ? [...problems, `stderr: ${JSON.stringify(o.stderr.slice(-1500))}`] : [];
}

function readOr(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** A CRI container log file split back into what the container wrote to stdout and to stderr. */
export function splitCriLog(text: string): { stdout: string; stderr: string } {
  const out = { stdout: '', stderr: '' };
  for (const line of text.split('\n')) {
    const m = /^\S+ (stdout|stderr) ([PF]) (.*)$/.exec(line);
    if (!m) continue;
    out[m[1] as 'stdout' | 'stderr'] += m[3] + (m[2] === 'F' ? '\n' : '');
  }
  return out;
}
