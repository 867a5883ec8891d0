// Positional batched writes with a CRC-32 per piece: whatever the chunking, the file and the
// CRCs must equal the source's. A writer that crossed a piece boundary inside one CRC, or
// dropped a byte at a chunk edge, fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from 'node:zlib';
import { makeTempDir } from '../../helpers/temp-dir.ts';
import { PieceWriter } from '../../../src/download/piece-writer.ts';

const PIECE = 1024 * 1024;

test('random chunking, a run that starts mid-piece, CRC per piece', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const size = 5 * PIECE + 777;
  const src = randomBytes(size);
  const file = path.join(tmp.dir, 'out');
  const fh = await open(file, 'w+');
  t.after(() => fh.close());
  await fh.truncate(size);
  // The first 1000 bytes of piece 0 are "already on disk" (a resumed partial piece).
  await fh.write(src, 0, 1000, 0);
  const crcs = new Map<number, number>();
  let written = 1000;
  const w = new PieceWriter({
    fh, startPos: 1000, crcSeed: crc32(src.subarray(0, 1000)), pieceBytes: PIECE, sizeBytes: size, end: () => size,
    onWritten: (end, bytes, crc, completes) => {
      assert.equal(end - bytes, written, 'in order, no gap');
      written = end;
      if (completes) crcs.set(Math.floor((end - 1) / PIECE), crc);
    },
  });
  let pos = 1000;
  let seed = 7;
  while (pos < size) {
    seed = (seed * 48271) % 2147483647;
    const n = Math.min(size - pos, 1 + (seed % 300_000));
    await w.push(src.subarray(pos, pos + n));
    pos += n;
  }
  await w.finish();
  assert.equal(written, size);
  assert.ok((await readFile(file)).equals(src));
  for (let i = 0; i < 6; i++) {
    assert.equal(crcs.get(i), crc32(src.subarray(i * PIECE, Math.min(size, (i + 1) * PIECE))), `piece ${i}`);
  }
});

test('a shrinking end (work stealing) stops the run exactly there', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const src = randomBytes(4 * PIECE);
  const fh = await open(path.join(tmp.dir, 'out'), 'w+');
  t.after(() => fh.close());
  let end = 4 * PIECE;
  let written = 0;
  const w = new PieceWriter({ fh, startPos: 0, crcSeed: 0, pieceBytes: PIECE, sizeBytes: 4 * PIECE, end: () => end, onWritten: (e) => { written = e; } });
  assert.equal(await w.push(src.subarray(0, 100_000)), true);
  end = 2 * PIECE;
  let more = true;
  for (let pos = 100_000; more && pos < src.length; pos += 65_536) more = await w.push(src.subarray(pos, pos + 65_536));
  assert.equal(more, false);
  await w.finish();
  assert.equal(written, 2 * PIECE);
  const back = Buffer.alloc(2 * PIECE);
  await fh.read(back, 0, back.length, 0);
  assert.ok(back.equals(src.subarray(0, 2 * PIECE)));
});

test('unknown size: the last piece completes when the stream ends', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const src = randomBytes(PIECE + 5);
  const fh = await open(path.join(tmp.dir, 'out'), 'w+');
  t.after(() => fh.close());
  const crcs: number[] = [];
  const w = new PieceWriter({ fh, startPos: 0, crcSeed: 0, pieceBytes: PIECE, sizeBytes: undefined, end: () => Number.MAX_SAFE_INTEGER, onWritten: (_e, _b, crc, completes) => { if (completes) crcs.push(crc); } });
  await w.push(src);
  await w.finish(true);
  assert.deepEqual(crcs, [crc32(src.subarray(0, PIECE)), crc32(src.subarray(PIECE))]);
});
