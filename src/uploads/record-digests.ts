/**
 * Records the sha-256 and CRC-32 an upload computed while receiving, under the keys the readers
 * use: `Repr-Digest` on downloads (src/http digestCacheKey, namespace `sha256`) and resumable
 * zips (src/zip recordCrc). A freshly uploaded file is thus never re-read to be served or zipped.
 */
import { DIGEST_CACHE_NAMESPACE, digestCacheKey } from '../http/index.ts';
import { recordCrc } from '../zip/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { FileStat } from '../storage/index.ts';

/** Same lifetime as serve's own sha-256 cache entries. */
const DIGEST_TTL_MS = 30 * 24 * 3600 * 1000;

export async function recordDigests(meta: MetaStore, relativePath: string, stat: FileStat, sha256Hex: string, crc32: number): Promise<void> {
  await meta.set(DIGEST_CACHE_NAMESPACE, digestCacheKey(relativePath, stat), sha256Hex, { ttlMs: DIGEST_TTL_MS });
  await recordCrc(meta, { path: relativePath, size: stat.size, mtimeNs: stat.mtimeNs, ino: stat.ino }, crc32);
}
