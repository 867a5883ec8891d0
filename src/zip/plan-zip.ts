/**
 * The ZIP planner: from an ordered list of members, the exact, deterministic layout of a stored
 * (method 0) archive — every local header, data block, data descriptor, central directory header
 * and end record, with its offset — and so the exact total length, before any byte is produced.
 * The writer (`readZipRange`) turns any byte range of that layout into bytes.
 *
 * Two layouts, both byte-exact and both resumable by Range (docs/zip.md explains the policy):
 * - `crc-first`: the CRC-32 of every member is in its local header, no data descriptors. Every
 *   reader, including streaming ones (Java ZipInputStream, `bsdtar -x` from a pipe), is happy.
 *   Needs every CRC before the member's local header is sent.
 * - `descriptor`: non-empty files set flag bit 3 and put their CRC in a data descriptor after the
 *   data; local headers still state the real sizes. Starts at once when CRCs are unknown.
 */
import { createHash } from 'node:crypto';
import { FerryError } from '../core/errors.ts';
import {
  MAX_U32, centralHeaderSize, dataDescriptorSize, endRecordsSize, localHeaderSize, needsZip64End,
  type HeaderFields,
} from './encode-headers.ts';
import { MAX_ENTRY_NAME_BYTES } from './entry-name.ts';

export type ZipLayout = 'crc-first' | 'descriptor';

/** Bumped whenever the bytes produced for a given manifest change (old ETags must not match). */
export const ZIP_FORMAT_VERSION = 1;

export interface ZipMemberInput<R = unknown> {
  /**
   * Name inside the archive: relative, `/`-separated, no empty/`.`/`..` segment, no backslash;
   * folders without the trailing `/` (the planner adds it). Use `joinEntryName` to build it.
   */
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Bytes (0 for folders). */
  readonly size: number;
  readonly mtimeMs: number;
  /** st_mode; 0 when unknown (then 0644 / 0755). */
  readonly mode: number;
  /** CRC-32 when already known (cache, upload); folders and empty files need none. */
  readonly crc32?: number | undefined;
  /**
   * Content identity beyond what the archive shows (e.g. `${mtimeNs}:${ino}`), folded into the
   * manifest hash so the strong ETag changes whenever the content may have changed.
   */
  readonly version?: string | undefined;
  /** Caller's handle for the member (path, stat …), passed back to the data source. */
  readonly ref: R;
}

/** What a data source is told about a member (planned or streamed). */
export interface ZipSourceEntry<R = unknown> {
  readonly index: number;
  /** Name as written (folders end with `/`). */
  readonly name: string;
  readonly size: number;
  readonly crc32: number | undefined;
  readonly ref: R;
}

export interface ZipEntry<R = unknown> extends HeaderFields, ZipSourceEntry<R> {
  readonly index: number;
  readonly size: number;
  /** CRC-32 known when planning, else undefined (resolved or computed while streaming). */
  readonly crc32: number | undefined;
  readonly localHeaderSize: number;
  /** Offset of the first data byte (= localHeaderOffset + localHeaderSize). */
  readonly dataOffset: number;
  /** 0, 16 or 24. */
  readonly descriptorSize: number;
  /** Absolute offset of this entry's central directory header. */
  readonly centralHeaderOffset: number;
  readonly centralHeaderSize: number;
  readonly ref: R;
}

export interface ZipPlan<R = unknown> {
  readonly layout: ZipLayout;
  readonly entries: readonly ZipEntry<R>[];
  /** Exact archive length in bytes. */
  readonly totalBytes: number;
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
  /** Offset of the end records (ZIP64 end + locator when needed, then the classic end record). */
  readonly endRecordsOffset: number;
  readonly zip64End: boolean;
  /** Sum of member sizes. */
  readonly contentBytes: number;
  readonly fileCount: number;
  /** Newest member mtime (ms), 0 for an empty archive: the archive's Last-Modified. */
  readonly lastModifiedMs: number;
  /** sha-256 (hex) of the selection's manifest, independent of the layout. */
  readonly selectionHash: string;
  /** Strong entity tag (RFC 9110 §8.8.3) for these exact bytes: manifest + layout + format version. */
  readonly etag: string;
}

export interface PlanZipOptions {
  readonly layout: ZipLayout;
}

/** Whether an entry of this layout carries a data descriptor: only non-empty files in `descriptor`. */
export function entryHasDescriptor(layout: ZipLayout, type: 'file' | 'directory', size: number): boolean {
  return layout === 'descriptor' && type === 'file' && size > 0;
}

/** Throws FERRY_ERR_ZIP_SELECTION_INVALID for a member that cannot be written safely. */
export function validateMember(m: ZipMemberInput<unknown>): void {
  const bad = (why: string): FerryError => new FerryError('FERRY_ERR_ZIP_SELECTION_INVALID', `Entry name cannot be written: ${why}`);
  if (m.name === '' || m.name.startsWith('/') || m.name.endsWith('/')) throw bad('empty, absolute or trailing slash');
  if (m.name.includes('\\') || m.name.includes('\0')) throw bad('backslash or NUL');
  for (const seg of m.name.split('/')) if (seg === '' || seg === '.' || seg === '..') throw bad('empty or dot segment');
  if (!Number.isSafeInteger(m.size) || m.size < 0) throw bad('invalid size');
  if (m.type === 'directory' && m.size !== 0) throw bad('folder with a size');
}

