/**
 * The images the end-to-end and node tests run, built here (no registry): a static pause binary for sandboxes,
 * the WASI hello module, and a static busybox for plain Linux containers. Each needs a Debian tool that
 * `npm run tools` installs (gcc + libc6-dev, wabt, busybox-static); a missing one fails with what provides it.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOciImage, BuiltImage } from './oci-image';
import { exec, must, REPO, requireExecutable } from '../process';

/** What the hello module prints (runtime-artifacts/local/hello.wat). */
export const WASM_LINE = 'hello from wasm via crun';
/** What the busybox image prints by default. */
export const PLAIN_LINE = 'plain linux ok';

export interface TestImageNames {
  readonly pause: string;
  readonly wasm: string;
  readonly busybox: string;
}

export type TestImages = Record<keyof TestImageNames, BuiltImage>;

/** Fails before any build unless every tool the images need is installed. */
export function requireImageTools(): { gcc: string; wat2wasm: string; busybox: string } {
  const wat2wasm = requireExecutable('/usr/bin/wat2wasm', "Debian's wabt package; `npm run tools` installs it");
  const busybox = requireExecutable('/bin/busybox', "Debian's busybox-static package; `npm run tools` installs it");
  if (!/statically linked/.test(exec('file', ['-L', busybox]).stdout) && exec('ldd', [busybox]).code === 0) {
    throw new Error(`${busybox} is not statically linked: install Debian's busybox-static (not busybox)`);
  }
  const gcc = requireExecutable('/usr/bin/gcc', "Debian's gcc and libc6-dev, for the static pause binary");
  return { gcc, wat2wasm, busybox };
}

/** Builds the three images under `buildDir` (which must exist). */
export function buildTestImages(names: TestImageNames, buildDir: string): TestImages {
  const { gcc, wat2wasm, busybox } = requireImageTools();
  mkdirSync(buildDir, { recursive: true });
  const pauseC = join(buildDir, 'pause.c');
  writeFileSync(
    pauseC,
    // Runs forever; as PID 1 of the pod's pid namespace, default-action signals are ignored, so SIGTERM/SIGINT
    // get a handler that exits (SIGKILL needs none).
    '#include <signal.h>\n#include <unistd.h>\nstatic void bye(int s) { (void)s; _exit(0); }\nint main(void) { signal(SIGTERM, bye); signal(SIGINT, bye); for (;;) pause(); }\n',
  );
  must(gcc, ['-static', '-O2', '-o', join(buildDir, 'pause'), pauseC]);
  must(wat2wasm, [join(REPO, 'runtime-artifacts/local/hello.wat'), '-o', join(buildDir, 'hello.wasm')]);
  return {
    pause: buildOciImage({ name: names.pause, files: [{ path: '/pause', from: join(buildDir, 'pause') }], entrypoint: ['/pause'] }, buildDir),
    wasm: buildOciImage({ name: names.wasm, files: [{ path: '/hello.wasm', from: join(buildDir, 'hello.wasm') }], entrypoint: ['/hello.wasm'] }, buildDir),
    busybox: buildOciImage({ name: names.busybox, files: [{ path: '/bin/busybox', from: busybox }], entrypoint: ['/bin/busybox'], cmd: ['echo', PLAIN_LINE] }, buildDir),
  };
}
