/**
 * The worker-thread digest engine gives exactly node:crypto's sha-256 and zlib's CRC-32, keeps
 * snapshots and forks apart (a discarded chunk never reaches a committed state), and applies
 * backpressure instead of queueing without bound.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { DigestEngine } from '../../../src/uploads/digest-engine.ts';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('same digests as node:crypto / zlib across batch boundaries', async (t) => {
  const engine = new DigestEngine();
  t.after(() => engine.close());
  const data = randomBytes(3 * 1024 * 1024 + 12345);
  const running = engine.empty().fork();
  // Odd chunk sizes straddle the 1 MiB batches.
  for (let i = 0, n = 1; i < data.length; n = (n * 7 + 13) % 300_000 + 1) {
    const end = Math.min(data.length, i + n);
    await running.update(data.subarray(i, end));
    i = end;
  }
  const r = await running.snapshot().result();
  assert.equal(r.sha256, sha(data));
  assert.equal(r.crc32, crc32(data) >>> 0);
  assert.deepEqual(await engine.empty().result(), { sha256: sha(Buffer.alloc(0)), crc32: 0 });
});

test('a fork fed a discarded chunk leaves the committed snapshot alone', async (t) => {
  const engine = new DigestEngine();
  t.after(() => engine.close());
  const a = Buffer.from('hello ');
  const bad = Buffer.from('WORLD');
  const good = Buffer.from('world');
  const r1 = engine.empty().fork();
  await r1.update(a);
  const committed = r1.snapshot();
  const attempt = committed.fork();
  await attempt.update(bad); // a 460: this fork is dropped
  const retry = committed.fork();
  await retry.update(good);
  assert.equal(committed.offset, 6);
  assert.equal((await committed.result()).sha256, sha(a));
  assert.equal((await retry.snapshot().result()).sha256, sha(Buffer.concat([a, good])));
  assert.equal((await attempt.snapshot().result()).sha256, sha(Buffer.concat([a, bad])));
});

test('backpressure: update returns a promise when the worker is behind; awaiting it bounds memory', async (t) => {
  const engine = new DigestEngine();
  t.after(() => engine.close());
  const running = engine.empty().fork();
  const block = Buffer.alloc(1024 * 1024, 1);
  let waited = 0;
  const rssBefore = process.memoryUsage().rss;
  let peak = 0;
  for (let i = 0; i < 512; i++) {
    const p = running.update(block);
    if (p !== undefined) { waited++; await p; }
    peak = Math.max(peak, process.memoryUsage().rss);
  }
  assert.ok(waited > 0, 'the producer was asked to wait');
  assert.ok(peak - rssBefore < 200 * 1024 * 1024, `RSS grew by ${((peak - rssBefore) / 2 ** 20).toFixed(0)} MiB for 512 MiB hashed`);
  const r = await running.snapshot().result();
  const expected = createHash('sha256');
  for (let i = 0; i < 512; i++) expected.update(block);
  assert.equal(r.sha256, expected.digest('hex'));
});

test('after close, results reject (callers fall back to reading the file)', async () => {
  const engine = new DigestEngine();
  const s = engine.empty();
  await engine.close();
  await engine.close();
  await assert.rejects(s.result());
});
