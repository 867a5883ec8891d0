// The planner's invariants: segments cover exactly the missing bytes, never overlap, cut only
// on piece boundaries, respect the count and the minimum size; stealing halves the largest gap.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { alignUp, chooseSteal, choosePieceSize, MIB, missingRanges, planSegments, type ByteRange } from '../../../src/download/segment-plan.ts';

function assertPartition(segments: ByteRange[], gaps: ByteRange[], pieceBytes: number): void {
  const covered = segments.reduce((s, r) => s + (r.end - r.start), 0);
  assert.equal(covered, gaps.reduce((s, r) => s + (r.end - r.start), 0), 'covers the missing bytes');
  const sorted = [...segments].sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) assert.ok(sorted[i]!.start >= sorted[i - 1]!.end, 'no overlap');
  for (const s of segments) {
    assert.ok(gaps.some((g) => s.start >= g.start && s.end <= g.end), 'inside a gap');
    const atGapStart = gaps.some((g) => g.start === s.start);
    const atGapEnd = gaps.some((g) => g.end === s.end);
    assert.ok(atGapStart || s.start % pieceBytes === 0, `start ${s.start} on a piece boundary`);
    assert.ok(atGapEnd || s.end % pieceBytes === 0, `end ${s.end} on a piece boundary`);
  }
}

test('piece size: 1 MiB up to 4096 pieces, then powers of two', () => {
  assert.equal(choosePieceSize(0), MIB);
  assert.equal(choosePieceSize(512 * MIB), MIB);
  assert.equal(choosePieceSize(4096 * MIB), MIB);
  assert.equal(choosePieceSize(4096 * MIB + 1), 2 * MIB);
  assert.equal(choosePieceSize(40 * 1024 * MIB), 16 * MIB);
});

test('a fresh file splits into N even, piece-aligned segments', () => {
  const size = 512 * MIB;
  const gaps = missingRanges(size, MIB, []);
  assert.deepEqual(gaps, [{ start: 0, end: size }]);
  const segs = planSegments(gaps, 8, MIB, MIB, size);
  assert.equal(segs.length, 8);
  assertPartition(segs, gaps, MIB);
  for (const s of segs) assert.equal(s.end - s.start, 64 * MIB);
});

test('uneven sizes, small files and the minimum segment size', () => {
  const size = 10 * MIB + 123;
  const segs = planSegments(missingRanges(size, MIB, []), 3, MIB, MIB, size);
  assert.equal(segs.length, 3);
  assertPartition(segs, [{ start: 0, end: size }], MIB);
  // 2.5 MiB with a 1 MiB minimum: at most 2 segments.
  const small = 2.5 * MIB;
  assert.equal(planSegments([{ start: 0, end: small }], 16, MIB, MIB, small).length, 2);
  // Smaller than one minimum segment: one segment, whole.
  assert.deepEqual(planSegments([{ start: 0, end: 100 }], 8, MIB, MIB, 100), [{ start: 0, end: 100 }]);
});

test('missing ranges from complete pieces and partial pieces (resume)', () => {
  const size = 10 * MIB;
  const complete = [true, true, false, false, true, false, true, true, true, false];
  const partial = new Map([[3, 1000], [5, MIB - 1]]);
  assert.deepEqual(missingRanges(size, MIB, complete, partial), [
    { start: 2 * MIB, end: 3 * MIB },
    { start: 3 * MIB + 1000, end: 4 * MIB },
    { start: 6 * MIB - 1, end: 6 * MIB },
    { start: 9 * MIB, end: 10 * MIB },
  ]);
});

test('gaps get segments in proportion to their size', () => {
  const size = 100 * MIB;
  const gaps = [{ start: 0, end: 60 * MIB }, { start: 70 * MIB, end: 80 * MIB }, { start: 90 * MIB + 5, end: 91 * MIB }];
  const segs = planSegments(gaps, 8, MIB, MIB, size);
  assert.ok(segs.length <= 8);
  assertPartition(segs, gaps, MIB);
  const inFirst = segs.filter((s) => s.end <= 60 * MIB).length;
  assert.ok(inFirst >= 5, `the 60 MiB gap gets most segments (${inFirst})`);
});

test('property: random gap sets always partition correctly', () => {
  let seed = 42;
  const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31; };
  for (let iter = 0; iter < 300; iter++) {
    const pieces = 1 + Math.floor(rnd() * 200);
    const size = (pieces - 1) * MIB + 1 + Math.floor(rnd() * MIB);
    const complete = Array.from({ length: pieces }, () => rnd() < 0.4);
    const partial = new Map<number, number>();
    for (let i = 0; i < pieces; i++) if (!complete[i] && rnd() < 0.2) partial.set(i, 1 + Math.floor(rnd() * 1000));
    const gaps = missingRanges(size, MIB, complete, partial);
    const n = 1 + Math.floor(rnd() * 16);
    const segs = planSegments(gaps, n, MIB, MIB, size);
    assert.ok(segs.length <= Math.max(n, gaps.length));
    assertPartition(segs, gaps, MIB);
  }
});

test('work stealing takes the back half of the largest remaining gap, on a boundary', () => {
  const size = 100 * MIB;
  const active = [
    { receivedPos: 10 * MIB + 5, end: 20 * MIB },
    { receivedPos: 30 * MIB, end: 70 * MIB },
    { receivedPos: 90 * MIB, end: 100 * MIB },
  ];
  const steal = chooseSteal(active, MIB, MIB, size);
  assert.deepEqual(steal, { index: 1, split: 50 * MIB });
  assert.equal(alignUp(10 * MIB + 5, MIB, size), 11 * MIB);
});

test('no steal when every remaining gap is below two minimum segments', () => {
  assert.equal(chooseSteal([{ receivedPos: 0, end: 2 * MIB - 1 }], MIB, MIB, 10 * MIB), undefined);
  assert.equal(chooseSteal([], MIB, MIB, 10 * MIB), undefined);
  assert.ok(chooseSteal([{ receivedPos: 0, end: 2 * MIB }], MIB, MIB, 10 * MIB) !== undefined);
});
