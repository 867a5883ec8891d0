/**
 * The pure decisions of the S3 write half: the part-size schedule (S3's 10,000-part limit),
 * copy ranges (S3's 5 MiB part minimum), checkpoint states coming back from records, staged
 * ids, staging keys, and the names `rename` tries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/index.ts';
import { copyRanges, idOfStagingKey, partBytes, partsEnd, MAX_PARTS, MIN_PART_BYTES, PARTS_PER_STEP, checkStagedId } from '../../../src/storage/s3/s3-write-kit.ts';
import { decodeState } from '../../../src/storage/s3/s3-staging.ts';
import { conflictName } from '../../../src/storage/s3/s3-publish.ts';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// Regression: with a fixed 8 MiB part, an upload stopped at 10,000 parts (78 GiB) while
// --max-upload-size defaults to 100G; the schedule lets 8M parts carry 484 GiB.
test('part sizes: base for 2,000 parts, then doubling every 2,000 parts up to 16 × base, never above 5 GiB', () => {
  const base = 8 * MiB;
  assert.equal(partBytes(base, 1), base);
  assert.equal(partBytes(base, PARTS_PER_STEP), base);
  assert.equal(partBytes(base, PARTS_PER_STEP + 1), 2 * base);
  assert.equal(partBytes(base, 4 * PARTS_PER_STEP + 1), 16 * base);
  assert.equal(partBytes(base, MAX_PARTS), 16 * base);
  assert.equal(partBytes(1 * GiB, MAX_PARTS), 5 * GiB, 'capped at S3\'s largest part');
  assert.equal(partsEnd(base, 0), 0);
  assert.equal(partsEnd(base, 3), 3 * base);
  assert.equal(partsEnd(base, PARTS_PER_STEP + 2), PARTS_PER_STEP * base + 2 * 2 * base);
  assert.equal(partsEnd(base, MAX_PARTS), 62_000 * base);
  assert.ok(partsEnd(base, MAX_PARTS) > 100 * GiB * 4, '484 GiB at the default part size');
  for (let n = 1; n <= MAX_PARTS; n += 997) assert.equal(partsEnd(base, n) - partsEnd(base, n - 1), partBytes(base, n), `part ${n}`);
});

test('copy ranges cover every byte once, none below 5 MiB except a lone one', () => {
  for (const size of [1, MIN_PART_BYTES, GiB, GiB + 1, GiB + MIN_PART_BYTES, 3 * GiB + 7, 12 * GiB]) {
    const ranges = copyRanges(size);
    assert.equal(ranges[0]!.start, 0);
    assert.equal(ranges.at(-1)!.end, size - 1);
    for (let i = 1; i < ranges.length; i++) assert.equal(ranges[i]!.start, ranges[i - 1]!.end + 1);
    if (ranges.length > 1) for (const r of ranges) assert.ok(r.end - r.start + 1 >= MIN_PART_BYTES, `${size}: ${r.start}-${r.end}`);
    for (const r of ranges) assert.ok(r.end - r.start + 1 <= 5 * GiB);
  }
  assert.equal(copyRanges(GiB + 1).length, 1, 'a 1-byte remainder joins the range before it');
});

test('checkpoint states: only what the writer produced is accepted (offset, parts and tail agree)', () => {
  const base = 5 * MiB;
  const ok = { v: 1, sealed: false, uploadId: 'u', parts: 2, partSize: base, tail: 'ab12', tailSize: 10 };
  assert.deepEqual(decodeState({ offset: 2 * base + 10, state: ok }), { sealed: false, uploadId: 'u', parts: 2, partSize: base, tail: 'ab12', tailSize: 10 });
  assert.equal(decodeState({ offset: 0 }), undefined);
  assert.deepEqual(decodeState({ offset: 5, state: { v: 1, sealed: true } }), { sealed: true });
  const refused = [
    { offset: 2 * base + 11, state: ok },
    { offset: 2 * base, state: { ...ok, tail: null } },
    { offset: 2 * base + 10, state: { ...ok, uploadId: null } },
    { offset: 2 * base + 10, state: { ...ok, tail: '../x' } },
    { offset: base + base, state: { ...ok, parts: 1, tailSize: base } },
    { offset: 2 * base + 10, state: { ...ok, partSize: 1000 } },
    { offset: 2 * base + 10, state: { ...ok, v: 2 } },
    { offset: 7 },
  ];
  for (const cp of refused) assert.throws(() => decodeState(cp), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_UPLOAD_OFFSET_MISMATCH', JSON.stringify(cp));
});

test('staged ids and staging keys', () => {
  for (const good of ['a', 'A-z_09', 'x'.repeat(64)]) checkStagedId(good);
  for (const bad of ['', '..', 'a/b', 'a.b', 'x'.repeat(65), 'é', 'a b']) assert.throws(() => checkStagedId(bad), (err: unknown) => err instanceof FerryError && err.statusCode === 400, bad);
  assert.equal(idOfStagingKey('up-1'), 'up-1');
  assert.equal(idOfStagingKey('up-1.tail-0123abcd'), 'up-1');
  assert.equal(idOfStagingKey('a/b'), undefined);
  assert.equal(idOfStagingKey('.tail-1'), undefined);
});

test('rename candidates match the uploads rule (src/uploads/conflict-name.ts)', () => {
  assert.equal(conflictName('report.pdf', 0), 'report.pdf');
  assert.equal(conflictName('report.pdf', 1), 'report (1).pdf');
  assert.equal(conflictName('backup.tar.gz', 2), 'backup (2).tar.gz');
  assert.equal(conflictName('.env', 1), '.env (1)');
  assert.ok(Buffer.byteLength(conflictName(`${'é'.repeat(126)}.txt`, 12)) <= 255);
});
