import * as TOML from '@iarna/toml';
import { crioDropInFileName, renderCrioDropIn } from '../../lib/toml';
import { fixture, patchError, SPEC } from './helpers';

const hostConfig = { name: '/etc/crio/crio.conf', text: fixture('crio.conf') };

function runtimeOf(text: string, handler = SPEC.handler): unknown {
  return (TOML.parse(text) as any).crio.runtime.runtimes[handler];
}

describe('renderCrioDropIn', () => {
  it("registers the handler with the monitor settings of the host's default runtime", () => {
    const dropIn = renderCrioDropIn({ ...SPEC, hostConfig });
    expect(dropIn.fileName).toBe('50-knawd-crun-wasm.conf');
    expect(runtimeOf(dropIn.text)).toEqual({
      runtime_path: SPEC.binaryPath,
      runtime_type: 'oci',
      runtime_root: '/run/crun-wasm',
      monitor_path: '/usr/libexec/crio/conmon',
      monitor_cgroup: 'system.slice',
      monitor_env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    });
    expect(Object.keys(TOML.parse(dropIn.text))).toEqual(['crio']);
    expect(dropIn.text).toMatch(/^# Managed by knawd-deployer: .*\n# .*knawd-installer remove/);
  });

  it('is the same text every time', () => {
    expect(renderCrioDropIn({ ...SPEC, hostConfig })).toEqual(renderCrioDropIn({ ...SPEC, hostConfig }));
  });

  it('takes the global conmon settings of older hosts as monitor settings', () => {
    const dropIn = renderCrioDropIn({ ...SPEC, runtimeRoot: '/run/wasm', hostConfig: { name: 'crio.conf', text: fixture('crio-legacy-conmon.conf') } });
    expect(runtimeOf(dropIn.text)).toEqual({
      runtime_path: SPEC.binaryPath,
      runtime_type: 'oci',
      runtime_root: '/run/wasm',
      monitor_path: '/usr/bin/conmon',
      monitor_cgroup: 'pod',
      monitor_env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    });
  });

  it('follows a default runtime changed by a drop-in, and ignores its own earlier file', () => {
    const ours = renderCrioDropIn({ ...SPEC, hostConfig });
    const dropIns = [
      { name: '/etc/crio/crio.conf.d/10-crun.conf', text: fixture('crio-dropin-crun-default.conf') },
      { name: `/etc/crio/crio.conf.d/${ours.fileName}`, text: ours.text },
      { name: '/etc/crio/crio.conf.d/05-old-name.conf', text: ours.text },
    ];
    expect(runtimeOf(renderCrioDropIn({ ...SPEC, hostConfig, dropIns }).text)).toEqual({
      runtime_path: SPEC.binaryPath,
      runtime_type: 'oci',
      runtime_root: '/run/crun-wasm',
      monitor_path: '/usr/libexec/crio/conmon',
      monitor_cgroup: 'pod',
    });
  });

  it('omits monitor settings a host without crio.conf does not set', () => {
    expect(runtimeOf(renderCrioDropIn({ ...SPEC, priority: 7 }).text)).toEqual({
      runtime_path: SPEC.binaryPath,
      runtime_type: 'oci',
      runtime_root: '/run/crun-wasm',
    });
    expect(crioDropInFileName('crun-wasm', 7)).toBe('07-knawd-crun-wasm.conf');
  });
});

describe('refused CRI-O inputs', () => {
  it.each([
    ['runc', /"runc" is the host's default runtime/],
    ['crun', /"crun" is a runtime CRI-O defines itself/],
  ])('handler %s', (handler, message) => {
    expect(patchError(() => renderCrioDropIn({ ...SPEC, handler, hostConfig })).message).toMatch(message);
  });

  it('a handler another drop-in defines', () => {
    const dropIns = [{ name: '20-wasm.conf', text: '[crio.runtime.runtimes.crun-wasm]\nruntime_path = "/usr/bin/crun"\n' }];
    expect(patchError(() => renderCrioDropIn({ ...SPEC, hostConfig, dropIns })).message).toMatch(/already defined in the host CRI-O config/);
  });

  it('the default runtime set in a drop-in', () => {
    const dropIns = [{ name: '10-default.conf', text: '[crio.runtime]\ndefault_runtime = "crun-wasm"\n' }];
    expect(patchError(() => renderCrioDropIn({ ...SPEC, hostConfig, dropIns })).message).toMatch(/is the host's default runtime/);
  });

  it('an invalid crio.conf', () => {
    const error = patchError(() => renderCrioDropIn({ ...SPEC, hostConfig: { name: '/etc/crio/crio.conf', text: '[crio.runtime\n' } }));
    expect(error.message).toMatch(/^\/etc\/crio\/crio.conf is not valid TOML \(line 1/);
  });

  it.each([
    [{ runtimeRoot: 'run/x' }, /invalid runtimeRoot/],
    [{ binaryPath: 'crun' }, /invalid binaryPath/],
    [{ handler: 'Crun' }, /invalid runtime handler name/],
    [{ priority: 100 }, /invalid drop-in priority 100/],
  ])('%j', (override, message) => {
    expect(patchError(() => renderCrioDropIn({ ...SPEC, ...override })).message).toMatch(message);
  });
});
