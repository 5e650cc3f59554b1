/**
 * The original knawd-deployer's runtime entry, recognised by its exact shape and taken out with every other byte
 * kept. The inputs are the original manager's own test outputs (../shared/original/manager/mocks: what its
 * `update_containerd_config` / `update_crio_config` wrote, with crun at /ocr_path/crun); the installer tests run
 * the manager itself (test/installer/original-takeover.test.ts).
 */
import * as fs from 'fs';
import * as path from 'path';
import { findOriginalEntry, OriginalEntryShape, removeOriginalEntry } from '../../lib/toml';
import { parseToml } from '../../lib/toml/verify';
import { ORIGINAL_NODE } from '../../lib/catalog';
import { REPO } from '../support/tools';

const MOCKS = path.join(REPO, '..', 'shared', 'original', 'manager', 'mocks');
const mock = (name: string): string => {
  const file = path.join(MOCKS, name);
  if (!fs.existsSync(file)) throw new Error(`${file} is missing: the original knawd-deployer's sources belong at ../shared/original`);
  return fs.readFileSync(file, 'utf8');
};

const shape = (kind: 'containerd' | 'crio'): OriginalEntryShape => ({
  kind,
  handler: 'crun',
  crunPath: '/ocr_path/crun',
  podAnnotations: ORIGINAL_NODE.containerdPodAnnotations,
  runtimeRoot: ORIGINAL_NODE.crioRuntimeRoot,
});

describe("the original knawd-deployer's entry", () => {
  test('containerd config.toml (v2): recognised, taken out as its two tables, every other line kept', () => {
    const text = mock('out_config.toml');
    expect(findOriginalEntry(text, shape('containerd'), 'config.toml')).toEqual({ state: 'original', path: ['plugins', 'io.containerd.grpc.v1.cri', 'containerd', 'runtimes', 'crun'] });
    const result = removeOriginalEntry(text, shape('containerd'), 'config.toml');
    const entry = text.slice(text.indexOf('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]'), text.indexOf('[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.untrusted]'));
    expect(entry).toMatch(/^\[.*runtimes\.crun\]\n(.*\n)+\[.*runtimes\.crun\.options\]\nBinaryName = "\/ocr_path\/crun"\n\n$/);
    expect(result).toBe(text.replace(entry, ''));
    // The mock's input had an admin's crun there, which the original replaced: only that table is gone now.
    const expected = parseToml(text, 'out') as any;
    delete expected.plugins['io.containerd.grpc.v1.cri'].containerd.runtimes.crun;
    expect(parseToml(result, 'result')).toEqual(expected);
  });

  test('CRI-O crio.conf: recognised and taken out', () => {
    const text = mock('out_crio.conf');
    const result = removeOriginalEntry(text, shape('crio'), 'crio.conf');
    expect(result).toBe(text.replace('[crio.runtime.runtimes.crun]\nruntime_type = "oci"\nruntime_path = "/ocr_path/crun"\nruntime_root = "/run/crun"\n\n', ''));
    expect(parseToml(result, 'result')).toEqual(parseToml(mock('in_crio.conf'), 'in'));
  });

  test('a crun runtime an admin configured for another crun is not the original: found foreign, never touched', () => {
    const other = mock('out_config.toml').replace('BinaryName = "/ocr_path/crun"', 'BinaryName = "/usr/bin/crun"');
    const finding = findOriginalEntry(other, shape('containerd'), 'config.toml');
    expect(finding).toMatchObject({ state: 'foreign', why: 'options differ from what the original knawd-deployer wrote' });
    expect(removeOriginalEntry(other, shape('containerd'), 'config.toml')).toBe(other);
    // CRI-O 1.31+ names its default runtime crun.
    const crio = mock('in_crio.conf') + '\n[crio.runtime.runtimes.crun]\nruntime_path = "/usr/bin/crun"\nruntime_type = "oci"\nruntime_root = "/run/crun"\nmonitor_path = "/usr/libexec/crio/conmon"\n';
    expect(findOriginalEntry(crio, shape('crio'), 'crio.conf')).toMatchObject({ state: 'foreign', why: 'monitor_path, runtime_path differ from what the original knawd-deployer wrote' });
  });

  test('the same content written another way (dotted keys) is not what the original wrote: foreign', () => {
    const dotted =
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes]\ncrun.runtime_type = "io.containerd.runc.v2"\ncrun.privileged_without_host_devices = false\n' +
      'crun.pod_annotations = ["*.wasm.*", "module.wasm.image/*", "*.module.wasm.image", "module.wasm.image/variant.*"]\ncrun.options.BinaryName = "/ocr_path/crun"\n';
    expect(findOriginalEntry(dotted, shape('containerd'), 'config.toml')).toMatchObject({ state: 'foreign', why: 'it is not written as [table] headers, as the original wrote it' });
  });

  test("no entry: absent, the text unchanged; the mock's own earlier crun (other annotations) is foreign", () => {
    const text = mock('in_crio.conf');
    expect(findOriginalEntry(text, shape('crio'), 'crio.conf')).toEqual({ state: 'absent' });
    expect(removeOriginalEntry(text, shape('crio'), 'crio.conf')).toBe(text);
    expect(findOriginalEntry(mock('in_config.toml'), shape('containerd'), 'config.toml')).toMatchObject({ state: 'foreign', why: 'options, pod_annotations differ from what the original knawd-deployer wrote' });
  });

  test('at the end of the file: taken out with the blank line before it, the final line break kept', () => {
    const text = 'version = 2\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun]\nruntime_type = "io.containerd.runc.v2"\nprivileged_without_host_devices = false\npod_annotations = ["*.wasm.*", "module.wasm.image/*", "*.module.wasm.image", "module.wasm.image/variant.*"]\n\n[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.crun.options]\nBinaryName = "/ocr_path/crun"\n';
    expect(removeOriginalEntry(text, shape('containerd'), 'config.toml')).toBe('version = 2\n');
  });
});
