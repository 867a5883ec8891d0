/**
 * Byte encoders for every ZIP record Ferry writes (PKWARE APPNOTE.TXT 6.3.x). Pure functions:
 * they turn numbers into little-endian bytes and know the ZIP64 rules; the planner decides the
 * numbers. Sizes of every record are computable without encoding, so an archive's exact length
 * and the offset of every byte are known before the first byte is sent.
 *
 * ZIP64 (APPNOTE 4.4.8, 4.4.9, 4.4.16, 4.5.3): a 16- or 32-bit field that holds its maximum
 * (0xFFFF / 0xFFFFFFFF) means "the real value is in the ZIP64 record", so a value EQUAL to the
 * maximum must also go to ZIP64 (the `>=` below, not `>`).
 */
import { toDosDateTime, toUnixTime32 } from './dos-time.ts';

export const MAX_U16 = 0xffff;
export const MAX_U32 = 0xffff_ffff;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_DESCRIPTOR = 0x08074b50;
const SIG_ZIP64_END = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const SIG_END = 0x06054b50;

/** General purpose flag bit 3: CRC and sizes follow the data in a data descriptor (APPNOTE 4.4.4). */
export const FLAG_DATA_DESCRIPTOR = 0x0008;
/** General purpose flag bit 11: name is UTF-8 (APPNOTE 4.4.4, appendix D). Set on every entry. */
export const FLAG_UTF8 = 0x0800;

/** Upper byte 3 = UNIX (external attributes carry st_mode), lower byte 63 = APPNOTE 6.3 (APPNOTE 4.4.2). */
export const VERSION_MADE_BY = (3 << 8) | 63;

const EXTRA_ZIP64 = 0x0001;
const EXTRA_EXTENDED_TIMESTAMP = 0x5455;
/** 0x5455 with only the modification time: tag, size, flags byte, int32 (same in local and central). */
const EXTENDED_TIMESTAMP_SIZE = 4 + 1 + 4;

export const LOCAL_HEADER_FIXED = 30;
export const CENTRAL_HEADER_FIXED = 46;
const ZIP64_END_SIZE = 56;
const ZIP64_LOCATOR_SIZE = 20;
const END_SIZE = 22;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
/** MS-DOS directory attribute, for readers that only look at the low byte. */
const DOS_ATTR_DIRECTORY = 0x10;

/** What every header of one entry needs; the planner's entries and the streaming writer's records satisfy it. */
export interface HeaderFields {
  /** Name as written: relative, `/`-separated, directories end with `/`. */
  readonly name: string;
  /** `Buffer.byteLength(name, 'utf8')`. */
  readonly nameLength: number;
  readonly type: 'file' | 'directory';
  readonly mtimeMs: number;
  /** st_mode bits (type and permissions); 0 when the backend has none. */
  readonly mode: number;
  /** 0 = stored, 8 = deflated. */
  readonly method: 0 | 8;
  /** Bit 3: CRC (and final sizes) in a data descriptor after the data. */
  readonly hasDescriptor: boolean;
  /**
   * Sizes need ZIP64: the local header carries the ZIP64 extra with both sizes (APPNOTE 4.5.3
   * "MUST include BOTH"), the central header carries both sizes in its ZIP64 extra, and the data
   * descriptor uses 8-byte sizes (APPNOTE 4.3.9.2). Decided before the local header is written.
   */
  readonly zip64: boolean;
  /**
   * Also put both sizes in the central header's ZIP64 extra although they fit. Set on the entry
   * after one whose size is exactly 0xFFFFFFFF: Info-ZIP unzip 6.0's getZip64Data() tests the
   * PREVIOUS record's size (`G.lrec.ucsize == 0xffffffff`, never reset) and would otherwise read
   * this entry's offset as its size ("extra field corrupt", "overlapped components").
   */
  readonly zip64CentralSizes?: boolean;
  readonly localHeaderOffset: number;
}

/** The sizes a local header states; undefined = not known yet (streaming deflate), written as 0. */
export interface LocalSizes {
  readonly compressed: number;
  readonly uncompressed: number;
}

function needsZip64Anywhere(f: HeaderFields): boolean {
  return f.zip64 || f.zip64CentralSizes === true || f.localHeaderOffset >= MAX_U32;
}

