// Which failures are retried (issue: timeouts, resets, 408/429/5xx) and how long to wait.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelayMs, classifyStatus, isRetryableNetworkError } from '../../../src/download/retry-policy.ts';

test('408, 429 and every 5xx are retried; other 4xx are final', () => {
  for (const s of [408, 429, 500, 502, 503, 504, 599]) assert.equal(classifyStatus(s), 'retry', String(s));
  for (const s of [400, 401, 403, 404, 405, 410, 412, 416, 451]) assert.equal(classifyStatus(s), 'final', String(s));
});

test('network errors by code, also when wrapped in a cause', () => {
  assert.equal(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'ECONNRESET' })), true);
  assert.equal(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'UND_ERR_BODY_TIMEOUT' })), true);
  assert.equal(isRetryableNetworkError(new Error('outer', { cause: Object.assign(new Error('x'), { code: 'ECONNREFUSED' }) })), true);
  assert.equal(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'ENOSPC' })), false);
  assert.equal(isRetryableNetworkError(Object.assign(new Error('x'), { code: 'ENOTFOUND' })), false);
  assert.equal(isRetryableNetworkError('nope'), false);
});

test('exponential backoff with equal jitter, capped, Retry-After as a floor', () => {
  const o = { baseMs: 100, maxMs: 1000 };
  assert.equal(backoffDelayMs(1, o, undefined, 0), 50);
  assert.equal(backoffDelayMs(1, o, undefined, 0.999999), 100);
  assert.equal(backoffDelayMs(3, o, undefined, 0), 200);
  assert.equal(backoffDelayMs(20, o, undefined, 1), 1000);
  assert.equal(backoffDelayMs(1, o, 5000, 0.5), 5000);
  assert.equal(backoffDelayMs(4, o, 10, 0), 400);
});
