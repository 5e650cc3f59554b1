/**
 * The host prefix and the handler name go from values.yaml (or construct props) to the installer's command
 * line on every node. The constructs, the chart's schema (checked by the real helm) and the installer must
 * accept exactly the same values: a value the chart takes and the installer refuses would crash-loop the
 * DaemonSet on every node.
 */
import { join } from 'node:path';
import { App, Chart } from 'cdk8s';
import { KnawdDeployer, KnawdDeployerProps } from '../../lib';
import { parseCommandLine } from '../../lib/installer/cli';
import { REPO, run, toolPath } from '../support/tools';

const CHART = join(REPO, 'dist', 'charts', 'knawd-deployer');

function constructs(props: KnawdDeployerProps): boolean {
  try {
    new KnawdDeployer(new Chart(new App(), 'c'), 'd', props);
    return true;
  } catch {
    return false;
  }
}

function chart(key: string, value: string): boolean {
  return run(toolPath('helm'), ['template', 'knawd', CHART, '--set-json', `${key}=${JSON.stringify(value)}`]).code === 0;
}

function installer(flag: string, value: string): boolean {
  try {
    parseCommandLine(['install', '--target', 'ubuntu_22_04', '--runtime', 'crun-wasmtime', flag, value], {});
    return true;
  } catch {
    return false;
  }
}

test.each<[string, boolean]>([
  ['/opt/knawd', true],
  ['/var/opt/knawd', true],
  ['/opt/knawd-2.0_x', true],
  ['/', false],
  ['/opt', false],
  ['opt/knawd', false],
  ['/opt/knawd/', false],
  ['/opt//knawd', false],
  ['/opt/../etc', false],
  ['/opt/./knawd', false],
  ['/opt/.knawd', false],
  ['/opt/a;b', false],
  ['/opt/a b', false],
  ['/opt/$(reboot)', false],
  // The shipped binaries hold at most 64 bytes of prefix (PT_INTERP, RUNPATH; see HOST_PREFIX_MAX_LENGTH).
  [`/opt/${'k'.repeat(59)}`, true],
  [`/opt/${'k'.repeat(60)}`, false],
])('host prefix %j: accepted everywhere = %s', (prefix, accepted) => {
  expect({ constructs: constructs({ hostPrefix: prefix }), chart: chart('hostPrefix', prefix), installer: installer('--prefix', prefix) }).toEqual({
    constructs: accepted,
    chart: accepted,
    installer: accepted,
  });
});

test.each<[string, boolean]>([
  ['crun-wasm', true],
  ['a', true],
  ['x'.repeat(63), true],
  ['x'.repeat(64), false],
  ['Crun', false],
  ['crun_wasm', false],
  ['-crun', false],
  ['crun.wasm', false],
])('handler %j: accepted everywhere = %s', (handler, accepted) => {
  expect({ constructs: constructs({ handler }), chart: chart('runtimeClass.handler', handler), installer: installer('--handler', handler) }).toEqual({
    constructs: accepted,
    chart: accepted,
    installer: accepted,
  });
});