/**
 * A local ZIP64 extra normally holds the two sizes. When the entry starts at exactly 0xFFFFFFFF
 * the offset is added too: readers that parse the local extra with the central record's values
 * (libarchive, Info-ZIP unzip) see offset == 0xFFFFFFFF and expect an offset field there.
 */
function localZip64DataSize(f: HeaderFields): number {
  return f.localHeaderOffset === MAX_U32 ? 24 : 16;
}

/** APPNOTE 4.4.3.2: 1.0 stored file, 2.0 folder or deflate, 4.5 ZIP64. Same value in local and central header. */
function versionNeeded(f: HeaderFields): number {
  if (needsZip64Anywhere(f)) return 45;
  return f.type === 'directory' || f.method === 8 ? 20 : 10;
}

function flagsOf(f: HeaderFields): number {
  return FLAG_UTF8 | (f.hasDescriptor ? FLAG_DATA_DESCRIPTOR : 0);
}

/** Unix mode in the high 16 bits (version made by = UNIX), DOS directory bit in the low byte (APPNOTE 4.4.15). */
export function externalAttributes(type: 'file' | 'directory', mode: number): number {
  let perm = mode & 0o777;
  if ((mode & S_IFMT) === 0 && perm === 0) perm = type === 'directory' ? 0o755 : 0o644;
  const unix = (type === 'directory' ? S_IFDIR : S_IFREG) | perm;
  return ((unix << 16) >>> 0) + (type === 'directory' ? DOS_ATTR_DIRECTORY : 0);
}

function hasTimestampExtra(f: HeaderFields): boolean {
  return toUnixTime32(f.mtimeMs) !== undefined;
}

/** Bytes of the local file header including name and extras. */
export function localHeaderSize(f: HeaderFields): number {
  return LOCAL_HEADER_FIXED + f.nameLength + (f.zip64 ? 4 + localZip64DataSize(f) : 0) + (hasTimestampExtra(f) ? EXTENDED_TIMESTAMP_SIZE : 0);
}

/** Which central-header fields overflow into the ZIP64 extra, in the order APPNOTE 4.5.3 lists them. */
function centralZip64Fields(f: HeaderFields, compressedSize: number, uncompressedSize: number): { u: boolean; c: boolean; o: boolean } {
  const both = f.zip64 || f.zip64CentralSizes === true;
  return {
    u: both || uncompressedSize >= MAX_U32,
    c: both || compressedSize >= MAX_U32,
    o: f.localHeaderOffset >= MAX_U32,
  };
}

/** Bytes of the central directory header including name and extras. */
export function centralHeaderSize(f: HeaderFields, compressedSize: number, uncompressedSize: number): number {
  const z = centralZip64Fields(f, compressedSize, uncompressedSize);
  const n = (z.u ? 1 : 0) + (z.c ? 1 : 0) + (z.o ? 1 : 0);
  return CENTRAL_HEADER_FIXED + f.nameLength + (n > 0 ? 4 + 8 * n : 0) + (hasTimestampExtra(f) ? EXTENDED_TIMESTAMP_SIZE : 0);
}

/** Bytes of the data descriptor (with signature) for an entry that has one. */
export function dataDescriptorSize(zip64: boolean): number {
  return zip64 ? 24 : 16;
}

function writeU64(buf: Buffer, value: number, offset: number): number {
  // Numbers up to 2^53 are exact; an archive never gets near that.
  buf.writeUInt32LE(value % 0x1_0000_0000, offset);
  buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), offset + 4);
  return offset + 8;
}

function writeTimestampExtra(buf: Buffer, f: HeaderFields, offset: number): number {
  const t = toUnixTime32(f.mtimeMs);
  if (t === undefined) return offset;
  buf.writeUInt16LE(EXTRA_EXTENDED_TIMESTAMP, offset);
  buf.writeUInt16LE(5, offset + 2);
  buf.writeUInt8(1, offset + 4); // bit 0: modification time present
  buf.writeInt32LE(t, offset + 5);
  return offset + EXTENDED_TIMESTAMP_SIZE;
}

/**
 * Local file header (APPNOTE 4.3.7). With a data descriptor the CRC field is 0 (APPNOTE 4.4.4);
 * sizes are written when known (stored entries) so streaming readers know where the data ends.
 */
