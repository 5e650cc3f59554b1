// `npm run synth`: bundles the cdk8s app with esbuild (milliseconds, no type-check — `npm run build` and the
// tests type-check) and runs it, instead of starting ts-node on ~1 MB of generated imports.
import { build } from 'esbuild';
import { mkdirSync, readdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const repo = join(dirname(fileURLToPath(import.meta.url)), '..');
// Inside the repo's node_modules so the bundle's external requires (cdk8s, constructs, …) resolve.
const outdir = join(repo, 'node_modules', '.cache', 'knawd-synth');
mkdirSync(outdir, { recursive: true });
const outfile = join(outdir, 'main.js');
await build({
  entryPoints: [join(repo, 'charts-src', 'main.ts')],
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  outfile,
  logLevel: 'warning',
  packages: 'external',
});
const app = createRequire(import.meta.url)(outfile);
app.synthAll(join(repo, 'dist'), join(repo, 'charts-src', 'chart'));
const matrixChanged = app.synthSupportMatrix(repo);
const files = (dir) => readdirSync(join(repo, dir), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).length;
console.log(
  `synth: wrote dist/charts/knawd-deployer (${files('dist/charts/knawd-deployer')} files) and dist/manifests (${files('dist/manifests')} files); ${app.SUPPORT_MATRIX_PAGE} support matrix ${matrixChanged ? 'updated' : 'unchanged'}`,
);
