import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequestLimiter } from '../../../src/limits/index.ts';
import { FerryError, type Identity } from '../../../src/core/index.ts';

const never = new AbortController().signal;
const subject = (address: string, identity?: Identity) => ({ identity, clientAddress: address });

test('N requests per second per client: a burst of N, then waits, then 429 with Retry-After past the queue timeout', async () => {
  const limiter = createRequestLimiter({ limitReqClient: 5, queueTimeout: 450, queueSize: 10 });
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) await limiter.acquire(subject('10.0.0.1'), never);
  assert.ok(performance.now() - t0 < 50, 'the burst passes at once');
  await limiter.acquire(subject('10.0.0.2'), never);
  assert.ok(performance.now() - t0 < 50, 'another client has its own bucket');
  // The 6th and 7th wait 200 ms and 400 ms (5/s); the 8th would wait 600 ms > 450 ms.
  const waits = [limiter.acquire(subject('10.0.0.1'), never), limiter.acquire(subject('10.0.0.1'), never)];
  await assert.rejects(limiter.acquire(subject('10.0.0.1'), never), (err: unknown) => {
    assert.ok(err instanceof FerryError);
    assert.equal(err.code, 'FERRY_ERR_LIMIT_RATE');
    assert.equal(err.statusCode, 429);
    assert.equal(err.headers['retry-after'], '1');
    return true;
  });
  await Promise.all(waits);
  const elapsed = performance.now() - t0;
  assert.ok(elapsed > 380 && elapsed < 600, `waited ${elapsed} ms`);
});

test('per-role request rates; a client that goes away stops waiting', async () => {
  const limiter = createRequestLimiter({ queueTimeout: 10_000, queueSize: 10, roles: { anonymous: { limitReqClient: 1 } } });
  const admin: Identity = { kind: 'token', name: 'ops', role: 'admin' };
  for (let i = 0; i < 20; i++) await limiter.acquire(subject('10.0.0.1', admin), never);
  await limiter.acquire(subject('10.0.0.1'), never);
  const ac = new AbortController();
  const waiting = limiter.acquire(subject('10.0.0.1'), ac.signal);
  ac.abort(new Error('gone'));
  await assert.rejects(waiting, /gone/);
});

test('no request rate configured: never waits', async () => {
  const limiter = createRequestLimiter({ queueTimeout: 0, queueSize: 0 });
  for (let i = 0; i < 1000; i++) await limiter.acquire(subject('x'), never);
});
