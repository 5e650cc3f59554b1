/**
 * Knative Serving's images as demo/cluster/images/knative-images.ts makes them: FROM scratch plus the one static
 * binary `npm run tools` built from knative.dev/serving, run as a numeric non-root user, and reproducible (a
 * second build from the same binary has the same digest).
 */
import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { imageConfig } from '../../demo/cluster/images/built-image';
import { buildOciImage } from '../../demo/cluster/images/oci-image';
import { imageName, KNATIVE_COMPONENTS, KNATIVE_USER, knativeImages } from '../../demo/cluster/images/knative-images';

jest.setTimeout(5 * 60_000);

describe("Knative Serving's images", () => {
  const kn = knativeImages();

  test.each(KNATIVE_COMPONENTS)('%s: one layer holding only its static binary, entrypoint that binary, non-root', (component) => {
    const image = kn.images[component];
    expect(image.name).toBe(imageName(component, kn.release));
    const config = imageConfig(image.archive) as { config: { Entrypoint: string[]; User: string }; rootfs: { diff_ids: string[] } };
    expect(config.config.Entrypoint).toEqual([`/ko-app/${component}`]);
    expect(config.config.User).toBe(KNATIVE_USER);
    expect(config.rootfs.diff_ids).toHaveLength(1);
    const index = JSON.parse(execFileSync('tar', ['-xOf', image.archive, 'index.json'], { encoding: 'utf8' }));
    const manifest = JSON.parse(execFileSync('tar', ['-xOf', image.archive, `blobs/sha256/${index.manifests[0].digest.slice(7)}`], { encoding: 'utf8' }));
    const layer = execFileSync('tar', ['-xOf', image.archive, `blobs/sha256/${manifest.layers[0].digest.slice(7)}`], { maxBuffer: 1 << 30 });
    const entries = execFileSync('tar', ['-tzf', '-'], { input: layer, encoding: 'utf8' }).trim().split('\n');
    expect(entries).toEqual(['./', './ko-app/', `./ko-app/${component}`]);
  });

  test('reproducible: building the queue-proxy image again gives the same digest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'knawd-knative-image-'));
    try {
      const again = buildOciImage({ name: imageName('queue', kn.release), files: [{ path: '/ko-app/queue', from: join(kn.release.dir, 'bin', 'queue') }], entrypoint: ['/ko-app/queue'], user: KNATIVE_USER }, dir);
      expect(again.manifestDigest).toBe(kn.images.queue.manifestDigest);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
