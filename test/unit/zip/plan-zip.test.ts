/**
 * The planner and encoders, without I/O: thresholds from APPNOTE (a value equal to 0xFFFF /
 * 0xFFFFFFFF already goes to ZIP64), DOS time clamping, name rules, exact sizes. Sizes of
 * several GiB are fine here: nothing is read or written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  planZip, findEntryAt, findCentralEntryAt, toDosDateTime, toUnixTime32, EntryNameRegistry, numberedName, toArchiveFileName,
  sanitizeSegment, joinEntryName, isCompressible, deflateBound, MAX_U32, type ZipMemberInput,
} from '../../../src/zip/index.ts';
import { encodeCentralHeader, encodeLocalHeader, encodeEndRecords } from '../../../src/zip/encode-headers.ts';
import { FerryError } from '../../../src/core/errors.ts';

const T = Date.UTC(2024, 4, 6, 7, 8, 10);
const file = (name: string, size: number, extra: Partial<ZipMemberInput<null>> = {}): ZipMemberInput<null> =>
  ({ name, type: 'file', size, mtimeMs: T, mode: 0o100644, ref: null, ...extra });

function zip64Extra(buf: Buffer, fixed: number): Buffer | undefined {
  const nameLen = buf.readUInt16LE(fixed === 30 ? 26 : 28);
  const extraLen = buf.readUInt16LE(fixed === 30 ? 28 : 30);
  let o = fixed + nameLen;
  while (o < fixed + nameLen + extraLen) {
    const id = buf.readUInt16LE(o);
    const len = buf.readUInt16LE(o + 2);
    if (id === 1) return buf.subarray(o + 4, o + 4 + len);
    o += 4 + len;
  }
  return undefined;
}

test('DOS date/time: UTC, 2-second steps, clamped to 1980-01-01 … 2107-12-31 23:59:58 (APPNOTE 4.4.6)', () => {
  const cases: Array<[number, [number, number, number, number, number, number]]> = [
    [Date.UTC(2024, 4, 6, 7, 8, 11), [2024, 5, 6, 7, 8, 10]],
    [Date.UTC(1980, 0, 1, 0, 0, 0), [1980, 1, 1, 0, 0, 0]],
    [Date.UTC(1970, 0, 1), [1980, 1, 1, 0, 0, 0]],
    [-1e12, [1980, 1, 1, 0, 0, 0]],
    [Date.UTC(2107, 11, 31, 23, 59, 59), [2107, 12, 31, 23, 59, 58]],
    [Date.UTC(2200, 0, 1), [2107, 12, 31, 23, 59, 58]],
    [Number.NaN, [1980, 1, 1, 0, 0, 0]],
  ];
  for (const [ms, [y, mo, d, h, mi, s]] of cases) {
    const { date, time } = toDosDateTime(ms);
    assert.deepEqual([(date >> 9) + 1980, (date >> 5) & 15, date & 31, time >> 11, (time >> 5) & 63, (time & 31) * 2], [y, mo, d, h, mi, s], `for ${ms}`);
  }
});

test('extended timestamp: real seconds when they fit 0 … 2^31-1, omitted otherwise', () => {
  assert.equal(toUnixTime32(1_700_000_000_999), 1_700_000_000);
  assert.equal(toUnixTime32(0), 0);
  assert.equal(toUnixTime32(-1000), undefined);
  assert.equal(toUnixTime32(2 ** 31 * 1000), undefined);
  const withUt = planZip([file('a', 1)], { layout: 'crc-first' }).entries[0]!;
  const withoutUt = planZip([file('a', 1, { mtimeMs: Date.UTC(2100, 0, 1) })], { layout: 'crc-first' }).entries[0]!;
  assert.equal(withUt.localHeaderSize - withoutUt.localHeaderSize, 9);
});

test('ZIP64 sizes from 0xFFFFFFFF (not above it): local extra has BOTH sizes, central too', () => {
  const below = planZip([file('a', MAX_U32 - 1)], { layout: 'crc-first' }).entries[0]!;
  assert.equal(below.zip64, false);
  const at = planZip([file('a', MAX_U32)], { layout: 'crc-first' }).entries[0]!;
  assert.equal(at.zip64, true);
  const lh = encodeLocalHeader(at, 0x12345678, { compressed: at.size, uncompressed: at.size });
  assert.equal(lh.readUInt32LE(18), MAX_U32);
  assert.equal(lh.readUInt32LE(22), MAX_U32);
  assert.equal(lh.readUInt16LE(4), 45, 'version needed 4.5');
  const ex = zip64Extra(lh, 30)!;
  assert.equal(ex.length, 16);
  assert.equal(Number(ex.readBigUInt64LE(0)), MAX_U32);
  assert.equal(Number(ex.readBigUInt64LE(8)), MAX_U32);
  const ch = encodeCentralHeader(at, 0x12345678, at.size, at.size);
  assert.equal(ch.readUInt32LE(20), MAX_U32);
  assert.equal(ch.readUInt32LE(24), MAX_U32);
  assert.equal(ch.readUInt32LE(42), 0, 'offset 0 fits');
  assert.equal(zip64Extra(ch, 46)!.length, 16);
  assert.equal(ch.readUInt16LE(4), (3 << 8) | 63, 'version made by: UNIX, 6.3');
});

test('the entry after one of exactly 0xFFFFFFFF bytes repeats its sizes in ZIP64 (Info-ZIP unzip stale-size bug)', () => {
  const plan = planZip([file('exact', MAX_U32), file('next', 10), file('third', 10)], { layout: 'crc-first' });
  const next = plan.entries[1]!;
  const ch = encodeCentralHeader(next, 0, 10, 10);
  assert.equal(ch.readUInt32LE(20), MAX_U32);
  assert.equal(ch.readUInt32LE(24), MAX_U32);
  assert.equal(ch.readUInt32LE(42), MAX_U32, 'offset past 4 GiB');
  const ex = zip64Extra(ch, 46)!;
  assert.deepEqual([ex.readBigUInt64LE(0), ex.readBigUInt64LE(8), ex.readBigUInt64LE(16)], [10n, 10n, BigInt(next.localHeaderOffset)]);
  const third = encodeCentralHeader(plan.entries[2]!, 0, 10, 10);
  assert.equal(zip64Extra(third, 46)!.length, 8, 'only the offset for the entry after that');
  const lh = encodeLocalHeader(next, 0, { compressed: 10, uncompressed: 10 });
  assert.equal(zip64Extra(lh, 30), undefined, 'the local header needs no ZIP64');
});

test('an entry with ZIP64 sizes starting at exactly 0xFFFFFFFF also carries its offset in the local extra', () => {
  // Find the first member size that puts the second local header at exactly 0xFFFFFFFF.
  const probe = planZip([file('a', 0), file('b', MAX_U32)], { layout: 'crc-first' });
  const firstSize = MAX_U32 - probe.entries[1]!.localHeaderOffset;
  const plan = planZip([file('a', firstSize), file('b', MAX_U32)], { layout: 'crc-first' });
  const b = plan.entries[1]!;
  assert.equal(b.localHeaderOffset, MAX_U32);
  const lh = encodeLocalHeader(b, 0, { compressed: b.size, uncompressed: b.size });
  assert.equal(lh.length, b.localHeaderSize);
  const ex = zip64Extra(lh, 30)!;
  assert.equal(ex.length, 24);
  assert.equal(Number(ex.readBigUInt64LE(16)), MAX_U32);
  assert.equal(b.dataOffset, MAX_U32 + b.localHeaderSize);
});

test('ZIP64 end records from 65,535 entries (0xFFFF itself means "see ZIP64"), and for a central directory at ≥ 4 GiB', () => {
  const n = (count: number): ZipMemberInput<null>[] => Array.from({ length: count }, (_, i) => file(`f${i}`, 0));
  assert.equal(planZip(n(65_534), { layout: 'crc-first' }).zip64End, false);
  const at = planZip(n(65_535), { layout: 'crc-first' });
  assert.equal(at.zip64End, true);
  const end = encodeEndRecords({ entryCount: 65_535, centralDirectoryOffset: at.centralDirectoryOffset, centralDirectorySize: at.centralDirectorySize });
  assert.equal(end.length, 56 + 20 + 22);
  assert.equal(end.readUInt32LE(0), 0x06064b50);
  assert.equal(Number(end.readBigUInt64LE(32)), 65_535);
  assert.equal(end.readUInt32LE(56), 0x07064b50);
  assert.equal(Number(end.readBigUInt64LE(64)), at.centralDirectoryOffset + at.centralDirectorySize, 'locator points at the ZIP64 end record');
  assert.equal(end.readUInt16LE(76 + 10), 0xffff);
  // Central directory starting at exactly 0xFFFFFFFF.
  const probe = planZip([file('a', 0)], { layout: 'crc-first' });
  const size = MAX_U32 - probe.centralDirectoryOffset;
  const plan = planZip([file('a', size)], { layout: 'crc-first' });
  assert.equal(plan.centralDirectoryOffset, MAX_U32);
  assert.equal(plan.zip64End, true);
  assert.equal(planZip([file('a', size - 1)], { layout: 'crc-first' }).zip64End, false);
});

test('descriptor layout: only non-empty files get bit 3; 16 or 24-byte descriptors', () => {
  const plan = planZip([file('a', 5), file('e', 0), { ...file('d', 0), type: 'directory' }, file('big', MAX_U32 + 1)], { layout: 'descriptor' });
  assert.deepEqual(plan.entries.map((e) => [e.hasDescriptor, e.descriptorSize]), [[true, 16], [false, 0], [false, 0], [true, 24]]);
  assert.equal(plan.entries[2]!.name, 'd/');
  const lh = encodeLocalHeader(plan.entries[0]!, 0xdeadbeef, { compressed: 5, uncompressed: 5 });
  assert.equal(lh.readUInt16LE(6), 0x0808, 'bits 3 and 11');
  assert.equal(lh.readUInt32LE(14), 0, 'CRC deferred to the descriptor');
  assert.equal(lh.readUInt32LE(18), 5, 'stored size still stated for streaming readers');
});

test('exact total length and lookup of the piece holding any byte', () => {
  const members = [file('a', 10), file('b', 0), file('c', 1000), { ...file('d', 0), type: 'directory' as const }];
  for (const layout of ['crc-first', 'descriptor'] as const) {
    const plan = planZip(members, { layout });
    let sum = 0;
    for (const e of plan.entries) sum += e.localHeaderSize + e.size + e.descriptorSize + e.centralHeaderSize;
    assert.equal(plan.totalBytes, sum + 22);
    for (const e of plan.entries) {
      assert.equal(findEntryAt(plan, e.localHeaderOffset), e.index);
      assert.equal(findEntryAt(plan, e.dataOffset + e.size + e.descriptorSize - 1), e.index);
      assert.equal(findCentralEntryAt(plan, e.centralHeaderOffset + e.centralHeaderSize - 1), e.index);
    }
  }
});

test('names: no absolute, empty, dot or backslash names are planned; unsafe names are refused', () => {
  for (const bad of ['', '/abs', 'a//b', '../x', 'a/./b', 'a/..', 'dir/', 'a\\b', 'nul\0']) {
    assert.throws(() => planZip([file(bad, 1)], { layout: 'crc-first' }), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_ZIP_SELECTION_INVALID', bad);
  }
  assert.equal(sanitizeSegment('a\\..\\b'), 'a_.._b');
  assert.equal(joinEntryName(['季度', 'c:\\x']), '季度/c:_x');
  assert.throws(() => sanitizeSegment('..'));
  assert.throws(() => planZip([file('x'.repeat(65_536), 1)], { layout: 'crc-first' }));
});

test('duplicate top-level names get (2), (3) … before the extension; case-insensitive at the top level', () => {
  const reg = new EntryNameRegistry();
  assert.equal(reg.claim('report.pdf', 'file', { caseInsensitive: true }), 'report.pdf');
  assert.equal(reg.claim('report.pdf', 'file', { caseInsensitive: true }), 'report (2).pdf');
  assert.equal(reg.claim('Report.PDF', 'file', { caseInsensitive: true }), 'Report (3).PDF');
  assert.equal(reg.claim('report (2).pdf', 'file', { caseInsensitive: true }), 'report (2) (2).pdf');
  assert.equal(reg.claim('photos', 'directory', { caseInsensitive: true }), 'photos');
  assert.equal(reg.claim('photos', 'directory', { caseInsensitive: true }), 'photos (2)');
  assert.equal(reg.claim('photos.2024', 'directory'), 'photos.2024');
  assert.equal(reg.claim('photos.2024', 'directory'), 'photos.2024 (2)', 'folders keep their dots');
  assert.equal(numberedName('.profile', 2, 'file'), '.profile (2)');
  assert.equal(numberedName('a/b.tar.gz', 2, 'file'), 'a/b.tar (2).gz');
});

test('archive file name: one safe segment ending in .zip', () => {
  assert.equal(toArchiveFileName(undefined, 'photos'), 'photos.zip');
  assert.equal(toArchiveFileName('季度报告.zip', 'x'), '季度报告.zip');
  assert.equal(toArchiveFileName('../../etc/passwd', 'x'), '.._.._etc_passwd.zip');
  assert.equal(toArchiveFileName('a\r\nb', 'x'), 'a__b.zip');
  assert.equal(toArchiveFileName('  ', 'fallback'), 'fallback.zip');
  assert.ok(Buffer.byteLength(toArchiveFileName('🦄'.repeat(200), 'x')) <= 255);
});

test('compressible: media and archives stored, text deflated; deflate bound covers worst case', () => {
  assert.equal(isCompressible('a/b.txt', 1000), true);
  assert.equal(isCompressible('movie.MP4', 1000), false);
  assert.equal(isCompressible('x.tar.gz', 1000), false);
  assert.equal(isCompressible('tiny.txt', 10), false);
  assert.ok(deflateBound(MAX_U32 - 1_000_000) >= MAX_U32, 'near-4 GiB members use ZIP64 when deflated');
  assert.ok(deflateBound(MAX_U32 - 2_000_000) < MAX_U32);
});
