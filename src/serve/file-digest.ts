/**
 * sha-256 of a file version for Repr-Digest (RFC 9530), read from the same open handle the
 * body comes from and cached in the meta store under `digestCacheKey` (uploads record the
 * digests they compute under the same key, so a freshly uploaded file is never re-read).
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { DIGEST_CACHE_NAMESPACE, digestCacheKey } from '../http/index.ts';
import type { FileHandleReader } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';

/** Cached digests expire so that the cache does not grow forever with old file versions. */
const CACHE_TTL_MS = 30 * 24 * 3600 * 1000;

/**
 * The lowercase hex sha-256 of the whole file behind `reader`, or undefined when the file
 * changed while it was hashed (then no digest is claimed and nothing is cached).
 */
export async function fileSha256(meta: MetaStore, relativePath: string, reader: FileHandleReader, signal: AbortSignal, readBufferSize: number, onBytes?: (n: number) => void): Promise<string | undefined> {
  const before = reader.stat;
  const key = digestCacheKey(relativePath, before);
  const cached = await meta.get<string>(DIGEST_CACHE_NAMESPACE, key);
  if (typeof cached === 'string' && /^[0-9a-f]{64}$/.test(cached)) return cached;
  const hex = await hashStream(before.size === 0 ? undefined : reader.openRead(undefined, { signal, highWaterMark: readBufferSize }), onBytes);
  const after = await reader.restat();
  if (after.size !== before.size || after.mtimeNs !== before.mtimeNs) return undefined;
  // Best effort: a full state disk loses the cache entry, never the (correct) digest.
  await meta.set(DIGEST_CACHE_NAMESPACE, key, hex, { ttlMs: CACHE_TTL_MS }).catch(() => {});
  return hex;
}

/** sha-256 (hex) of everything a stream yields; undefined stream = empty input. */
export async function hashStream(source: Readable | AsyncIterable<Buffer> | undefined, onBytes?: (n: number) => void): Promise<string> {
  const hash = createHash('sha256');
  if (source !== undefined) {
    for await (const chunk of source) {
      hash.update(chunk as Buffer);
      onBytes?.((chunk as Buffer).length);
    }
  }
  return hash.digest('hex');
}
