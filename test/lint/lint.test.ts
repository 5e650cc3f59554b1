/**
 * The lint gate: third-party linters on everything the project renders — every shipped pair's install and
 * uninstall manifest (auto's with and without the SCC too), the Knative and node-restriction files, and the chart rendered for every pair (hooks
 * and the test pod included, Knative and the admission policy switched on) — with kube-score and checkov, as
 * `npm run tools` provides them. A finding that test/lint/exemptions.yaml does not name, with its reason, fails
 * the test; so does an exemption that no longer matches anything (it would hide the next real finding).
 * kube-linter and chart-testing (`ct lint`) are not run: the Go module proxy refuses both.
 *
 * checkov runs in a network namespace of its own with only loopback (and --skip-download): it would otherwise
 * try to fetch its guideline mappings from the internet. It is single-threaded and the slowest part of `npm test`'s
 * tail, so the rendered files are split in two halves, each checked by a checkov of its own at the same time.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { KNATIVE_SERVING_API, OPENSHIFT_SECURITY_API } from '../../lib/catalog';
import { manifestVariants } from '../../lib/render/manifests';
import { REPO, run, toolPath } from '../support/tools';

jest.setTimeout(300_000);

const MANIFESTS = join(REPO, 'dist', 'manifests');
const CHART = join(REPO, 'dist', 'charts', 'knawd-deployer');

interface Exemption {
  readonly check: string;
  readonly objects: readonly string[];
  readonly why: string;
}
type Linter = 'kube-score' | 'checkov';
const EXEMPTIONS = parse(readFileSync(join(__dirname, 'exemptions.yaml'), 'utf8')) as Record<Linter, Exemption[]>;

/** One finding: which linter, which check, on which object (`Kind/name`). */
interface Finding {
  readonly linter: Linter;
  readonly check: string;
  readonly object: string;
  readonly detail: string;
}

/** Every rendered file, written alternately under `dirs` (one per checkov run). */
function renderAll(dirs: readonly string[]): string[] {
  const files: string[] = [];
  const put = (name: string, text: string): void => {
    const file = join(dirs[files.length % dirs.length], name);
    writeFileSync(file, text);
    files.push(file);
  };
  put('knative.yaml', readFileSync(join(MANIFESTS, 'knative.yaml'), 'utf8'));
  put('node-restriction.yaml', readFileSync(join(MANIFESTS, 'node-restriction.yaml'), 'utf8'));
  for (const { dir, props } of manifestVariants()) {
    const pair = `${dir}-${props.ociType}`;
    put(`${pair}.yaml`, readFileSync(join(MANIFESTS, dir, `${props.ociType}.yaml`), 'utf8'));
    put(`${pair}.uninstall.yaml`, readFileSync(join(MANIFESTS, dir, `${props.ociType}.uninstall.yaml`), 'utf8'));
    const chart = run(toolPath('helm'), [
      'template', 'knawd', CHART, '--namespace', 'knawd', '--set', `target=${props.target}`, '--set', `ociType=${props.ociType}`,
      '--set', 'knative.runtimeClassName.enabled=true', '--api-versions', KNATIVE_SERVING_API, '--api-versions', 'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy',
      ...(props.openshift ? ['--api-versions', OPENSHIFT_SECURITY_API] : []),
    ]);
    if (chart.code !== 0) throw new Error(`helm template ${pair} failed: ${chart.stderr}`);
    put(`${pair}.chart.yaml`, chart.stdout);
  }
  return files;
}

/** A linter's run, its (large) JSON report kept whole. */
function lint(command: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { encoding: 'utf8', maxBuffer: 512 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (error as NodeJS.ErrnoException & { code?: number | string }).code : 0;
      if (typeof code !== 'number') return reject(error);
      resolve({ code, stdout, stderr });
    });
  });
}

async function kubeScore(files: string[]): Promise<Finding[]> {
  const r = await lint(toolPath('kube-score'), ['score', '-o', 'json', ...files]);
  // Exit 1 means "found something": the JSON says what.
  if (r.code !== 0 && r.code !== 1) throw new Error(`kube-score failed (exit ${r.code}): ${r.stderr}`);
  const scored = JSON.parse(r.stdout) as { type_meta: { kind: string }; object_meta: { name: string }; checks: { check: { id: string }; grade: number; skipped: boolean; comments: { summary: string }[] | null }[] }[];
  return scored.flatMap((o) =>
    o.checks
      .filter((c) => !c.skipped && c.grade < 10)
      .map((c) => ({ linter: 'kube-score' as const, check: c.check.id, object: `${o.type_meta.kind}/${o.object_meta.name}`, detail: (c.comments ?? []).map((x) => x.summary).join('; ') })),
  );
}

async function checkov(dir: string): Promise<Finding[]> {
  const r = await lint('unshare', ['--net', toolPath('checkov'), '-d', dir, '--framework', 'kubernetes', '-o', 'json', '--quiet', '--compact', '--skip-download']);
  if (r.code !== 0 && r.code !== 1) throw new Error(`checkov failed (exit ${r.code}): ${r.stderr}`);
  const parsed = JSON.parse(r.stdout) as { results: { failed_checks: { check_id: string; check_name: string; resource: string }[] } } | { results: { failed_checks: { check_id: string; check_name: string; resource: string }[] } }[];
  const reports = Array.isArray(parsed) ? parsed : [parsed];
  // checkov names a resource Kind.namespace.name (graph checks append the labels): Kind/name is enough here.
  return reports.flatMap((report) =>
    report.results.failed_checks.map((f) => {
      const [kind, namespace, ...rest] = f.resource.split('.');
      const name = rest.length > 0 ? rest[0] : namespace;
      return { linter: 'checkov' as const, check: f.check_id, object: `${kind}/${name}`, detail: f.check_name };
    }),
  );
}

function exempted(f: Finding): boolean {
  return EXEMPTIONS[f.linter].some((e) => e.check === f.check && e.objects.includes(f.object));
}

describe('the lint gate on every rendered pair', () => {
  let findings: Finding[];
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'knawd-lint-'));
    const halves = ['a', 'b'].map((h) => join(dir, 'rendered', h));
    for (const h of halves) mkdirSync(h, { recursive: true });
    const files = renderAll(halves);
    findings = (await Promise.all([kubeScore(files), ...halves.map((h) => checkov(h))])).flat();
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('every exemption says why', () => {
    for (const linter of ['kube-score', 'checkov'] as const) {
      for (const e of EXEMPTIONS[linter]) expect({ linter, check: e.check, why: e.why.trim().length > 20 }).toEqual({ linter, check: e.check, why: true });
    }
  });

  test('no finding outside the exemptions', () => {
    const open = [...new Set(findings.filter((f) => !exempted(f)).map((f) => `${f.linter} ${f.check} ${f.object}: ${f.detail}`))].sort();
    expect(open).toEqual([]);
  });

  test('every exemption still matches a finding', () => {
    const unused = (['kube-score', 'checkov'] as const).flatMap((linter) =>
      EXEMPTIONS[linter].flatMap((e) => e.objects.filter((o) => !findings.some((f) => f.linter === linter && f.check === e.check && f.object === o)).map((o) => `${linter} ${e.check} ${o}`)),
    );
    expect(unused).toEqual([]);
  });
});
