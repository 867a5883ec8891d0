// The token bucket holds a transfer to its rate (after the burst).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTokenBucket } from '../../../src/download/rate-limiter.ts';

test('3 MiB at 10 MiB/s with a 1 MiB burst takes about 0.2 s', async () => {
  const bucket = createTokenBucket({ rateBytesPerSec: 10 * 1048576, burstBytes: 1048576 });
  const t0 = performance.now();
  for (let i = 0; i < 48; i++) await bucket.take(65_536);
  const ms = performance.now() - t0;
  assert.ok(ms >= 180 && ms < 1000, `${ms.toFixed(0)} ms`);
});

test('an abort stops the wait', async () => {
  const bucket = createTokenBucket({ rateBytesPerSec: 1024, burstBytes: 1024 });
  const ac = new AbortController();
  const p = bucket.take(1024 * 1024, ac.signal);
  ac.abort(new Error('stop'));
  await assert.rejects(p, /stop/);
});
