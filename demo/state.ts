/**
 * What main.ts and the runner (run.ts) share: the demo's files in the checkout's ignored build directory, the
 * kept cluster's state, and the runner's messages. Kept apart from run.ts, which main.ts loads only in the
 * runner: run.ts needs what the build makes (the image's recorded names).
 */
import * as path from 'path';
import { RuntimeName } from '../lib/catalog/runtimes';
import { REPO } from './cluster/process';
import { Row } from './summary';

/** The demo's log, the kept cluster's kubeconfig and state. */
export const DEMO_DIR = path.join(REPO, 'build', 'demo');
export const LOG = path.join(DEMO_DIR, 'demo.log');
export const KUBECONFIG = path.join(DEMO_DIR, 'kubeconfig');
export const KEPT_STATE = path.join(DEMO_DIR, 'kept.json');

/** `--knative`: the namespace of README's Knative Service (its name would clash with the Deployment's Service). */
export const KNATIVE_DEMO_NAMESPACE = 'wasm-knative';

export interface KeptState {
  /** The runner that holds the cluster. */
  readonly pid: number;
  readonly port: number;
  readonly runtime: RuntimeName;
  readonly kubeconfig: string;
  readonly since: string;
}

export interface RunnerOptions {
  readonly keep: boolean;
  /** Knative Serving too, and README's Knative Service. */
  readonly knative: boolean;
  readonly runtime: RuntimeName;
  readonly port: number;
}

/** Messages from the runner to main.ts. */
export type RunnerMessage =
  | { readonly type: 'line'; readonly text: string }
  | { readonly type: 'done'; readonly ok: boolean; readonly rows: Row[]; readonly answeredSeconds?: number; readonly error?: string; readonly kept?: KeptState };
