/**
 * Atomic JSON state files: write a sibling temp file, then rename(2) it over the old one, so
 * a kill -9 at any moment leaves either the previous or the next version, never a torn one.
 */
import { rename, rm, writeFile } from 'node:fs/promises';

export async function writeResumeStateFile(file: string, value: unknown): Promise<void> {
  const tmp = `${file}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(value)}\n`);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw err;
  }
}
