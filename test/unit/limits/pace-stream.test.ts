import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { paceStream, createBytePacer, TokenBucket, MemoryLimitStore, createTransferControl, type PaceBucket } from '../../../src/limits/index.ts';

const KiB = 1024;
const MiB = 1024 * 1024;

/** A source of `total` bytes in `chunk`-sized pieces; counts how many chunks were read. */
function source(total: number, chunk = 64 * KiB): Readable & { chunksRead: number } {
  let sent = 0;
  const buf = Buffer.alloc(chunk, 7);
  const s = new Readable({
    highWaterMark: chunk,
    read() {
      if (sent >= total) { this.push(null); return; }
      const n = Math.min(chunk, total - sent);
      sent += n;
      (s as Readable & { chunksRead: number }).chunksRead++;
      this.push(n === chunk ? buf : buf.subarray(0, n));
    },
  }) as Readable & { chunksRead: number };
  s.chunksRead = 0;
  return s;
}

/** Drains a stream; returns [bytes, seconds, timestamps of byte milestones]. */
async function drain(r: Readable, marks: number[] = []): Promise<{ bytes: number; seconds: number; markSeconds: number[] }> {
  const t0 = performance.now();
  let bytes = 0;
  const markSeconds: number[] = [];
  await pipeline(r, new Writable({
    write(c: Buffer, _e, cb) {
      bytes += c.length;
      while (markSeconds.length < marks.length && bytes >= marks[markSeconds.length]!) markSeconds.push((performance.now() - t0) / 1000);
      cb();
    },
  }));
  return { bytes, seconds: (performance.now() - t0) / 1000, markSeconds };
}

const local = (rate: number, burst: number, exemptBytes = 0): PaceBucket => ({ kind: 'local', bucket: new TokenBucket({ ratePerSec: rate, burst }, performance.now()), exemptBytes });

test('a 1 MiB/s bucket paces 1 MiB (less the burst) over about a second, every byte intact', async () => {
  const store = new MemoryLimitStore();
  const r = await drain(paceStream(source(MiB), { buckets: [local(MiB, 32 * KiB)], store, sliceBytes: 32 * KiB }));
  assert.equal(r.bytes, MiB);
  const expected = (MiB - 32 * KiB) / MiB;
  assert.ok(r.seconds > expected * 0.95 && r.seconds < expected * 1.15, `took ${r.seconds.toFixed(3)} s, expected ~${expected.toFixed(3)} s`);
});

test('rate-after: the first bytes pass unthrottled, the rest at the rate', async () => {
  const store = new MemoryLimitStore();
  const r = await drain(paceStream(source(768 * KiB), { buckets: [local(512 * KiB, 16 * KiB, 512 * KiB)], store, sliceBytes: 16 * KiB }), [512 * KiB]);
  assert.ok(r.markSeconds[0]! < 0.15, `first 512 KiB took ${r.markSeconds[0]} s`);
  const expected = (256 * KiB - 16 * KiB) / (512 * KiB);
  assert.ok(r.seconds > expected * 0.9 && r.seconds < expected * 1.3 + 0.1, `took ${r.seconds.toFixed(3)} s, expected ~${expected.toFixed(3)} s`);
});

test('the burst goes out at once, then the rate holds', async () => {
  const store = new MemoryLimitStore();
  const r = await drain(paceStream(source(MiB + 512 * KiB), { buckets: [local(MiB, MiB)], store, sliceBytes: 32 * KiB }), [MiB]);
  assert.ok(r.markSeconds[0]! < 0.15, `the 1 MiB burst took ${r.markSeconds[0]} s`);
  assert.ok(r.seconds > 0.45 && r.seconds < 0.65, `the rest took ${r.seconds} s, expected ~0.5 s`);
});

test('four transfers under one shared bucket each get about a quarter', async () => {
  const store = new MemoryLimitStore();
  const spec = { ratePerSec: 2 * MiB, burst: 16 * KiB };
  const counts = [0, 0, 0, 0];
  const acs = counts.map(() => new AbortController());
  const streams = counts.map((_c, i) => paceStream(source(100 * MiB), { buckets: [{ kind: 'shared', key: 'global', spec, exemptBytes: 0 }], store, sliceBytes: 16 * KiB, signal: acs[i]!.signal }));
  streams.forEach((s, i) => s.on('data', (c: Buffer) => { counts[i]! += c.length; }));
  await new Promise((r) => setTimeout(r, 1200));
  for (const s of streams) s.destroy();
  const total = counts.reduce((a, b) => a + b, 0);
  assert.ok(total > 2 * MiB * 1.2 * 0.85 && total < 2 * MiB * 1.2 * 1.1, `total ${total}`);
  for (const c of counts) assert.ok(Math.abs(c / total - 0.25) < 0.05, `shares ${counts.map((x) => (x / total).toFixed(3)).join(' ')}`);
});

