/**
 * Small tmpfs mounts for tests of full disks and of a root on another filesystem (needs root;
 * a test without it skips, or fails under CI=true).
 */
import { execFileSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './temp-dir.ts';
import { skipOrFail } from './skip.ts';

/** Mounts a tmpfs of `size` (e.g. `32m`) on `dir`; returns why not, or undefined when mounted. */
export function tryMountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

export interface TmpfsFixture {
  /** The temp dir (on the ordinary disk). */
  readonly dir: string;
  /** The tmpfs mount point, `<dir>/<name>`. */
  readonly mnt: string;
  /** Runs `fn` at cleanup before the unmount (stop servers that use the mount here). */
  beforeUnmount(fn: () => Promise<void> | void): void;
}

/**
 * A temp dir with a tmpfs of `size` mounted at `<dir>/<name>`. One cleanup, in order: what
 * was registered with `beforeUnmount`, then the unmount, then the temp dir. Undefined when
 * the test was skipped (no root).
 */
export async function tmpfsFixture(t: { after: (fn: () => Promise<void>) => void; skip: (message?: string) => void }, o: { prefix: string; name: string; size: string }): Promise<TmpfsFixture | undefined> {
  const tmp = await makeTempDir(o.prefix);
  const mnt = path.join(tmp.dir, o.name);
  const first: Array<() => Promise<void> | void> = [];
  let mounted = false;
  t.after(async () => {
    for (const fn of first) await fn();
    if (mounted) execFileSync('umount', ['-l', mnt]);
    await tmp.remove();
  });
  await mkdir(mnt);
  const why = tryMountTmpfs(mnt, o.size);
  if (why !== undefined) {
    skipOrFail(t, `cannot mount a tmpfs here (needs root): ${why}`);
    return undefined;
  }
  mounted = true;
  return { dir: tmp.dir, mnt, beforeUnmount: (fn) => { first.push(fn); } };
}
