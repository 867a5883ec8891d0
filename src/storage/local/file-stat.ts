/** A filesystem stat as the backend-neutral FileStat. */
import type { BigIntStats } from 'node:fs';
import type { FileStat } from '../types.ts';

export function toFileStat(st: BigIntStats): FileStat {
  return {
    type: st.isDirectory() ? 'directory' : 'file',
    size: Number(st.size),
    mtimeMs: Number(st.mtimeNs / 1_000_000n),
    mtimeNs: st.mtimeNs,
    ino: st.ino,
    dev: st.dev,
    mode: Number(st.mode),
  };
}
