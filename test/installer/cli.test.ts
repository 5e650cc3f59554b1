import { parseCommandLine, USAGE } from '../../lib/installer/cli';
import { UsageError } from '../../lib/installer/errors';
import { settingsFor as parse } from './support';

const ORIGINAL_ENV = { VENDOR: 'microk8s', OCI_TYPE: 'crun-wasmedge', NODE_ROOT: '/mnt/node-root', AUTO_RESTART: 'false', LOG_LEVEL: 'warn', PATCH_KNATIVE: 'false' };

describe('command line and environment', () => {
  test("the original deployer's env vars configure a run", () => {
    const s = parse(['install'], { ...ORIGINAL_ENV, KNAWD_PREFIX: '/var/opt/knawd', KNAWD_HANDLER: 'wasm', KNAWD_ARTIFACTS: '/art', NODE_NAME: 'n1' });
    expect(s).toMatchObject({
      command: 'install',
      nodeRoot: '/mnt/node-root',
      artifacts: '/art',
      prefix: '/var/opt/knawd',
      handler: 'wasm',
      restart: 'none',
      patchKnative: 'false',
      logLevel: 'warn',
      nodeName: 'n1',
      stay: false,
    });
    expect(s.target).toMatchObject({ name: 'microk8s' });
    expect(s.runtime?.name).toBe('crun-wasmedge');
  });

  test('flags win over env', () => {
    const s = parse(['install', '--target=k3s', '--runtime', 'crun-wasmtime', '--restart', 'auto', '--log-level', 'debug', '--patch-knative', 'true', '--stay'], ORIGINAL_ENV);
    expect(s).toMatchObject({ restart: 'auto', logLevel: 'debug', patchKnative: 'true', stay: true });
    expect(s.target).toMatchObject({ name: 'k3s' });
  });

  test('Knative: PATCH_KNATIVE auto|true|false, the RuntimeClass and the runtime-class-name selector', () => {
    const env = { ...ORIGINAL_ENV, PATCH_KNATIVE: 'AUTO', KNAWD_RUNTIME_CLASS: 'wasm', KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: 'knawd.dev/wasm=true,app=fn' };
    expect(parse(['install'], env)).toMatchObject({ patchKnative: 'auto', runtimeClassName: 'wasm', knativeRuntimeClassSelector: { 'knawd.dev/wasm': 'true', app: 'fn' } });
    // The DaemonSet always sets the selector variable; empty means config-deployment is left alone.
    expect(parse(['install'], { ...env, KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR: '' }).knativeRuntimeClassSelector).toBeUndefined();
    expect(parse(['install', '--patch-knative', 'true', '--knative-runtime-class-selector', 'a=b'], ORIGINAL_ENV)).toMatchObject({ patchKnative: 'true', knativeRuntimeClassSelector: { a: 'b' } });
  });

  test('defaults', () => {
    const s = parse(['install', '--target', 'crio', '--runtime', 'crun-wasmedge']);
    expect(s).toMatchObject({ nodeRoot: '/mnt/node-root', artifacts: '/vendor', prefix: '/opt/knawd', handler: 'crun-wasm', restart: 'auto', hostExec: 'nsenter', patchKnative: 'auto', runtimeClassName: 'crun', logLevel: 'info', label: 'knawd.dev/crun-wasm-host=changed', timeoutSeconds: 240, socketTimeoutSeconds: 60 });
  });

  test('target auto: the default of plan and install, accepted everywhere, with a runtime every node kind ships', () => {
    expect(parse(['install', '--runtime', 'crun-wasmtime']).target).toBe('auto');
    expect(parse(['plan', '--runtime', 'crun-wasmedge']).target).toBe('auto');
    expect(parse(['install'], { ...ORIGINAL_ENV, VENDOR: 'auto' }).target).toBe('auto');
    expect(parse(['remove', '--target', 'auto']).target).toBe('auto');
    expect(parse(['status', '--target', 'auto', '--runtime', 'crun-wasmtime']).target).toBe('auto');
  });

  test('remove, status and wait-removed do not need a target', () => {
    expect(parse(['remove']).target).toBeUndefined();
    expect(parse(['wait-removed', '--timeout-seconds', '30', '--label', 'knawd.dev/crun-wasm=installed'])).toMatchObject({ timeoutSeconds: 30 });
  });

  test.each([
    [[], /no command given/],
    [['deploy'], /unknown command "deploy"/],
    [['install'], /install needs --runtime \(or OCI_TYPE\)/],
    [['install', '--target', 'automatic', '--runtime', 'crun-wasmtime'], /^unknown target "automatic"; valid targets: auto, ubuntu_18_04, /],
    [['install', '--target', 'rhel8_plugins', '--runtime', 'crun-wasm-nodejs'], /^ociType "crun-wasm-nodejs" is not available for target "rhel8_plugins"; valid ociTypes for rhel8_plugins: crun-wasmedge$/],
    [['install', '--target', 'k3s'], /install needs --runtime \(or OCI_TYPE\)/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--prefix', '/'], /invalid --prefix/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--prefix', 'opt/knawd'], /invalid --prefix/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--handler', 'Crun_Wasm'], /invalid handler "Crun_Wasm"/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--log-level', 'trace'], /invalid log level "trace"/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--patch-knative', 'yes'], /^invalid --patch-knative \/ PATCH_KNATIVE "yes": use auto, true, false$/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--runtime-class', 'Crun'], /^invalid --runtime-class \/ KNAWD_RUNTIME_CLASS "Crun": use a DNS subdomain name such as crun$/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--knative-runtime-class-selector', 'a'], /^invalid --knative-runtime-class-selector \/ KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR "a" \(it is not KEY=VALUE\[,KEY=VALUE...\] with distinct keys\): use one or more label=value pairs/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--knative-runtime-class-selector', 'a=b,a=c'], /\(it is not KEY=VALUE\[,KEY=VALUE...\] with distinct keys\)/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--knative-runtime-class-selector', 'a=b c'], /\("b c" \(of a\) is not a label value\)/],
    [['install', '--target', 'k3s', '--runtime', 'crun-wasmtime', '--knative-runtime-class-selector', 'a=b', '--patch-knative', 'false'], /^--knative-runtime-class-selector \/ KNAWD_KNATIVE_RUNTIME_CLASS_SELECTOR needs --patch-knative auto or true: false leaves Knative alone$/],
    [['wait-removed', '--timeout-seconds', '0'], /invalid --timeout-seconds "0"/],
    [['install', '--target'], /flag --target needs a value/],
  ])('%j is refused', (args, message) => {
    expect(() => parse(args as string[])).toThrow(UsageError);
    expect(() => parse(args as string[])).toThrow(message);
  });

  test('a bad AUTO_RESTART is refused', () => {
    expect(() => parse(['install'], { ...ORIGINAL_ENV, AUTO_RESTART: 'sometimes' })).toThrow(/invalid AUTO_RESTART "sometimes"/);
  });

  test('--help', () => {
    expect(parseCommandLine(['install', '--help'], {})).toEqual({ help: true });
    expect(USAGE).toContain('wait-removed');
  });
});