test('a consumer that stops reading stops the source too: nothing piles up', async () => {
  const store = new MemoryLimitStore();
  const src = source(64 * MiB, 64 * KiB);
  const paced = paceStream(src, { buckets: [local(1e12, 1e12)], store, sliceBytes: 64 * KiB });
  paced.pause();
  paced.read(0);
  await new Promise((r) => setTimeout(r, 100));
  // At most: the chunk being sliced, the paced stream's buffer and the source's own buffer.
  assert.ok(src.chunksRead <= 4, `source read ${src.chunksRead} chunks while nobody consumed`);
  paced.destroy();
  await new Promise((resolve) => src.once('close', resolve));
  assert.equal(src.destroyed, true);
});

test('destroying the paced stream destroys the source and gives back reserved shared tokens', async () => {
  const store = new MemoryLimitStore();
  const spec = { ratePerSec: 64 * KiB, burst: 16 * KiB };
  const src = source(MiB, 16 * KiB);
  const paced = paceStream(src, { buckets: [{ kind: 'shared', key: 'c', spec, exemptBytes: 0 }], store, sliceBytes: 16 * KiB });
  paced.on('data', () => {});
  paced.on('error', () => {});
  await new Promise((r) => setTimeout(r, 50));
  paced.destroy();
  await new Promise((resolve) => src.once('close', resolve));
  assert.equal(src.destroyed, true);
  // The bucket is back near empty-debt: the next 16 KiB waits at most about one slice (250 ms), not two.
  const wait = store.reserve('c', 16 * KiB, spec);
  assert.ok(wait <= 260, `wait ${wait} ms`);
});

test('createTransferControl: no limits → the very same stream; a signed-link rate applies on its own', async () => {
  const tc = createTransferControl({ queueTimeout: 1000, queueSize: 10 });
  const s = source(1);
  const signal = new AbortController().signal;
  assert.equal(tc.pace({ identity: undefined, clientAddress: 'x' }, s, signal), s);
  assert.equal(tc.paceUpload({ identity: undefined, clientAddress: 'x' }, s, signal), s);
  s.destroy();
  const linked = tc.pace({ identity: { kind: 'link', name: 'x', role: 'read', maxRateBytesPerSec: 256 * KiB }, clientAddress: 'x' }, source(384 * KiB), signal);
  const r = await drain(linked);
  assert.ok(r.seconds > 0.4 && r.seconds < 0.75, `link-bound transfer took ${r.seconds} s, expected ~0.5 s`);
  const up = createTransferControl({ queueTimeout: 1000, queueSize: 10, limitUploadRate: 256 * KiB });
  const u = await drain(up.paceUpload({ identity: undefined, clientAddress: 'x' }, source(384 * KiB), signal));
  assert.ok(u.seconds > 0.4 && u.seconds < 0.75, `upload took ${u.seconds} s, expected ~0.5 s`);
});

test('createBytePacer: no promise while the bucket holds enough; waits after; an abort gives the tokens back', async () => {
  const store = new MemoryLimitStore();
  const spec = { ratePerSec: 100 * KiB, burst: 20 * KiB };
  const ac = new AbortController();
  const pacer = createBytePacer({ buckets: [{ kind: 'shared', key: 'k', spec, exemptBytes: 0 }], store, signal: ac.signal });
  assert.equal(pacer.take(10 * KiB), undefined);
  assert.equal(pacer.take(10 * KiB), undefined, 'the 20 KiB burst is free');
  const t0 = performance.now();
  await pacer.take(10 * KiB);
  const waited = performance.now() - t0;
  assert.ok(waited >= 90 && waited < 200, `waited ${waited} ms for 10 KiB at 100 KiB/s`);
  const pending = pacer.take(50 * KiB);
  assert.ok(pending instanceof Promise);
  ac.abort(new Error('gone'));
  await assert.rejects(pending, /gone/);
  assert.throws(() => pacer.take(1), /gone/);
  // Refunded: a newcomer waits ~100 ms for 10 KiB (debt of the 3rd take), not ~600 ms.
  assert.ok(store.reserve('k', 10 * KiB, spec) < 200);
  const tc = createTransferControl({ queueTimeout: 1, queueSize: 1 });
  assert.equal(tc.pacer({ identity: undefined, clientAddress: 'x' }, ac.signal), undefined, 'no limits: no pacer');
  assert.equal(tc.chunkBytes({ identity: undefined, clientAddress: 'x' }), undefined);
  const limited = createTransferControl({ queueTimeout: 1, queueSize: 1, limitRate: 64 * KiB });
  assert.equal(limited.chunkBytes({ identity: undefined, clientAddress: 'x' }), 16 * KiB, 'four 4 KiB slices at 64 KiB/s');
});
