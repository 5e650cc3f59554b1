/**
 * The test-only CRI Status reader (support/cri-status.ts) against the answers real CRI-O daemons gave
 * (test/fixtures/cri, captured with one handler CRI-O loaded and one it ignored). No root needed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeStatusResponse } from './support/cri-status';
import { REPO } from './support/process';

const FIXTURES = join(REPO, 'test', 'fixtures', 'cri');

describe.each(['v1.36.3', 'v1.34.0'])('CRI-O %s Status answer', (version) => {
  const status = decodeStatusResponse(readFileSync(join(FIXTURES, `crio-${version}-status-verbose.pb`)));
  const crictl = JSON.parse(readFileSync(join(FIXTURES, `crio-${version}-crictl-info.json`), 'utf8')) as { runtimeHandlers: Array<{ name?: string }>; config: unknown };

  test('runtime_handlers: the loaded handler and runc (and the default as ""), not the ignored one', () => {
    expect([...status.handlers].sort()).toEqual(['', 'crun-ok', 'runc']);
    expect(crictl.runtimeHandlers.map((h) => h.name ?? '').sort()).toEqual([...status.handlers].sort());
  });

  test('verbose info has one key, config: its crio.Runtimes are the loaded handlers only', () => {
    expect(Object.keys(status.info)).toEqual(['config']);
    const config = JSON.parse(status.info.config) as { crio: { Runtimes: Record<string, { AllowedAnnotations?: string[] }> } };
    expect(Object.keys(config.crio.Runtimes).sort()).toEqual(['crun-ok', 'runc']);
    expect(config.crio.Runtimes['crun-ok'].AllowedAnnotations).toEqual(['module.wasm.image/variant', 'run.oci.']);
    expect(config).toEqual(crictl.config);
  });
});
