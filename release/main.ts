/**
 * `npm run release -- --registry <host[:port][/path]> [--plain-http] [--ca-file <pem>] [--sign-key <key>]`:
 * builds the images if needed (npm run image), then pushes into the registry, in this order, so that whatever
 * a failure leaves behind is completed by the next run and the chart (what users install) only appears once
 * everything it names is there:
 *   1. the installer image of each ociType, the WASI test and WASM service images: each image's OCI index (every
 *      architecture) as a whole, by digest;
 *   2. each image's SBOM (CycloneDX, cosign's `sha256-<digest>.sbom` tag);
 *   3. with --sign-key: cosign signatures of the images and of their SBOMs;
 *   4. the chart (helm push), its values pinned to the pushed digests (`image.digests` for every ociType), then
 *      its signature.
 * Prints the `helm install oci://…` command and writes the release record (--record, default
 * build/release/release.json).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs, ReleaseArgs, UsageError } from './args';
import { packageChart, pinnedChart } from './chart';
import {
  archiveDigest, attachSbom, checkReachable, Connection, keyFingerprint, lastLine, publicKey, pushChart, pushImage, ReleaseError, sign, Tools,
} from './registry';
import { imageSbom } from './sbom';
import { RUNTIME_NAMES, RuntimeName } from '../lib/catalog/runtimes';
import { ImageKey, ImageRecordFile, isInstallerKey, RecordedImage, sbomInputs } from './sbom-inputs';

const REPO = resolve(__dirname, '..');
const CHART_NAME = 'knawd-deployer';

export interface ReleasedImage {
  readonly key: ImageKey;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
}

export interface ReleaseRecord {
  readonly registry: string;
  readonly images: readonly ReleasedImage[];
  readonly chart: { readonly reference: string; readonly version: string; readonly digest: string };
  readonly signed: boolean;
  readonly pushed: readonly string[];
  readonly installCommand: string;
}

function log(line: string): void {
  process.stderr.write(`release: ${line}\n`);
}

function tools(): Tools {
  const bin = join(REPO, '.tools', 'bin');
  return { skopeo: 'skopeo', helm: join(bin, 'helm'), cosign: join(bin, 'cosign') };
}

function checkTools(t: Tools): void {
  for (const [name, path] of Object.entries(t)) {
    const r = spawnSync(path, [name === 'skopeo' ? '--version' : 'version'], { encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new ReleaseError(`${name} (${path}) does not run: install it with npm run tools`);
  }
}

function buildImages(): ImageRecordFile {
  log('npm run image (cached: seconds when nothing changed) ...');
  const r = spawnSync('bash', [join(REPO, 'runtime-artifacts', 'build-image.sh')], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new ReleaseError(`npm run image failed: ${lastLine(r.stderr || r.stdout)}`);
  return JSON.parse(readFileSync(join(REPO, 'build', 'image', 'image.json'), 'utf8')) as ImageRecordFile;
}

/**
 * What is released: every image's OCI index (every architecture under one digest), the installer image of each
 * ociType first. A build without them is refused: a release must not name an image for one architecture only.
 */
function releasedImages(record: ImageRecordFile): Array<RecordedImage & { key: ImageKey }> {
  const index = record.index;
  const missing = (what: string): never => {
    throw new ReleaseError(`build/image/image.json records no image index of ${what} (index.${what === 'wasi' ? 'wasiTestImage' : what === 'service' ? 'wasmServiceImage' : `installerImages["${what}"]`}): run npm run image`);
  };
  return [
    ...RUNTIME_NAMES.map((ociType) => ({ key: ociType as ImageKey, ...(index?.installerImages?.[ociType] ?? missing(ociType)) })),
    { key: 'wasi' as const, ...(index?.wasiTestImage ?? missing('wasi')) },
    { key: 'service' as const, ...(index?.wasmServiceImage ?? missing('service')) },
  ];
}

