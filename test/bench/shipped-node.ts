/**
 * The Node.js the image ships, for the installer's figures: the image's own /usr/bin/node (Debian's build,
 * linked against the image's libnode, OpenSSL and ICU, with the image's empty trust store) run in the image's
 * root, in the environment the image gives a container. This machine's temp directory is bind-mounted at the
 * same path inside that root, in a private mount namespace (nothing outside the child sees the mount), so the
 * node roots, artifacts and kubeconfig a benchmark writes there are where the installer looks for them.
 * What the launch itself costs (unshare, mount, chroot) is measured with a no-op program and reported apart.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { builtImage, imageConfig } from '../../demo/cluster/images/built-image';
import { timeMs } from './measure';

/** The agent (a static program in the image) given a command it refuses at once: a launch that runs nothing. */
const NO_OP = ['/usr/local/bin/knawd-agent', 'ready'];

export interface ShippedNode {
  /** The installer bundle as the image ships it, a path inside the image's root. */
  readonly bundle: string;
  /** What a launch costs by itself: the median of five launches that run nothing. */
  readonly launchMs: number;
  /** Runs the image's node with `args` (paths under the temp directory or inside the image). */
  run(args: readonly string[]): { stdout: string; ms: number };
}

export function shippedNode(): ShippedNode {
  // The installer figures install crun-wasmtime: its image (its layer 1, the Node.js userland, is every image's).
  const image = builtImage().installers['crun-wasmtime'];
  const rootfs = image.rootfs;
  const temp = tmpdir();
  if (!existsSync(join(rootfs, temp))) {
    throw new Error(`the image's root has no ${temp} to mount this machine's temp directory on: run the benchmark with TMPDIR unset (/tmp)`);
  }
  const env = Object.fromEntries(((imageConfig(image.archive).config as { Env?: string[] }).Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const launcher = (command: readonly string[]): string[] => [
    '--mount',
    '--propagation',
    'private',
    'sh',
    '-c',
    'mount --bind "$1" "$0$1" && shift && exec chroot "$0" "$@"',
    rootfs,
    temp,
    ...command,
  ];
  const launches = [0, 1, 2, 3, 4].map(() => timeMs(() => spawnSync('unshare', launcher(NO_OP), { env, stdio: 'ignore' })));
  const launchMs = launches.sort((a, b) => a - b)[2];
  return {
    bundle: '/usr/local/lib/knawd-installer.js',
    launchMs,
    run: (args) => {
      let stdout = '';
      const ms = timeMs(() => {
        stdout = execFileSync('unshare', launcher(['/usr/bin/node', ...args]), { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 16 << 20 });
      });
      return { stdout, ms: ms - launchMs };
    },
  };
}