export function encodeLocalHeader(f: HeaderFields, crc: number, sizes: LocalSizes | undefined): Buffer {
  const size = localHeaderSize(f);
  const buf = Buffer.allocUnsafe(size);
  const dos = toDosDateTime(f.mtimeMs);
  buf.writeUInt32LE(SIG_LOCAL, 0);
  buf.writeUInt16LE(versionNeeded(f), 4);
  buf.writeUInt16LE(flagsOf(f), 6);
  buf.writeUInt16LE(f.method, 8);
  buf.writeUInt16LE(dos.time, 10);
  buf.writeUInt16LE(dos.date, 12);
  buf.writeUInt32LE(f.hasDescriptor ? 0 : crc >>> 0, 14);
  if (f.zip64) {
    // APPNOTE 4.5.3: the ZIP64 extra in a local header holds BOTH sizes, and the 32-bit fields say 0xFFFFFFFF.
    buf.writeUInt32LE(MAX_U32, 18);
    buf.writeUInt32LE(MAX_U32, 22);
  } else {
    buf.writeUInt32LE(sizes?.compressed ?? 0, 18);
    buf.writeUInt32LE(sizes?.uncompressed ?? 0, 22);
  }
  buf.writeUInt16LE(f.nameLength, 26);
  buf.writeUInt16LE(size - LOCAL_HEADER_FIXED - f.nameLength, 28);
  let o = LOCAL_HEADER_FIXED;
  o += buf.write(f.name, o, 'utf8');
  if (f.zip64) {
    buf.writeUInt16LE(EXTRA_ZIP64, o);
    buf.writeUInt16LE(localZip64DataSize(f), o + 2);
    o = writeU64(buf, sizes?.uncompressed ?? 0, o + 4);
    o = writeU64(buf, sizes?.compressed ?? 0, o);
    if (f.localHeaderOffset === MAX_U32) o = writeU64(buf, f.localHeaderOffset, o);
  }
  o = writeTimestampExtra(buf, f, o);
  if (o !== size) throw new Error(`local header size mismatch: ${o} != ${size}`);
  return buf;
}

/** Data descriptor with signature (APPNOTE 4.3.9); 8-byte sizes exactly when the local header had ZIP64. */
export function encodeDataDescriptor(zip64: boolean, crc: number, compressedSize: number, uncompressedSize: number): Buffer {
  const buf = Buffer.allocUnsafe(dataDescriptorSize(zip64));
  buf.writeUInt32LE(SIG_DESCRIPTOR, 0);
  buf.writeUInt32LE(crc >>> 0, 4);
  if (zip64) {
    writeU64(buf, compressedSize, 8);
    writeU64(buf, uncompressedSize, 16);
  } else {
    buf.writeUInt32LE(compressedSize, 8);
    buf.writeUInt32LE(uncompressedSize, 12);
  }
  return buf;
}

/** Central directory file header (APPNOTE 4.3.12) with the ZIP64 extra holding only the overflowing fields (4.5.3). */
export function encodeCentralHeader(f: HeaderFields, crc: number, compressedSize: number, uncompressedSize: number): Buffer {
  const size = centralHeaderSize(f, compressedSize, uncompressedSize);
  const buf = Buffer.allocUnsafe(size);
  const dos = toDosDateTime(f.mtimeMs);
  const z = centralZip64Fields(f, compressedSize, uncompressedSize);
  buf.writeUInt32LE(SIG_CENTRAL, 0);
  buf.writeUInt16LE(VERSION_MADE_BY, 4);
  buf.writeUInt16LE(versionNeeded(f), 6);
  buf.writeUInt16LE(flagsOf(f), 8);
  buf.writeUInt16LE(f.method, 10);
  buf.writeUInt16LE(dos.time, 12);
  buf.writeUInt16LE(dos.date, 14);
  buf.writeUInt32LE(crc >>> 0, 16);
  buf.writeUInt32LE(z.c ? MAX_U32 : compressedSize, 20);
  buf.writeUInt32LE(z.u ? MAX_U32 : uncompressedSize, 24);
  buf.writeUInt16LE(f.nameLength, 28);
  buf.writeUInt16LE(size - CENTRAL_HEADER_FIXED - f.nameLength, 30);
  buf.writeUInt16LE(0, 32); // comment length
  buf.writeUInt16LE(0, 34); // disk number start: single-disk archive, never 0xFFFF
  buf.writeUInt16LE(0, 36); // internal attributes
  buf.writeUInt32LE(externalAttributes(f.type, f.mode), 38);
  buf.writeUInt32LE(z.o ? MAX_U32 : f.localHeaderOffset, 42);
  let o = CENTRAL_HEADER_FIXED;
  o += buf.write(f.name, o, 'utf8');
  const n = (z.u ? 1 : 0) + (z.c ? 1 : 0) + (z.o ? 1 : 0);
  if (n > 0) {
    buf.writeUInt16LE(EXTRA_ZIP64, o);
    buf.writeUInt16LE(8 * n, o + 2);
    o += 4;
    if (z.u) o = writeU64(buf, uncompressedSize, o);
    if (z.c) o = writeU64(buf, compressedSize, o);
    if (z.o) o = writeU64(buf, f.localHeaderOffset, o);
  }
  o = writeTimestampExtra(buf, f, o);
  if (o !== size) throw new Error(`central header size mismatch: ${o} != ${size}`);
  return buf;
}