export async function release(args: ReleaseArgs): Promise<ReleaseRecord> {
  const t = tools();
  checkTools(t);
  const conn: Connection = { registry: args.registry, plainHttp: args.plainHttp, caFile: args.caFile };
  await checkReachable(conn);
  const work = mkdtempSync(join(tmpdir(), 'knawd-release-'));
  try {
    let pub: string | undefined;
    if (args.signKey) {
      pub = join(work, 'cosign.pub');
      writeFileSync(pub, publicKey(conn, t, args.signKey));
    }
    const record = buildImages();
    const pushed: string[] = [];
    const images = releasedImages(record).map((image) => {
      const archive = join(REPO, 'build', 'image', 'index', image.archive);
      const digest = archiveDigest(archive);
      if (digest !== image.digest) throw new ReleaseError(`build/image/index/${image.archive} holds ${digest}, not the ${image.digest} build/image/image.json records: run npm run image`);
      const [, name, tag] = /([^/]+):([^:/]+)$/.exec(image.name) ?? [];
      if (!name) throw new ReleaseError(`build/image/image.json names ${image.name}: no name:tag`);
      return { key: image.key, repository: `${args.registry}/${name}`, tag, digest, archive };
    });
    for (const image of images) {
      if (pushImage(conn, t, image.archive, `${image.repository}:${image.tag}`, image.digest)) pushed.push(`${image.repository}:${image.tag}`);
      log(`${image.repository}:${image.tag}@${image.digest}`);
    }
    for (const image of images) {
      const file = join(work, `${image.key}.cdx.json`);
      writeFileSync(file, `${JSON.stringify(imageSbom(sbomInputs(REPO, record, image.key, image.digest)), null, 2)}\n`);
      if (attachSbom(conn, t, image.repository, image.digest, file)) pushed.push(`${image.repository} SBOM`);
    }
    if (args.signKey && pub) {
      for (const image of images) {
        const ref = `${image.repository}@${image.digest}`;
        if (sign(conn, t, args.signKey, pub, ref)) pushed.push(`${ref} signature`);
        if (sign(conn, t, args.signKey, pub, ref, 'sbom')) pushed.push(`${ref} SBOM signature`);
      }
    }
    const chartDir = pinnedChart(join(REPO, 'dist', 'charts', CHART_NAME), join(work, 'chart'), CHART_NAME, {
      installers: images.filter((i) => isInstallerKey(i.key)).map((i) => ({ ociType: i.key as RuntimeName, repository: i.repository, digest: i.digest })),
      testImage: images.find((i) => i.key === 'wasi')!,
      ...(pub ? { signKey: { fingerprint: keyFingerprint(readFileSync(pub, 'utf8')), ...(args.signKeyUrl ? { url: args.signKeyUrl } : {}) } } : {}),
    });
    const version = (/^version: (\S+)$/m.exec(readFileSync(join(chartDir, 'Chart.yaml'), 'utf8')) ?? [])[1];
    if (!version) throw new ReleaseError('dist/charts/knawd-deployer/Chart.yaml has no version');
    const archive = join(work, `${CHART_NAME}-${version}.tgz`);
    packageChart(chartDir, archive);
    const chart = pushChart(conn, t, archive, CHART_NAME, version);
    if (chart.pushed) pushed.push(`${args.registry}/${CHART_NAME}:${version}`);
    const chartRef = `${args.registry}/${CHART_NAME}`;
    if (args.signKey && pub && sign(conn, t, args.signKey, pub, `${chartRef}@${chart.digest}`)) pushed.push(`${chartRef}@${chart.digest} signature`);
    const tls = args.plainHttp ? ' --plain-http' : args.caFile ? ` --ca-file ${args.caFile}` : '';
    const installCommand = `helm install ${CHART_NAME} oci://${chartRef} --version ${version}${tls} --namespace knawd --create-namespace`;
    return { registry: args.registry, images: images.map(({ key, repository, tag, digest }) => ({ key, repository, tag, digest })), chart: { reference: chartRef, version, digest: chart.digest }, signed: Boolean(args.signKey), pushed, installCommand };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  let args: ReleaseArgs;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`release: error: ${error.message}\n`);
    process.exit(2);
  }
  try {
    const record = await release(args);
    const recordFile = args.record ?? join(REPO, 'build', 'release', 'release.json');
    mkdirSync(dirname(recordFile), { recursive: true });
    writeFileSync(recordFile, `${JSON.stringify(record, null, 2)}\n`);
    log(record.pushed.length ? `pushed ${record.pushed.length}: ${record.pushed.join(', ')}` : 'the registry already held this release: nothing pushed');
    log(`chart ${record.chart.reference}:${record.chart.version}@${record.chart.digest}`);
    if (record.signed) log(`verify: cosign verify --key cosign.pub --insecure-ignore-tlog=true ${record.images[0].repository}@${record.images[0].digest}`);
    process.stdout.write(`${record.installCommand}\n`);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`release: error: ${message.split('\n')[0]}\n`);
    process.exit(1);
  }
}

if (require.main === module) void main();
