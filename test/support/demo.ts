/**
 * `npm run demo` as a user runs it, for the demo's test and the bench: a child process (no shell), its output
 * kept, its wall-clock time measured; never throws for a non-zero exit.
 */
import { spawn } from 'child_process';
import { REPO } from '../../demo/cluster/process';

export interface DemoRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly seconds: number;
}

/** Runs `npm run -s demo -- ARGS`. */
export interface DemoOptions {
  readonly timeoutMs?: number;
  /** Run `node demo/main.ts` under this command ([] for none) instead of through npm. */
  readonly argv0?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** Called with the whole stdout so far at each piece of it, and a way to signal the demo's process. */
  readonly onOutput?: (stdout: string, signal: (s: NodeJS.Signals) => void) => void;
}

export function runDemoCommand(args: readonly string[], options: DemoOptions = {}): Promise<DemoRun> {
  const argv = options.argv0
    ? [...options.argv0, process.execPath, '-r', 'ts-node/register/transpile-only', 'demo/main.ts', ...args]
    : ['npm', 'run', '-s', 'demo', '--', ...args];
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(argv[0], argv.slice(1), { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString('utf8');
      options.onOutput?.(stdout, (s) => child.kill(s));
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGTERM'), options.timeoutMs ?? 30 * 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, seconds: (Date.now() - started) / 1000 });
    });
  });
}
