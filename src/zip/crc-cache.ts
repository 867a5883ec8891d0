/**
 * The CRC-32 cache: a resumable (Range-able) stored archive needs each member's CRC-32 before
 * the member's local header, and computing it means reading the whole file. Results are kept in
 * the meta store (SQLite in --state-dir by default), keyed by what identifies one version of a
 * file's content: path, size, mtime (ns) and inode. A file rewritten in place gets a new mtime,
 * a file replaced by rename a new inode, so a stale entry is never looked up.
 *
 * Pure module: the store is injected (the MetaStore satisfies `CrcStore` structurally).
 */
import { crc32 } from 'node:zlib';
import type { CrcProgress } from './read-zip-range.ts';

/** The subset of the meta store the cache uses (src/meta's MetaStore satisfies it). */
export interface CrcStore {
  get<T = unknown>(namespace: string, key: string): Promise<T | undefined>;
  set(namespace: string, key: string, value: unknown, options?: { ttlMs?: number }): Promise<void>;
  delete(namespace: string, key: string): Promise<boolean>;
}

/** Identifies one version of a file's content. */
export interface CrcKey {
  /** Path relative to the storage root, `/`-separated (SafePath.relative). */
  readonly path: string;
  readonly size: number;
  readonly mtimeNs: bigint;
  /** Inode (0n where the backend has none). */
  readonly ino: bigint;
}

export const CRC_NAMESPACE = 'crc32';
export const CRC_PROGRESS_NAMESPACE = 'crc32-progress';
/** Entries of files nobody zips for this long go away (a re-zip recomputes them). */
export const CRC_TTL_MS = 180 * 24 * 3600 * 1000;
/** A partial CRC is only useful to resume a recent download. */
export const CRC_PROGRESS_TTL_MS = 24 * 3600 * 1000;

export function crcCacheKey(key: CrcKey): string {
  return `${key.size}:${key.mtimeNs}:${key.ino}:${key.path}`;
}

function isCrc(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
}

/** A cached CRC-32; `verified` once a zip has streamed the file whole and found it matching. */
export interface CrcRecord {
  readonly crc: number;
  readonly verified: boolean;
}

/** The cached CRC-32 of this file version, if any. */
export async function lookupCrc(store: CrcStore, key: CrcKey): Promise<number | undefined> {
  return (await lookupCrcRecord(store, key))?.crc;
}

export async function lookupCrcRecord(store: CrcStore, key: CrcKey): Promise<CrcRecord | undefined> {
  const v = await store.get<{ crc?: unknown; verified?: unknown }>(CRC_NAMESPACE, crcCacheKey(key));
  return v !== undefined && isCrc(v.crc) ? { crc: v.crc, verified: v.verified === true } : undefined;
}

/**
 * Records the CRC-32 of a file version. Uploads call this with the CRC of the bytes they wrote
 * (`createCrc32()` computes it on the fly) and the final file's stat, so zips of uploaded files
 * are resumable from the first request without re-reading them. The first zip that streams the
 * file whole checks the value (`verified` then becomes true); zips that computed the CRC from
 * the file themselves record it as verified.
 */
export async function recordCrc(store: CrcStore, key: CrcKey, crc: number, options: { verified?: boolean } = {}): Promise<void> {
  await store.set(CRC_NAMESPACE, crcCacheKey(key), { crc: crc >>> 0, ...(options.verified === true ? { verified: true } : {}) }, { ttlMs: CRC_TTL_MS });
}

/** Drops a cached CRC that turned out wrong. */
export async function forgetCrc(store: CrcStore, key: CrcKey): Promise<void> {
  await store.delete(CRC_NAMESPACE, crcCacheKey(key));
}

export async function loadCrcProgress(store: CrcStore, key: CrcKey): Promise<CrcProgress | undefined> {
  const v = await store.get<{ bytes?: unknown; crc?: unknown }>(CRC_PROGRESS_NAMESPACE, crcCacheKey(key));
  if (v === undefined || !isCrc(v.crc) || typeof v.bytes !== 'number' || !Number.isSafeInteger(v.bytes) || v.bytes < 0 || v.bytes > key.size) return undefined;
  return { bytes: v.bytes, crc: v.crc };
}

export async function clearCrcProgress(store: CrcStore, key: CrcKey): Promise<void> {
  await store.delete(CRC_PROGRESS_NAMESPACE, crcCacheKey(key));
}

export async function saveCrcProgress(store: CrcStore, key: CrcKey, progress: CrcProgress): Promise<void> {
  await store.set(CRC_PROGRESS_NAMESPACE, crcCacheKey(key), { bytes: progress.bytes, crc: progress.crc >>> 0 }, { ttlMs: CRC_PROGRESS_TTL_MS });
}

/** An incremental CRC-32 (zlib polynomial, as ZIP uses): `update` each chunk, then `digest`. */
export interface Crc32Accumulator {
  update(chunk: Uint8Array): void;
  digest(): number;
  readonly bytes: number;
}

export function createCrc32(): Crc32Accumulator {
  let value = 0;
  let bytes = 0;
  return {
    update(chunk) { value = crc32(chunk, value); bytes += chunk.byteLength; },
    digest() { return value >>> 0; },
    get bytes() { return bytes; },
  };
}

/** CRC-32 of everything an async iterable yields. */
export async function crc32OfChunks(chunks: AsyncIterable<Uint8Array>): Promise<{ crc: number; bytes: number }> {
  const acc = createCrc32();
  for await (const c of chunks) acc.update(c);
  return { crc: acc.digest(), bytes: acc.bytes };
}
