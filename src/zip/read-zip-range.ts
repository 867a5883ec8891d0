/**
 * The writer: produces any byte range of a planned archive, pulling member bytes through an
 * injected data source. Headers are generated on the fly; member data is read by seeking into
 * the member (one member open at a time); nothing is buffered beyond one small batch of header
 * bytes and whatever chunk the source yields. Pull-based: the consumer's pace is the read pace.
 */
import { crc32 } from 'node:zlib';
import { FerryError } from '../core/errors.ts';
import {
  encodeCentralHeader, encodeDataDescriptor, encodeEndRecords, encodeLocalHeader,
} from './encode-headers.ts';
import { ByteBatch } from './byte-batch.ts';
import { findCentralEntryAt, findEntryAt, type ZipEntry, type ZipPlan, type ZipSourceEntry } from './plan-zip.ts';

/** A CRC-32 computed over the first `bytes` bytes of a member (to resume computing it later). */
export interface CrcProgress {
  readonly bytes: number;
  readonly crc: number;
}

/** Where member bytes and CRCs come from. Only `openMember` and `resolveCrc` are required. */
export interface ZipDataSource<R> {
  /**
   * Bytes `start`…`end` (inclusive, offsets inside the member's data). Must yield exactly
   * `end - start + 1` bytes and throw (FERRY_ERR_ZIP_MEMBER_CHANGED) if the member changed.
   * Stops and releases its file when `signal` aborts or when iteration is abandoned.
   */
  openMember(entry: ZipSourceEntry<R>, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** The CRC-32 of a member the plan has none for: from a cache, or by reading the member. */
  resolveCrc(entry: ZipSourceEntry<R>, signal: AbortSignal): Promise<number>;
  /** Cached CRC only (no reading); lets a range that starts inside a member skip hashing its prefix. */
  lookupCrc?(entry: ZipSourceEntry<R>): Promise<number | undefined>;
  /** A CRC computed while streaming a member (record it in the cache). */
  onCrcComputed?(entry: ZipSourceEntry<R>, crc: number): Promise<void> | void;
  /** Saved partial CRC of a member, so a resumed download need not re-read the part already sent. */
  loadCrcProgress?(entry: ZipSourceEntry<R>): Promise<CrcProgress | undefined>;
  saveCrcProgress?(entry: ZipSourceEntry<R>, progress: CrcProgress): Promise<void> | void;
  /** The member was streamed whole and matched the CRC written for it. */
  onCrcVerified?(entry: ZipSourceEntry<R>, crc: number): Promise<void> | void;
  /** The member's bytes did not match the CRC given for it (stale cache): forget it. The writer then throws. */
  onCrcMismatch?(entry: ZipSourceEntry<R>, expected: number, actual: number): Promise<void> | void;
}

export interface ReadZipRangeOptions<R = unknown> {
  readonly signal: AbortSignal;
  /**
   * Hash members that are streamed whole and compare with the CRC written for them (all, or
   * those the predicate picks); a mismatch (content changed without its size/mtime changing, a
   * wrong cache entry) aborts the archive. Default true.
   */
  readonly verifyCrc?: boolean | ((entry: ZipSourceEntry<R>) => boolean);
  /** Header bytes are batched up to this size before being yielded. Default 64 KiB. */
  readonly batchBytes?: number;
}

/** An inclusive byte range of the archive, as in `Content-Range`. */
export interface ZipByteRange {
  readonly start: number;
  readonly end: number;
}

function memberChanged(entry: ZipSourceEntry<unknown>, why: string): FerryError {
  return new FerryError('FERRY_ERR_ZIP_MEMBER_CHANGED', `${entry.name}: ${why}`);
}

/**
 * Yields bytes `range.start`…`range.end` (inclusive; the whole archive when omitted) of `plan`.
 * Throws FERRY_ERR_ZIP_MEMBER_CHANGED when a member no longer matches the plan; the caller must
 * then cut the connection (never end the body as if it were complete).
 */
export async function* readZipRange<R>(
  plan: ZipPlan<R>,
  range: ZipByteRange | undefined,
  source: ZipDataSource<R>,
  options: ReadZipRangeOptions<R>,
): AsyncGenerator<Buffer, void, undefined> {
  const { signal } = options;
  const verifyOption = options.verifyCrc ?? true;
  const verify = (e: ZipSourceEntry<R>): boolean => (typeof verifyOption === 'function' ? verifyOption(e) : verifyOption);
  const start = range?.start ?? 0;
  const end = range?.end ?? plan.totalBytes - 1;
  if (!(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 0 && start <= end && end < plan.totalBytes)) {
    throw new RangeError(`range ${start}-${end} outside archive of ${plan.totalBytes} bytes`);
  }
  const batch = new ByteBatch(options.batchBytes ?? 64 * 1024);
  // CRCs learnt during this request (computed in-stream or resolved), by entry index.
  const learnt = new Map<number, number>();

  const knownCrc = (e: ZipEntry<R>): number | undefined => (e.type === 'directory' || e.size === 0 ? 0 : learnt.get(e.index) ?? e.crc32);
  const needCrc = async (e: ZipEntry<R>): Promise<number> => {
    const k = knownCrc(e);
    if (k !== undefined) return k;
    signal.throwIfAborted();
    const crc = (await source.resolveCrc(e, signal)) >>> 0;
    learnt.set(e.index, crc);
    return crc;
  };
  /** Adds bytes [from, to) of `buf` (which spans archive bytes [bufStart, bufStart+len)) clipped to the range. */
  const clip = (buf: Buffer, bufStart: number): Buffer => {
    const from = Math.max(start, bufStart) - bufStart;
    const to = Math.min(end + 1, bufStart + buf.length) - bufStart;
    return from === 0 && to === buf.length ? buf : buf.subarray(from, to);
  };

  let pos = start;

  // 1. Local headers, data, descriptors.
  if (pos < plan.centralDirectoryOffset) {
    for (let i = findEntryAt(plan, pos); i < plan.entries.length && pos <= end; i++) {
      signal.throwIfAborted();
      const e = plan.entries[i]!;
      const dataEnd = e.dataOffset + e.size; // exclusive
      const descriptorEnd = dataEnd + e.descriptorSize; // exclusive
      if (pos < e.dataOffset) {
        const crc = e.hasDescriptor ? 0 : await needCrc(e);
        batch.push(clip(encodeLocalHeader(e, crc, { compressed: e.size, uncompressed: e.size }), e.localHeaderOffset));
        pos = Math.min(end + 1, e.dataOffset);
        if (batch.full) yield batch.take()!;
      }
      if (pos <= end && pos < dataEnd) {
        const pending = batch.take();
        if (pending !== undefined) yield pending;
        const from = pos - e.dataOffset;
        const to = Math.min(end + 1, dataEnd) - e.dataOffset; // exclusive, inside the member
        yield* streamMemberData(e, from, to, end + 1 > dataEnd);
        pos = e.dataOffset + to;
      }
      if (pos <= end && pos < descriptorEnd) {
        const crc = await needCrc(e);
        batch.push(clip(encodeDataDescriptor(e.zip64, crc, e.size, e.size), dataEnd));
        pos = Math.min(end + 1, descriptorEnd);
        if (batch.full) yield batch.take()!;
      }
    }
  }

  // 2. Central directory: needs every CRC; the ones not learnt yet are resolved here.
  if (pos <= end && pos < plan.endRecordsOffset) {
    for (let i = findCentralEntryAt(plan, pos); i < plan.entries.length && pos <= end; i++) {
      const e = plan.entries[i]!;
      const crc = await needCrc(e);
      batch.push(clip(encodeCentralHeader(e, crc, e.size, e.size), e.centralHeaderOffset));
      pos = Math.min(end + 1, e.centralHeaderOffset + e.centralHeaderSize);
      if (batch.full) {
        signal.throwIfAborted();
        yield batch.take()!;
      }
    }
  }

  // 3. End records.
  if (pos <= end) {
    const records = encodeEndRecords({ entryCount: plan.entries.length, centralDirectoryOffset: plan.centralDirectoryOffset, centralDirectorySize: plan.centralDirectorySize });
    batch.push(clip(records, plan.endRecordsOffset));
  }
  const rest = batch.take();
  if (rest !== undefined) yield rest;

  /**
   * Streams member bytes [from, to) (`to` exclusive). Hashes the member when that is free or
   * needed: to learn its CRC (descriptor layout, CRC unknown, the descriptor or central directory
   * follows in this range) or to verify the CRC already written (member streamed whole).
   */
  async function* streamMemberData(e: ZipEntry<R>, from: number, to: number, pastData: boolean): AsyncGenerator<Buffer> {
    let expected = knownCrc(e);
    if (expected === undefined && pastData && from > 0 && source.lookupCrc !== undefined) {
      // The range starts inside the member: a cached CRC spares re-reading its prefix.
      const cached = await source.lookupCrc(e);
      if (cached !== undefined) { expected = cached >>> 0; learnt.set(e.index, expected); }
    }
    // Learn the CRC when the range needs it past the data, or for free when the member is read whole.
    const mustLearn = expected === undefined && to === e.size && (pastData || from === 0);
    const mustVerify = expected !== undefined && from === 0 && to === e.size && verify(e);
    let hashedTo = 0; // bytes [0, hashedTo) are covered by `hash`
    let hash = 0;
    if (mustLearn && from > 0 && source.loadCrcProgress !== undefined) {
      const p = await source.loadCrcProgress(e);
      if (p !== undefined && Number.isSafeInteger(p.bytes) && p.bytes >= 0 && p.bytes <= e.size) { hashedTo = p.bytes; hash = p.crc >>> 0; }
    }
    const hashing = mustLearn || mustVerify;
    // Bytes before `from` are read (not sent) only to extend the hash up to where sending starts.
    const readFrom = hashing ? Math.min(from, hashedTo) : from;
    let at = readFrom; // member offset of the next byte to arrive
    let completed = false;
    try {
      for await (const chunk of source.openMember(e, readFrom, to - 1, signal)) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        const chunkStart = at;
        at += buf.length;
        if (at > to) throw memberChanged(e, 'source returned more bytes than asked');
        if (hashing && at > hashedTo) {
          hash = crc32(chunkStart >= hashedTo ? buf : buf.subarray(hashedTo - chunkStart), hash);
          hashedTo = at;
        }
        if (at > from) yield chunkStart >= from ? buf : buf.subarray(from - chunkStart);
      }
      if (at !== to) throw memberChanged(e, 'shorter than planned');
      completed = true;
    } finally {
      if (!completed && mustLearn && hashedTo > 0 && hashedTo < e.size && source.saveCrcProgress !== undefined) {
        try { await source.saveCrcProgress(e, { bytes: hashedTo, crc: hash >>> 0 }); } catch { /* best effort */ }
      }
    }
    if (mustLearn) {
      const crc = hash >>> 0;
      learnt.set(e.index, crc);
      await source.onCrcComputed?.(e, crc);
    } else if (mustVerify && expected !== undefined) {
      if (hash >>> 0 !== expected) {
        await source.onCrcMismatch?.(e, expected, hash >>> 0);
        throw memberChanged(e, 'content does not match its CRC-32');
      }
      await source.onCrcVerified?.(e, expected);
    }
  }
}
