/**
 * binfmt_misc entries registered for one test's duration and removed after, never left registered (issue 29
 * allows an emulator registered by a test that way). The kernel's table is the machine's: each entry is named
 * `knawd-test-<arch>`, one left over by a killed run is removed before registering, and the entries cover only
 * architectures nothing else on this machine runs. Flag F opens the emulator at registration, so a program
 * chrooted into an image whose own file system has no emulator still runs under it.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BinfmtEntry {
  readonly arch: string;
  /** The emulator (static), by its path on this machine. */
  readonly interpreter: string;
}

/**
 * ELF header magic and mask per architecture, as qemu's scripts/qemu-binfmt-conf.sh gives them: 64-bit, the
 * architecture's byte order and e_machine; the OS ABI byte and ET_EXEC/ET_DYN masked out.
 */
const ELF: Readonly<Record<string, { readonly magic: string; readonly mask: string }>> = {
  s390x: {
    magic: '\\x7fELF\\x02\\x02\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x16',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff',
  },
  ppc64le: {
    magic: '\\x7fELF\\x02\\x01\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x00\\x02\\x00\\x15\\x00',
    mask: '\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\x00\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xff\\xfe\\xff\\xff\\xff',
  },
};

const SYSTEM_MOUNT = '/proc/sys/fs/binfmt_misc';

export function binfmtName(arch: string): string {
  return `knawd-test-${arch}`;
}

/** Runs `fn` with `entries` registered; removes them afterwards whatever `fn` does. */
export async function withBinfmt<T>(entries: readonly BinfmtEntry[], fn: (registered: () => string[]) => Promise<T>): Promise<T> {
  const dir = mountControl();
  const names: string[] = [];
  try {
    for (const e of entries) {
      const elf = ELF[e.arch];
      if (!elf) throw new Error(`no ELF magic known for ${e.arch}; known: ${Object.keys(ELF).join(', ')}`);
      remove(dir.path, binfmtName(e.arch));
      writeFileSync(join(dir.path, 'register'), `:${binfmtName(e.arch)}:M::${elf.magic}:${elf.mask}:${e.interpreter}:F`);
      names.push(binfmtName(e.arch));
    }
    return await fn(() => readdirSync(dir.path).filter((n) => n.startsWith('knawd-test-')));
  } finally {
    names.forEach((name) => remove(dir.path, name));
    dir.release();
  }
}

/** Our entries registered now (none, once {@link withBinfmt} returned). */
export function binfmtLeftovers(): string[] {
  const dir = mountControl();
  try {
    return readdirSync(dir.path).filter((n) => n.startsWith('knawd-test-'));
  } finally {
    dir.release();
  }
}

function remove(dir: string, name: string): void {
  if (existsSync(join(dir, name))) writeFileSync(join(dir, name), '-1');
}

/** binfmt_misc's control files: the machine's mount when there is one, else a mount of our own until released. */
function mountControl(): { path: string; release: () => void } {
  if (existsSync(join(SYSTEM_MOUNT, 'register'))) return { path: SYSTEM_MOUNT, release: () => undefined };
  const dir = mkdtempSync(join(tmpdir(), 'knawd-binfmt-'));
  try {
    execFileSync('mount', ['-t', 'binfmt_misc', 'binfmt_misc', dir]);
  } catch (error) {
    rmdirSync(dir);
    throw new Error(`cannot mount binfmt_misc (needs root and the binfmt_misc module): ${(error as Error).message}`);
  }
  return {
    path: dir,
    release: () => {
      execFileSync('umount', [dir]);
      rmdirSync(dir);
    },
  };
}
