/**
 * The construct library as its users get it: `npm pack` (prepack builds), the tarball's contents, and a fresh
 * cdk8s app that installs the tarball next to the NEWEST cdk8s, cdk8s-plus-27 and constructs the registry
 * serves, and again next to the OLDEST the peer ranges allow, compiles with `strict` (and the libraries' own
 * declarations checked), synthesizes, and yields exactly the objects of dist/manifests.
 *
 * The npm registry is reached through npm itself (the lead's allowance for this test); `--prefer-offline`
 * serves a warm run from npm's cache (~/.npm, outside the checkout).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO } from '../support/tools';

jest.setTimeout(15 * 60_000);

const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as {
  name: string;
  version: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  peerDependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};
const PEERS = ['cdk8s', 'cdk8s-plus-27', 'constructs'] as const;

function npm(args: string[], cwd: string): string {
  try {
    return execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`npm ${args.join(' ')} (in ${cwd}) failed: ${e.stderr || e.stdout || e.message}`);
  }
}

/** The lowest version a `^x.y.z` peer range allows. */
function floor(range: string): string {
  const m = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  if (!m) throw new Error(`peer range ${range} is not ^x.y.z: this test needs its floor`);
  return m[1];
}

function objects(text: string): any[] {
  return parseAllDocuments(text).map((d) => d.toJS()).filter((o) => o);
}

const APP = `import { App, Chart } from 'cdk8s';
import { KnawdDeployer, KnawdDeployerProps, KnawdUninstaller } from 'knawd-deployer';

const app = new App({ outdir: 'out' });
const props: KnawdDeployerProps = { target: 'ubuntu_22_04', ociType: 'crun-wasmtime' };
new KnawdDeployer(new Chart(app, 'install'), 'knawd', props);
new KnawdUninstaller(new Chart(app, 'uninstall'), 'knawd', props);
app.synth();
`;

describe('the packed package', () => {
  let work: string;
  let tarball: string;

  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'knawd-pack-'));
    const out = npm(['pack', '--pack-destination', work, '--json'], REPO);
    const [{ filename }] = JSON.parse(out.slice(out.indexOf('['))) as { filename: string }[];
    tarball = join(work, filename);
  });

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  test('holds the built library and nothing else', () => {
    const files = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).trim().split('\n').map((f) => f.replace(/^package\//, ''));
    const unexpected = files.filter((f) => !/^build\/lib\/.+\.(js|d\.ts|json)$/.test(f) && !['package.json', 'README.md', 'build/package.json'].includes(f));
    expect(unexpected).toEqual([]);
    for (const entry of [pkg.main, pkg.types, ...Object.values(pkg.bin), 'build/lib/imports/k8s.js', 'build/lib/constructs/knawd-deployer.d.ts', 'build/lib/catalog/wasi-test-image.json']) {
      expect(files).toContain(entry);
    }
    // No sources, tests, rendered chart or tools.
    expect(files.filter((f) => /^(lib|test|dist|charts-src|tools)\//.test(f) || (/\.ts$/.test(f) && !/\.d\.ts$/.test(f)))).toEqual([]);
  });

  test('declares cdk8s, cdk8s-plus-27 and constructs as peers, pinned for its own tests', () => {
    for (const peer of PEERS) {
      expect(pkg.peerDependencies[peer]).toMatch(/^\^\d+\.\d+\.\d+$/);
      expect(pkg.devDependencies[peer]).toMatch(/^\d+\.\d+\.\d+$/);
    }
    expect(Object.values(pkg.devDependencies).filter((v) => !/^\d+\.\d+\.\d+$/.test(v))).toEqual([]);
  });

  describe.each([
    ['the newest', (peer: string) => npm(['view', peer, 'version'], REPO).trim()],
    ['the oldest supported', (peer: string) => floor(pkg.peerDependencies[peer])],
  ])('in a fresh cdk8s app with %s cdk8s, cdk8s-plus-27 and constructs', (_which, versionOf) => {
    let app: string;
    let versions: Record<string, string>;

    beforeAll(() => {
      app = join(work, _which.replace(/\W+/g, '-'));
      mkdirSync(app);
      versions = Object.fromEntries(PEERS.map((p) => [p, versionOf(p)]));
      const dependencies = { ...versions, 'knawd-deployer': `file:${tarball}`, typescript: pkg.devDependencies.typescript, '@types/node': pkg.devDependencies['@types/node'] };
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'user-app', private: true, dependencies }, null, 2));
      writeFileSync(
        join(app, 'tsconfig.json'),
        JSON.stringify({ compilerOptions: { strict: true, target: 'ES2022', module: 'commonjs', esModuleInterop: true, skipLibCheck: false, types: ['node'] }, include: ['main.ts'] }),
      );
      writeFileSync(join(app, 'main.ts'), APP);
      npm(['install', '--prefer-offline', '--ignore-scripts'], app);
    });

    test('installs one copy of each peer, the versions asked for', () => {
      const listed = JSON.parse(npm(['ls', '--all', '--json', ...PEERS], app)) as { dependencies: Record<string, { version: string; dependencies?: Record<string, { version: string }> }> };
      for (const peer of PEERS) expect({ peer, version: listed.dependencies[peer]?.version }).toEqual({ peer, version: versions[peer] });
      // knawd-deployer brings no copy of its own (a nested constructs copy gives "separate declarations of a
      // private property" when the user's Chart is passed as its scope).
      expect(readdirSync(join(app, 'node_modules', 'knawd-deployer'))).not.toContain('node_modules');
    });

    test('compiles strictly, synthesizes, and yields exactly the objects of dist/manifests', () => {
      execFileSync(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: app, encoding: 'utf8' });
      execFileSync(process.execPath, ['main.js'], { cwd: app });
      const synthesized = (chart: string) => objects(readFileSync(join(app, 'out', `${chart}.k8s.yaml`), 'utf8'));
      const dist = (file: string) => objects(readFileSync(join(REPO, 'dist', 'manifests', 'ubuntu_22_04', file), 'utf8'));
      expect(synthesized('install')).toEqual(dist('crun-wasmtime.yaml'));
      expect(synthesized('uninstall')).toEqual(dist('crun-wasmtime.uninstall.yaml'));
    });
  });
});
