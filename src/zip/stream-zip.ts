/**
 * The one-pass writer for archives whose length cannot be known in advance: `?compress=1`
 * (deflated sizes are only known after compressing). Every non-empty file gets a data
 * descriptor (flag bit 3, APPNOTE 4.4.4); offsets are counted as bytes leave. No Range, no
 * Content-Length, no strong ETag for these (docs/zip.md).
 *
 * ZIP64 for a deflated member must be decided before its local header, from the worst case
 * deflate can produce; the local header, the descriptor (8-byte sizes) and the central header
 * then all agree (APPNOTE 4.3.9.2, 4.5.3).
 */
import { once } from 'node:events';
import { crc32, createDeflateRaw } from 'node:zlib';
import { FerryError } from '../core/errors.ts';
import { ByteBatch } from './byte-batch.ts';
import {
  MAX_U32, encodeCentralHeader, encodeDataDescriptor, encodeEndRecords, encodeLocalHeader, type HeaderFields,
} from './encode-headers.ts';
import { validateMember, type ZipMemberInput, type ZipSourceEntry } from './plan-zip.ts';
import { MAX_ENTRY_NAME_BYTES } from './entry-name.ts';

export interface StreamZipSource<R> {
  /** The whole member (`start` = 0, `end` = size - 1), same contract as ZipDataSource.openMember. */
  openMember(entry: ZipSourceEntry<R>, start: number, end: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
  onCrcComputed?(entry: ZipSourceEntry<R>, crc: number): Promise<void> | void;
}

export interface StreamZipOptions<R> {
  readonly signal: AbortSignal;
  /** Deflate this member? (Typically `isCompressible(name, size)`.) Stored otherwise. */
  readonly compress: (member: ZipMemberInput<R>) => boolean;
  /** zlib level 1-9; default 6. */
  readonly level?: number;
}

export interface StreamZipResult {
  readonly totalBytes: number;
  readonly entries: number;
}

/**
 * Worst-case raw-deflate output for `n` input bytes, with margin: zlib's deflateBound() is
 * n + n/4096 + n/16384 + n/2^25 + 7 for raw streams; stored-block fallback stays below it.
 */
export function deflateBound(n: number): number {
  return n + Math.floor(n / 4096) + Math.floor(n / 16384) + Math.floor(n / 33_554_432) + 1024;
}

interface CentralRecord { fields: HeaderFields; crc: number; compressed: number; uncompressed: number }

function changed(name: string, why: string): FerryError {
  return new FerryError('FERRY_ERR_ZIP_MEMBER_CHANGED', `${name}: ${why}`);
}

/** Streams a whole archive in one pass (deflating where `compress` says so). */
export async function* streamZip<R>(
  members: readonly ZipMemberInput<R>[],
  source: StreamZipSource<R>,
  options: StreamZipOptions<R>,
): AsyncGenerator<Buffer, StreamZipResult, undefined> {
  const { signal } = options;
  const batch = new ByteBatch();
  const central: CentralRecord[] = [];
  let offset = 0;
  let afterSentinelSize = false; // see HeaderFields.zip64CentralSizes
  for (let index = 0; index < members.length; index++) {
    signal.throwIfAborted();
    const m = members[index]!;
    validateMember(m);
    const name = m.type === 'directory' ? `${m.name}/` : m.name;
    const nameLength = Buffer.byteLength(name, 'utf8');
    if (nameLength > MAX_ENTRY_NAME_BYTES) throw new FerryError('FERRY_ERR_ZIP_SELECTION_INVALID', 'An entry name is longer than 65,535 bytes');
    const size = m.type === 'directory' ? 0 : m.size;
    const deflate = size > 0 && options.compress(m);
    const fields: HeaderFields = {
      name, nameLength, type: m.type, mtimeMs: m.mtimeMs, mode: m.mode,
      method: deflate ? 8 : 0,
      hasDescriptor: size > 0,
      zip64: (deflate ? deflateBound(size) : size) >= MAX_U32,
      ...(afterSentinelSize ? { zip64CentralSizes: true } : {}),
      localHeaderOffset: offset,
    };
    afterSentinelSize = false;
    const header = encodeLocalHeader(fields, 0, deflate ? undefined : { compressed: size, uncompressed: size });
    batch.push(header);
    offset += header.length;
    if (size === 0) {
      central.push({ fields, crc: 0, compressed: 0, uncompressed: 0 });
      if (batch.full) yield batch.take()!;
      continue;
    }
    const pending = batch.take();
    if (pending !== undefined) yield pending;

    const view: ZipSourceEntry<R> = { index, name, size, crc32: m.crc32, ref: m.ref };
    let crc = 0;
    let read = 0;
    let written = 0;
    const input = source.openMember(view, 0, size - 1, signal);
    async function* hashed(): AsyncGenerator<Buffer> {
      for await (const chunk of input) {
        const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        read += buf.length;
        if (read > size) throw changed(name, 'longer than planned');
        crc = crc32(buf, crc);
        yield buf;
      }
    }
    const output = deflate ? deflateRaw(hashed(), options.level ?? 6, signal) : hashed();
    for await (const out of output) {
      written += out.length;
      yield out;
    }
    if (read !== size) throw changed(name, 'shorter than planned');
    crc >>>= 0;
    if (m.crc32 !== undefined && m.crc32 >>> 0 !== crc) throw changed(name, 'content does not match its CRC-32');
    await source.onCrcComputed?.(view, crc);
    const descriptor = encodeDataDescriptor(fields.zip64, crc, written, size);
    batch.push(descriptor);
    offset += written + descriptor.length;
    central.push({ fields, crc, compressed: written, uncompressed: size });
    afterSentinelSize = written === MAX_U32 || size === MAX_U32;
  }
  const centralDirectoryOffset = offset;
  for (const r of central) {
    const h = encodeCentralHeader(r.fields, r.crc, r.compressed, r.uncompressed);
    batch.push(h);
    offset += h.length;
    if (batch.full) yield batch.take()!;
  }
  const end = encodeEndRecords({ entryCount: central.length, centralDirectoryOffset, centralDirectorySize: offset - centralDirectoryOffset });
  batch.push(end);
  offset += end.length;
  yield batch.take()!;
  return { totalBytes: offset, entries: central.length };
}

/**
 * Raw deflate (RFC 1951, what ZIP method 8 holds) over an async iterable, with backpressure both
 * ways and teardown on abort or early return: the input's iteration is ended, so its file closes.
 */
async function* deflateRaw(input: AsyncIterable<Buffer>, level: number, signal: AbortSignal): AsyncGenerator<Buffer> {
  const z = createDeflateRaw({ level });
  const stop = new AbortController();
  const both = AbortSignal.any([signal, stop.signal]);
  const feed = (async () => {
    try {
      for await (const chunk of input) {
        both.throwIfAborted();
        if (!z.write(chunk)) await once(z, 'drain', { signal: both });
      }
      z.end();
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  try {
    for await (const out of z) yield out as Buffer;
  } finally {
    stop.abort();
    z.destroy();
    await feed;
  }
}
