/**
 * The images the end-to-end and node tests run, built here (no registry): a static pause binary for sandboxes,
 * the WASI hello module, a static busybox for plain Linux containers, and the WASI probe (runtime-artifacts/local/
 * wasi-probe.c, C on Debian's wasi-libc) whose argument picks the behaviour it shows. Each needs a Debian tool that
 * `npm run tools` installs (gcc + libc6-dev, wabt, busybox-static, clang-14 + lld-14 + wasi-libc +
 * libclang-rt-14-dev-wasm32); a missing one fails with what provides it.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOciImage, SingleLayerImage } from './oci-image';
import { exec, must, REPO, requireExecutable } from '../process';

/** What the hello module prints (runtime-artifacts/local/hello.wat). */
export const WASM_LINE = 'hello from wasm via crun';
/** What the busybox image prints by default. */
export const PLAIN_LINE = 'plain linux ok';

export interface TestImageNames {
  readonly pause: string;
  readonly wasm: string;
  readonly busybox: string;
  readonly probe: string;
}

/** What the probe image holds at /etc/wasi-probe/input.txt (`wasi-probe files` prints it). */
export const PROBE_INPUT = 'from the image';

const PROBE_TOOLS = "Debian's clang-14, lld-14, wasi-libc and libclang-rt-14-dev-wasm32; `npm run tools` installs them";

/** Compiles runtime-artifacts/local/wasi-probe.c for wasm32-wasi into `<buildDir>/wasi-probe.wasm`. */
export function buildWasiProbe(buildDir: string): string {
  const clang = requireExecutable('/usr/bin/clang-14', PROBE_TOOLS);
  requireExecutable('/usr/bin/wasm-ld-14', PROBE_TOOLS);
  if (!existsSync('/usr/lib/wasm32-wasi/libc.a') || !existsSync('/usr/lib/llvm-14/lib/clang/14.0.6/lib/wasi/libclang_rt.builtins-wasm32.a')) {
    throw new Error(`wasi-libc or the wasm32 compiler-rt is missing (${PROBE_TOOLS})`);
  }
  const out = join(buildDir, 'wasi-probe.wasm');
  must(clang, ['--target=wasm32-wasi', '--sysroot=/usr', '-O2', '-Wall', '-Wextra', '-Werror', '-Wl,--strip-all', '-o', out, join(REPO, 'runtime-artifacts/local/wasi-probe.c')]);
  return out;
}

/** The probe image: /probe.wasm (entrypoint), /etc/wasi-probe/input.txt, an empty /tmp. */
export function buildProbeImage(name: string, buildDir: string): SingleLayerImage {
  return buildOciImage(
    {
      name,
      files: [
        { path: '/probe.wasm', from: buildWasiProbe(buildDir) },
        { path: '/etc/wasi-probe/input.txt', content: `${PROBE_INPUT}\n`, mode: 0o644 },
        { path: '/tmp/.keep', content: '', mode: 0o644 },
      ],
      entrypoint: ['/probe.wasm'],
    },
    buildDir,
  );
}

export type TestImages = Record<keyof TestImageNames, SingleLayerImage>;

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
    probe: buildProbeImage(names.probe, buildDir),
  };
}
