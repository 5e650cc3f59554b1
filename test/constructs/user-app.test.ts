import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const REPO = join(__dirname, '..', '..');

function objectsOf(yamlText: string): unknown[] {
  return parseAllDocuments(yamlText).map((d) => d.toJS()).filter((o) => o);
}

test('a fresh cdk8s app imports the package as a user would and gets the objects of dist', () => {
  execFileSync('npm', ['run', '-s', 'build'], { cwd: REPO, stdio: 'pipe' });
  const app = mkdtempSync(join(tmpdir(), 'knawd-user-app-'));
  try {
    mkdirSync(join(app, 'node_modules'));
    symlinkSync(REPO, join(app, 'node_modules', 'knawd-deployer'));
    for (const dep of ['cdk8s', 'constructs', '@types']) symlinkSync(join(REPO, 'node_modules', dep), join(app, 'node_modules', dep));
    writeFileSync(
      join(app, 'main.ts'),
      [
        "import { App, Chart } from 'cdk8s';",
        "import { KnawdDeployer } from 'knawd-deployer';",
        'const app = new App();',
        "const chart = new Chart(app, 'wasm');",
        "new KnawdDeployer(chart, 'knawd', { target: 'microk8s', ociType: 'crun-wasmtime' });",
        'process.stdout.write(app.synthYaml());',
        '',
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'commonjs', target: 'ES2022', esModuleInterop: true, skipLibCheck: false, types: ['node'] } }),
    );
    execFileSync(process.execPath, [join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app], { stdio: 'pipe' });
    const yamlText = execFileSync(process.execPath, [join(app, 'main.js')], { cwd: app, encoding: 'utf8' });
    const dist = readFileSync(join(REPO, 'dist', 'manifests', 'microk8s', 'crun-wasmtime.yaml'), 'utf8');
    expect(objectsOf(yamlText)).toEqual(objectsOf(dist));
  } finally {
    rmSync(app, { recursive: true, force: true });
  }
}, 120000);
