/**
 * The benchmark's program in its forms (demo/cluster/images/bench-images.ts, issue 33): a second build from the
 * same sources has the same image digests as the cached one (pinned by content), the native binary computes the
 * digest the bench checks and refuses bad arguments, the generated module is ~5 MB, and http.c compiled natively
 * serves in a network namespace this test creates (the only place its traffic goes).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WASM_SERVICE_ANSWER } from '../../lib/catalog';
import { BENCH_HELLO, benchDigest, benchImages, BenchImages, bigModuleWat, buildBenchImages } from '../../demo/cluster/images/bench-images';
import { REPO } from '../../demo/cluster/process';

jest.setTimeout(5 * 60_000);

describe("the benchmark's program", () => {
  const dir = mkdtempSync(join(tmpdir(), 'knawd-bench-images-'));
  let again: BenchImages;
  beforeAll(() => {
    again = buildBenchImages(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('rebuilt from the same inputs, both images have the digests of the cached build', () => {
    const cached = benchImages();
    expect([again.wasm.manifestDigest, again.native.manifestDigest]).toEqual([cached.wasm.manifestDigest, cached.native.manifestDigest]);
    expect(again.bigModuleBytes).toBe(cached.bigModuleBytes);
  });

  test('the large module is generated the same every time and is about 5 MB', () => {
    expect(bigModuleWat(3, 2)).toBe(bigModuleWat(3, 2));
    expect(statSync(join(dir, 'big.wasm')).size).toBe(again.bigModuleBytes);
    expect(again.bigModuleBytes).toBeGreaterThan(4.5e6);
    expect(again.bigModuleBytes).toBeLessThan(5.5e6);
  });

  test('the native form: hello, the digest of the generated buffer, a usage line for anything else', () => {
    const bench = join(dir, 'bench');
    expect(execFileSync(bench, ['hello'], { encoding: 'utf8' })).toBe(`${BENCH_HELLO}\n`);
    expect(execFileSync(bench, ['sha256', '3'], { encoding: 'utf8' })).toBe(`sha256 ${benchDigest(3)} 3\n`);
    expect(benchDigest(1)).not.toBe(benchDigest(2));
    for (const bad of [['sha256', '0'], ['sha256', '2x'], ['nope']]) {
      const r = spawnSync(bench, bad, { encoding: 'utf8' });
      expect([r.status, r.stdout, r.stderr]).toEqual([2, '', 'usage: bench hello | bench sha256 <MiB, 1-1024> | bench idle\n']);
    }
  });

  test('http.c natively answers as the WASM service does (engine=native), under bounded load, inside its own netns', () => {
    const loadgen = join(dir, 'loadgen');
    execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-pthread', '-o', loadgen, join(REPO, 'test/bench/loadgen.c')]);
    const script = [
      'ip link set lo up',
      `PORT=8080 HOSTNAME=bench-test ${join(dir, 'http')} > /dev/null & server=$!`,
      'for i in $(seq 50); do curl -s -o /dev/null http://127.0.0.1:8080/healthz && break; sleep 0.1; done',
      'curl -s --max-time 5 http://127.0.0.1:8080/',
      `${loadgen} 127.0.0.1 8080 4 200 10`,
      'kill $server',
    ].join('\n');
    const out = execFileSync('unshare', ['--net', 'sh', '-ec', script], { encoding: 'utf8', timeout: 60_000 }).split('\n');
    const answer = WASM_SERVICE_ANSWER.exec(out[0]);
    expect(answer?.slice(1, 3)).toEqual(['native', 'bench-test']);
    expect(out[1]).toMatch(/^requests=200 errors=0 seconds=[\d.]+ rps=[\d.]+ p99_ms=[\d.]+$/);
  });
});
