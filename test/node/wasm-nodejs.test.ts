/**
 * crun-wasm-nodejs on the real single-node cluster (issue 28), containerd 2.x: `helm install` of the chart with
 * ociType crun-wasm-nodejs (target auto) installs the image's third build (our wasm_nodejs handler on Debian's
 * libnode, hermetic under the prefix, libnode's JavaScript in <prefix>/lib/nodejs); WASI Jobs of the probe run
 * through it: the args reach the module, the env is the pod's (a value with spaces and a second '='), exit(0) is
 * Complete, exit(3) and exit(255) Failed with that exit code in the pod status; a trap fails the Job with node's
 * message in the log. `helm uninstall` restores the node.
 */
import { NodeCluster } from '../../demo/cluster/cluster';
import { ClusterSteps } from '../support/node/steps';
import { helmInstall, helmUninstall, runWasmJob, unrestored } from '../../demo/cluster/product';
import { PROBE_ENV } from '../support/wasi-probe';

jest.setTimeout(10 * 60_000);

describe('helm install --set ociType=crun-wasm-nodejs on a real node with containerd 2.x', () => {
  const steps = new ClusterSteps();
  const need = (...names: string[]): NodeCluster => steps.need(...names);

  beforeAll(async () => {
    await steps.start(2);
  }, 8 * 60_000);

  afterAll(async () => {
    await steps.stop();
  });

  test('helm install: the installer lays out crun-wasm-nodejs, libnode and its JavaScript under the prefix', async () => {
    const h = need();
    await helmInstall(h, 'crun-wasm-nodejs', { target: 'auto' });
    const written = [...h.node.upper().keys()].filter((p) => p.startsWith('opt/knawd/'));
    expect(written).toEqual(
      expect.arrayContaining([
        'opt/knawd/bin/crun-wasm-nodejs',
        'opt/knawd/libexec/crun-wasm-nodejs/crun',
        'opt/knawd/lib/libnode.so.115',
        'opt/knawd/lib/ld-linux-x86-64.so.2',
        expect.stringMatching(/^opt\/knawd\/lib\/nodejs\/cjs-module-lexer\/.*\.js$/),
      ]),
    );
    steps.mark('install');
  });

  test('WASI Jobs through crun-wasm-nodejs: args, the pod\'s env, exit status 0, 3 and 255, a trap', async () => {
    const h = need('install');
    const env = await runWasmJob(h, 'nodejs-env', ['env'], 'default', PROBE_ENV);
    const ok = await runWasmJob(h, 'nodejs-exit-0', ['exit', '0']);
    const three = await runWasmJob(h, 'nodejs-exit-3', ['exit', '3']);
    const max = await runWasmJob(h, 'nodejs-exit-255', ['exit', '255']);
    const trap = await runWasmJob(h, 'nodejs-trap', ['trap']);
    expect([env.condition, env.exitCode]).toEqual(['Complete', 0]);
    const lines = env.log.trimEnd().split('\n');
    expect(lines).toContain(`PROBE_GREETING=${PROBE_ENV.PROBE_GREETING}`);
    expect(lines.filter((l) => l.startsWith('HOME=') || l.startsWith('NODE_'))).toEqual([]);
    expect([ok, three, max]).toEqual([
      { condition: 'Complete', exitCode: 0, log: 'exit 0\n' },
      { condition: 'Failed', exitCode: 3, log: 'exit 3\n' },
      { condition: 'Failed', exitCode: 255, log: 'exit 255\n' },
    ]);
    expect([trap.condition, trap.exitCode]).toEqual(['Failed', 1]);
    expect(trap.log).toMatch(/^before trap\n[^]*^wasm_nodejs: \S+\.wasm: RuntimeError: unreachable$/m);
    for (const job of ['nodejs-env', 'nodejs-exit-0', 'nodejs-exit-3', 'nodejs-exit-255', 'nodejs-trap']) {
      await h.kubectlOk(['delete', 'job', job, '--cascade=foreground', '--wait=true', '--timeout=60s']);
    }
  });

  test('helm uninstall restores the node', async () => {
    const h = need('install');
    const r = await helmUninstall(h);
    expect({ code: r.code, output: r.output }).toEqual({ code: 0, output: expect.stringContaining('release "knawd" uninstalled') });
    expect(unrestored(h)).toEqual([]);
  });

  test('teardown leaves no process, mount or cgroup behind', async () => {
    expect(await need().stop()).toEqual([]);
  });
});
