/**
 * Small tmpfs mounts for tests of full disks and of a root on another filesystem (needs root).
 * Unmount with `unmountTmpfs` after the server using it has closed.
 */
import { execFileSync } from 'node:child_process';

/** Mounts a tmpfs of `size` (e.g. `32m`) on `dir`; returns why not, or undefined when mounted. */
export function tryMountTmpfs(dir: string, size: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return (err as Error).message.split('\n')[0];
  }
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', ['-l', dir]);
}
