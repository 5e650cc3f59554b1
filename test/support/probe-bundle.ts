/**
 * An OCI bundle whose process is a WASI module at /probe.wasm (the probe of runtime-artifacts/local/wasi-probe.c,
 * or another module) with a probe case's arguments and env, for `crun run` on bundles (test/image): the probe's
 * input file, /tmp, /work (its working directory: paths must still resolve from the container's root) and /mnt,
 * annotation module.wasm.image/variant=compat-smart, the cgroup under the test's parent.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROBE_INPUT } from '../../demo/cluster/images/test-images';
import { ProbeCase } from './wasi-probe';

const SPEC_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'];

export interface ProbeBundleOptions {
  /** The bundle's directory (created). */
  readonly bundle: string;
  readonly module: string;
  readonly probeCase: ProbeCase;
  /** `linux.cgroupsPath`. */
  readonly cgroupsPath: string;
  /** Writes `<bundle>/config.json` (`crun spec` with the crun under test). */
  readonly spec: (bundle: string) => void;
  /** Changes of the caller's to the config before it is written. */
  readonly adjust?: (config: { process: object; mounts: object[]; linux: Record<string, unknown>; [key: string]: unknown }) => void;
}

/** Lays out the bundle; its rootfs and the env its process gets. */
export function probeBundle(o: ProbeBundleOptions): { readonly rootfs: string; readonly env: string[] } {
  const rootfs = join(o.bundle, 'rootfs');
  for (const d of ['etc/wasi-probe', 'tmp', 'work', 'mnt']) mkdirSync(join(rootfs, d), { recursive: true });
  copyFileSync(o.module, join(rootfs, 'probe.wasm'));
  writeFileSync(join(rootfs, 'etc/wasi-probe/input.txt'), `${PROBE_INPUT}\n`);
  o.spec(o.bundle);
  const config = JSON.parse(readFileSync(join(o.bundle, 'config.json'), 'utf8'));
  const env = [...SPEC_ENV, ...Object.entries(o.probeCase.env ?? {}).map(([k, v]) => `${k}=${v}`)];
  config.process = { ...config.process, terminal: false, args: ['/probe.wasm', ...o.probeCase.args], env, cwd: '/work' };
  config.root = { path: 'rootfs', readonly: false };
  config.annotations = { 'module.wasm.image/variant': 'compat-smart' };
  config.linux.cgroupsPath = o.cgroupsPath;
  o.adjust?.(config);
  writeFileSync(join(o.bundle, 'config.json'), JSON.stringify(config, null, 2));
  return { rootfs, env };
}
