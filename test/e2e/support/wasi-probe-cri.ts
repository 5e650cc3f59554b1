/**
 * A probe case (test/support/wasi-probe.ts) through a CRI runtime: one container per case in an existing pod,
 * the probe image's entrypoint with the case's arguments, env and volume; the outcome read back from CRI (exit code,
 * the container's log file split into stdout and stderr, the runtime spec's process.env).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerConfig, Crictl } from './crictl';
import { HOST_LINE, PROBE_VOLUME, ProbeCase, ProbeOutcome, splitCriLog } from '../../support/wasi-probe';

export interface ProbePod {
  readonly crictl: Crictl;
  readonly podId: string;
  /** The pod's config file (crictl create needs it again). */
  readonly podFile: string;
  /** The pod's log directory. */
  readonly logDir: string;
  /** The probe image's name. */
  readonly image: string;
  /** Where the volume case's host directory is made. */
  readonly workDir: string;
  /** The `linux` section of each container config. @default {} */
  readonly linux?: Record<string, unknown>;
}

/** Runs case `c` as a new container of the pod, to its exit. */
export async function runProbeCase(p: ProbePod, c: ProbeCase): Promise<ProbeOutcome> {
  let volumeDir: string | undefined;
  if (c.volume) {
    volumeDir = join(p.workDir, `probe-volume-${c.name}-${p.podId.slice(0, 8)}`);
    mkdirSync(volumeDir, { recursive: true });
    writeFileSync(join(volumeDir, 'from-host.txt'), `${HOST_LINE}\n`);
  }
  const config = {
    ...containerConfig(c.name, p.image, `${c.name}.log`, ['/probe.wasm']),
    args: c.args,
    envs: Object.entries(c.env ?? {}).map(([key, value]) => ({ key, value })),
    mounts: volumeDir ? [{ container_path: PROBE_VOLUME, host_path: volumeDir }] : [],
    linux: p.linux ?? {},
  };
  const file = p.crictl.writeJson(`ctr-probe-${c.name}-${p.podId.slice(0, 8)}.json`, config);
  const id = p.crictl.must(['create', '--no-pull', p.podId, file, p.podFile]);
  p.crictl.must(['start', id]);
  const code = await p.crictl.waitExited(id);
  const inspect = JSON.parse(p.crictl.must(['inspect', '-o', 'json', id])) as { info: { runtimeSpec: { process: { env?: string[] } } } };
  let log = '';
  try {
    log = readFileSync(join(p.logDir, `${c.name}.log`), 'utf8');
  } catch {
    // an empty outcome: the case's checks say what is missing
  }
  return { code, ...splitCriLog(log), specEnv: inspect.info.runtimeSpec.process.env ?? [], volumeDir };
}