/**
 * Hash of what determines the archive's bytes, in order: names, types, sizes, times, modes and
 * the members' content identity. CRCs are left out on purpose: whether they are cached yet must
 * not change the ETag.
 */
export function hashSelection(members: readonly ZipMemberInput<unknown>[]): string {
  const h = createHash('sha256');
  h.update(`ferry-zip-manifest\n${members.length}\n`);
  for (const m of members) {
    h.update(`${m.type === 'directory' ? 'd' : 'f'}\0${m.name}\0${m.size}\0${Math.floor(m.mtimeMs)}\0${m.mode}\0${m.version ?? ''}\n`);
  }
  return h.digest('hex');
}

/** The strong ETag of a selection under a layout (the format version is in it). */
export function zipEtag(selectionHash: string, layout: ZipLayout): string {
  const tag = createHash('sha256').update(`${selectionHash}\0${layout}\0${ZIP_FORMAT_VERSION}`).digest('base64url').slice(0, 27);
  return `"z${ZIP_FORMAT_VERSION}-${layout === 'crc-first' ? 'c' : 'd'}-${tag}"`;
}

/**
 * Lays out a stored archive. Pure and deterministic: the same members in the same order and
 * layout always give the same plan. `selectionHash` may be passed when already computed.
 */
export function planZip<R>(members: readonly ZipMemberInput<R>[], options: PlanZipOptions, selectionHash = hashSelection(members)): ZipPlan<R> {
  const layout = options.layout;
  const entries: ZipEntry<R>[] = new Array<ZipEntry<R>>(members.length);
  let offset = 0;
  let contentBytes = 0;
  let fileCount = 0;
  let lastModifiedMs = 0;
  let afterSentinelSize = false;
  for (let i = 0; i < members.length; i++) {
    const m = members[i]!;
    validateMember(m);
    const name = m.type === 'directory' ? `${m.name}/` : m.name;
    const nameLength = Buffer.byteLength(name, 'utf8');
    if (nameLength > MAX_ENTRY_NAME_BYTES) throw new FerryError('FERRY_ERR_ZIP_SELECTION_INVALID', 'An entry name is longer than 65,535 bytes');
    const size = m.type === 'directory' ? 0 : m.size;
    const hasDescriptor = entryHasDescriptor(layout, m.type, size);
    // Stored: compressed size = size. ZIP64 when the value reaches 0xFFFFFFFF (APPNOTE 4.4.8/4.4.9).
    const zip64 = size >= MAX_U32;
    const fields: HeaderFields = {
      name, nameLength, type: m.type, mtimeMs: m.mtimeMs, mode: m.mode, method: 0, hasDescriptor, zip64,
      ...(afterSentinelSize ? { zip64CentralSizes: true } : {}),
      localHeaderOffset: offset,
    };
    afterSentinelSize = size === MAX_U32;
    const lhSize = localHeaderSize(fields);
    const descriptorSize = hasDescriptor ? dataDescriptorSize(zip64) : 0;
    const known = size === 0 ? 0 : m.crc32;
    entries[i] = {
      ...fields,
      index: i,
      size,
      crc32: known === undefined ? undefined : known >>> 0,
      localHeaderSize: lhSize,
      dataOffset: offset + lhSize,
      descriptorSize,
      centralHeaderOffset: 0,
      centralHeaderSize: centralHeaderSize(fields, size, size),
      ref: m.ref,
    };
    offset += lhSize + size + descriptorSize;
    contentBytes += size;
    if (m.type === 'file') fileCount++;
    if (m.mtimeMs > lastModifiedMs) lastModifiedMs = m.mtimeMs;
  }
  const centralDirectoryOffset = offset;
  for (const e of entries) {
    (e as { centralHeaderOffset: number }).centralHeaderOffset = offset;
    offset += e.centralHeaderSize;
  }
  const centralDirectorySize = offset - centralDirectoryOffset;
  const endInput = { entryCount: entries.length, centralDirectoryOffset, centralDirectorySize };
  const endRecordsOffset = offset;
  offset += endRecordsSize(endInput);
  if (!Number.isSafeInteger(offset)) throw new FerryError('FERRY_ERR_ZIP_TOO_LARGE', 'Archive would exceed 2^53 bytes');
  return {
    layout,
    entries,
    totalBytes: offset,
    centralDirectoryOffset,
    centralDirectorySize,
    endRecordsOffset,
    zip64End: needsZip64End(endInput),
    contentBytes,
    fileCount,
    lastModifiedMs,
    selectionHash,
    etag: zipEtag(selectionHash, layout),
  };
}

/** Index of the entry whose local header, data or descriptor holds archive byte `pos` (pos < centralDirectoryOffset). */
export function findEntryAt(plan: ZipPlan<unknown>, pos: number): number {
  return lastIndexAtOrBefore(plan.entries, pos, (e) => e.localHeaderOffset);
}

/** Index of the entry whose central header holds archive byte `pos` (centralDirectoryOffset ≤ pos < endRecordsOffset). */
export function findCentralEntryAt(plan: ZipPlan<unknown>, pos: number): number {
  return lastIndexAtOrBefore(plan.entries, pos, (e) => e.centralHeaderOffset);
}

function lastIndexAtOrBefore<T>(items: readonly T[], pos: number, key: (t: T) => number): number {
  let lo = 0;
  let hi = items.length - 1;
  let found = 0;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    if (key(items[mid]!) <= pos) { found = mid; lo = mid + 1; } else hi = mid - 1;
  }
  return found;
}
