import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';

/**
 * Writes `sizeBytes` of position-dependent pseudo-random content quickly: one random 1 MiB
 * block, with each MiB's first 16 bytes overwritten by its index and a seed, so no two MiB
 * are equal and a misplaced block changes the sha-256. Returns the sha-256 hex.
 */
export async function writeSeededFile(file: string, sizeBytes: number, seed = 1): Promise<string> {
  const block = randomBytes(1024 * 1024);
  const hash = createHash('sha256');
  const fh = await open(file, 'w');
  try {
    let pos = 0;
    while (pos < sizeBytes) {
      const n = Math.min(block.length, sizeBytes - pos);
      const chunk = Buffer.from(block.subarray(0, n));
      if (n >= 16) {
        chunk.writeDoubleLE(pos, 0);
        chunk.writeDoubleLE(seed, 8);
      }
      hash.update(chunk);
      await fh.write(chunk, 0, n, pos);
      pos += n;
    }
  } finally {
    await fh.close();
  }
  return hash.digest('hex');
}

/** sha-256 of a file, streamed. */
export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}
