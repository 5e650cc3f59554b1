/** Helpers for the installer tests: temp node roots, fake artifacts, tree snapshots, recorded effects. */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseCommandLine } from '../../lib/installer/cli';
import { FsHook, HostFs } from '../../lib/installer/host/fs';
import { Effects } from '../../lib/installer/installer';
import { ClusterApi } from '../../lib/installer/kube/cluster';
import { MemoryLogger } from '../../lib/installer/log';
import { CommandResult, RecordingRunner } from '../../lib/installer/host/commands';
import { Settings } from '../../lib/installer/settings';
import { FakeArtifactOptions, writeFakeArtifacts } from '../support/fake-artifacts';

export { PLACEHOLDER } from '../support/fake-artifacts';
import { StopRequest } from '../../lib/installer/host/signals';
import { handlersOnNodeRoot } from '../support/fake-runtime';

export { handlersOnNodeRoot };

// One fixture directory for the TOML library and the installer: the same host files feed both.
export const FIXTURES = path.join(__dirname, '..', 'fixtures', 'toml');

export function fixture(name: string): string {
  return fs.readFileSync(path.join(FIXTURES, name), 'utf8');
}

const created: string[] = [];

/** A temp directory, removed after the test file that made it. */
export function tempDir(prefix = 'knawd-inst-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  created.push(dir);
  return dir;
}

// Outside jest (the fault matrix's child process, test/installer/faults/) the caller removes its own work dir.
if (typeof afterAll === 'function') afterAll(() => {
  for (const dir of created.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** A node root with `etc/`, `opt/`, `run/` (where the node lock lives) and the given host files (host path → content). */
export function makeRoot(files: Record<string, string | Buffer> = {}): string {
  const root = tempDir('knawd-root-');
  for (const dir of ['etc', 'opt', 'run']) fs.mkdirSync(path.join(root, dir));
  for (const [hostPath, content] of Object.entries(files)) {
    const local = path.join(root, hostPath);
    fs.mkdirSync(path.dirname(local), { recursive: true });
    fs.writeFileSync(local, content);
  }
  return root;
}

/**
 * Fake artifacts in the image's layout (artifacts.json, SHA256SUMS, one store shared by every target), in a temp
 * directory of this test file: see {@link writeFakeArtifacts}.
 */
export function makeArtifacts(targetName: string, options: FakeArtifactOptions = {}): string {
  return writeFakeArtifacts(tempDir('knawd-art-'), targetName, options);
}

/**
 * Every entry under `root` with its kind, mode and content (or link target): equal snapshots = identical trees.
 * One exception: the stat fingerprints in the installer's state file (`files[].stat`: inode, mtime, ctime)
 * differ between any two trees by nature, so they are shown as `<fingerprint>`: whether a record has one is
 * still compared, its values are not.
 */
export function snapshot(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (dir: string): void => {
    for (const name of fs.readdirSync(dir).sort()) {
      const full = path.join(dir, name);
      const rel = path.relative(root, full);
      const st = fs.lstatSync(full);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out[rel] = `link ${fs.readlinkSync(full)}`;
      else if (st.isDirectory()) {
        out[rel] = `dir ${mode}`;
        walk(full);
      } else if (st.isSocket()) out[rel] = 'socket';
      else out[rel] = `file ${mode} ${normaliseState(name, fs.readFileSync(full)).toString('base64')}`;
    }
  };
  walk(root);
  return out;
}

/** The entries in which two snapshots differ, one line each (for a failure message). */
export function diffKeys(expected: Record<string, string>, actual: Record<string, string>, separator = '\n'): string {
  const keys = [...new Set([...Object.keys(expected), ...Object.keys(actual)])].sort();
  return keys
    .filter((k) => expected[k] !== actual[k])
    .map((k) => `${k}: expected ${expected[k]?.slice(0, 60) ?? '(absent)'} got ${actual[k]?.slice(0, 60) ?? '(absent)'}`)
    .join(separator);
}

function normaliseState(name: string, data: Buffer): Buffer {
  if (name !== 'state.json') return data;
  try {
    const state = JSON.parse(data.toString('utf8'));
    if (!Array.isArray(state?.files)) return data;
    state.files = state.files.map((f: Record<string, unknown>) => ('stat' in f ? { ...f, stat: '<fingerprint>' } : f));
    return Buffer.from(JSON.stringify(state, null, 2) + '\n', 'utf8');
  } catch {
    return data;
  }
}

export function settingsFor(args: string[], env: Record<string, string> = {}): Settings {
  const parsed = parseCommandLine(args, env);
  if (parsed.help) throw new Error('help');
  return parsed.settings;
}

export interface TestEffects extends Effects {
  readonly fs: HostFs;
  readonly runner: RecordingRunner;
  readonly log: MemoryLogger;
  readonly socketWaits: string[];
  /** Every check whether the runtime is up before the run: the socket asked. */
  readonly socketProbes: string[];
  /** Every CRI Status call: the socket asked. */
  readonly statusCalls: string[];
}

/**
 * What the fake runtime answers to CRI Status: the handlers it serves. Unit tests have no runtime behind the
 * socket (the e2e and node tests have); by default it serves exactly what the config on the node root asks for,
 * read back from the node root at call time, so an install that wrote the handler is "served" and a remove
 * that took it out is "gone".
 */
export type CriAnswer = (root: string) => string[] | undefined;

export function effectsFor(
  root: string,
  options: {
    hook?: FsHook;
    answer?: (argv: readonly string[]) => Partial<CommandResult> | undefined;
    cluster?: ClusterApi;
    socketOk?: boolean | (() => boolean);
    /** Whether the runtime answers on its socket before the run (default: it does). */
    runtimeUp?: boolean;
    stop?: StopRequest;
    criHandlers?: CriAnswer;
  } = {},
): TestEffects {
  const socketWaits: string[] = [];
  const socketProbes: string[] = [];
  const statusCalls: string[] = [];
  const answer = options.criHandlers ?? handlersOnNodeRoot;
  return {
    fs: new HostFs(root, options.hook),
    runner: new RecordingRunner(options.answer),
    probeSocket: async (p) => {
      socketProbes.push(p);
      return options.runtimeUp ?? true;
    },
    waitForSocket: async (p) => {
      socketWaits.push(p);
      return typeof options.socketOk === 'function' ? options.socketOk() : (options.socketOk ?? true);
    },
    readCriStatus: async (socket) => {
      statusCalls.push(socket);
      const handlers = answer(root);
      return { conditions: [], info: {}, runtimeHandlers: handlers ?? [] };
    },
    cluster: options.cluster,
    log: new MemoryLogger(),
    stop: options.stop,
    socketWaits,
    socketProbes,
    statusCalls,
  };
}

export const RESTART = (unit: string): string[] => ['nsenter', '-t', '1', '-m', '--', 'systemctl', 'restart', unit];
