import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket, MemoryLimitStore } from '../../../src/limits/index.ts';

test('a full bucket grants its burst at once, then one token per 1/rate', () => {
  const b = new TokenBucket({ ratePerSec: 1000, burst: 500 }, 0);
  assert.equal(b.reserve(500, 0), 0, 'the burst is free');
  assert.equal(b.reserve(100, 0), 100, '100 more tokens at 1000/s: 100 ms');
  assert.equal(b.reserve(100, 0), 200, 'debt queues up in arrival order');
  assert.equal(b.available(0), -200);
  assert.equal(b.reserve(100, 1000), 0, 'after a second the debt is paid and 200 tokens refilled');
});

test('idle time refills up to the burst, never beyond', () => {
  const b = new TokenBucket({ ratePerSec: 1000, burst: 100 }, 0);
  assert.equal(b.isIdle(10_000), true);
  assert.equal(b.reserve(100, 10_000), 0);
  assert.equal(b.reserve(100, 10_000), 100, 'ten idle seconds did not bank 10 000 tokens');
  assert.equal(b.isIdle(10_100), false);
  assert.equal(b.isIdle(10_200), true);
});

test('refund gives back unused reservations (not below a full bucket)', () => {
  const b = new TokenBucket({ ratePerSec: 1000, burst: 100 }, 0);
  b.reserve(100, 0);
  assert.equal(b.reserve(300, 0), 300);
  b.refund(300, 0);
  assert.equal(b.reserve(100, 0), 100);
  b.refund(10_000, 0);
  assert.equal(b.available(0), 100);
});

test('invalid specs are refused', () => {
  assert.throws(() => new TokenBucket({ ratePerSec: 0, burst: 1 }, 0), RangeError);
  assert.throws(() => new TokenBucket({ ratePerSec: 1, burst: 0 }, 0), RangeError);
});

test('memory store: shared buckets per key, all-or-none counters, idle buckets forgotten', () => {
  let now = 0;
  const store = new MemoryLimitStore({ now: () => now });
  const spec = { ratePerSec: 1000, burst: 1000 };
  assert.equal(store.reserve('a', 1000, spec), 0);
  assert.equal(store.reserve('a', 500, spec), 500);
  assert.equal(store.reserve('b', 1000, spec), 0, 'another key has its own bucket');
  const client = { key: 'c', limit: 1 };
  const global = { key: 'g', limit: 2 };
  assert.equal(store.tryAcquire([client, global]), -1);
  assert.equal(store.tryAcquire([client, global]), 0, 'the client counter is full');
  assert.equal(store.held('g'), 1, 'nothing taken when one counter is full');
  assert.equal(store.tryAcquire([{ key: 'd', limit: 1 }, global]), -1);
  assert.equal(store.tryAcquire([{ key: 'e', limit: 1 }, global]), 1, 'the global counter is full');
  store.release([client, global]);
  assert.equal(store.held('c'), 0);
  assert.equal(store.held('g'), 1);
  // 2000 idle clients: the map is swept instead of growing without bound.
  now = 100_000;
  for (let i = 0; i < 2000; i++) store.reserve(`ip:${i}`, 1, spec);
  now = 200_000;
  store.reserve('late', 1, spec);
  for (let i = 0; i < 2000; i++) store.reserve(`ip2:${i}`, 1, spec);
  assert.ok(store.bucketCount < 3000, `bucket count ${store.bucketCount}`);
});

test('regression: taking exactly the full burst is not a wait, whatever floating point does', () => {
  // (now + 1000) - 1000 - now is 1.1e-13 for this clock value; a request limiter with a
  // queue timeout of 0 answered 429 to a client's very first request.
  const now = 939.145721525092;
  const b = new TokenBucket({ ratePerSec: 1, burst: 1 }, now);
  assert.equal(b.reserve(1, now), 0);
  assert.ok(Math.abs(b.reserve(1, now) - 1000) < 1e-6);
});