export interface EndRecordsInput {
  readonly entryCount: number;
  readonly centralDirectoryOffset: number;
  readonly centralDirectorySize: number;
}

/**
 * ZIP64 end records are needed when a value does not fit (or equals the maximum of) its field in
 * the classic end record: ≥ 65,535 entries, or a central directory of ≥ 4 GiB or starting at ≥ 4 GiB.
 */
export function needsZip64End(e: EndRecordsInput): boolean {
  return e.entryCount >= MAX_U16 || e.centralDirectorySize >= MAX_U32 || e.centralDirectoryOffset >= MAX_U32;
}

export function endRecordsSize(e: EndRecordsInput): number {
  return (needsZip64End(e) ? ZIP64_END_SIZE + ZIP64_LOCATOR_SIZE : 0) + END_SIZE;
}

/** [ZIP64 end of central directory record + locator] + end of central directory record (APPNOTE 4.3.14-4.3.16). */
export function encodeEndRecords(e: EndRecordsInput): Buffer {
  const zip64 = needsZip64End(e);
  const buf = Buffer.alloc(endRecordsSize(e));
  let o = 0;
  const zip64EndOffset = e.centralDirectoryOffset + e.centralDirectorySize;
  if (zip64) {
    buf.writeUInt32LE(SIG_ZIP64_END, o);
    writeU64(buf, ZIP64_END_SIZE - 12, o + 4); // size of the record after this field (APPNOTE 4.3.14.1)
    buf.writeUInt16LE(VERSION_MADE_BY, o + 12);
    buf.writeUInt16LE(45, o + 14);
    buf.writeUInt32LE(0, o + 16); // this disk
    buf.writeUInt32LE(0, o + 20); // disk with the central directory
    writeU64(buf, e.entryCount, o + 24);
    writeU64(buf, e.entryCount, o + 32);
    writeU64(buf, e.centralDirectorySize, o + 40);
    writeU64(buf, e.centralDirectoryOffset, o + 48);
    o += ZIP64_END_SIZE;
    buf.writeUInt32LE(SIG_ZIP64_LOCATOR, o);
    buf.writeUInt32LE(0, o + 4);
    writeU64(buf, zip64EndOffset, o + 8);
    buf.writeUInt32LE(1, o + 16); // total number of disks
    o += ZIP64_LOCATOR_SIZE;
  }
  buf.writeUInt32LE(SIG_END, o);
  buf.writeUInt16LE(0, o + 4);
  buf.writeUInt16LE(0, o + 6);
  buf.writeUInt16LE(Math.min(e.entryCount, MAX_U16), o + 8);
  buf.writeUInt16LE(Math.min(e.entryCount, MAX_U16), o + 10);
  buf.writeUInt32LE(Math.min(e.centralDirectorySize, MAX_U32), o + 12);
  buf.writeUInt32LE(Math.min(e.centralDirectoryOffset, MAX_U32), o + 16);
  buf.writeUInt16LE(0, o + 20); // comment length
  return buf;
}
