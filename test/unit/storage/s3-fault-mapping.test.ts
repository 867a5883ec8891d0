/**
 * The pure decisions behind the S3 read path's fault handling (src/storage/s3/): which store
 * answers become 502 or 503 (and with which Retry-After), which body failures are worth a
 * continuation, and the continuation backoff. The behaviour end to end is in
 * test/integration/s3-faults.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/errors.ts';
import { mapS3Error, storeRetryAfterSeconds } from '../../../src/storage/s3/s3-storage.ts';
import { isBrokenBody, resumeDelayMs } from '../../../src/storage/s3/s3-read-session.ts';

/** An SDK service error as the AWS SDK v3 throws it (name, HTTP status, raw response headers). */
function sdkError(name: string, status: number, headers: Record<string, string> = {}): Error {
  return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, $response: { statusCode: status, headers } });
}

test('mapS3Error: 5xx other than 503 is 502, throttling and 503 are 503 with the store\'s Retry-After (capped)', () => {
  const cases: Array<{ err: unknown; code: string; status: number; retryAfter?: string }> = [
    { err: sdkError('InternalError', 500), code: 'FERRY_ERR_STORAGE_BAD_GATEWAY', status: 502 },
    { err: sdkError('BadGateway', 502), code: 'FERRY_ERR_STORAGE_BAD_GATEWAY', status: 502 },
    { err: sdkError('GatewayTimeout', 504), code: 'FERRY_ERR_STORAGE_BAD_GATEWAY', status: 502 },
    { err: sdkError('SlowDown', 503, { 'retry-after': '7' }), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '7' },
    { err: sdkError('SlowDown', 503, { 'retry-after': '3600' }), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '30' },
    { err: sdkError('SlowDown', 503), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '1' },
    { err: sdkError('TooManyRequestsException', 429), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '1' },
    { err: Object.assign(new Error('timed out'), { name: 'TimeoutError', code: 'ETIMEDOUT' }), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '1' },
    { err: Object.assign(new Error('refused'), { code: 'ECONNREFUSED' }), code: 'FERRY_ERR_STORAGE_UNAVAILABLE', status: 503, retryAfter: '1' },
    { err: sdkError('NoSuchKey', 404), code: 'FERRY_ERR_PATH_NOT_FOUND', status: 404 },
    { err: sdkError('PreconditionFailed', 412), code: 'FERRY_ERR_STORAGE_CHANGED', status: 500 },
  ];
  for (const c of cases) {
    const mapped = mapS3Error(c.err);
    assert.ok(mapped instanceof FerryError, String(c.err));
    assert.equal(mapped.code, c.code, String(c.err));
    assert.equal(mapped.statusCode, c.status, String(c.err));
    assert.equal(mapped.headers['retry-after'], c.retryAfter, String(c.err));
  }
  const abort = Object.assign(new Error('aborted'), { name: 'AbortError' });
  assert.equal(mapS3Error(abort), abort, 'an abort passes through');
});

test('storeRetryAfterSeconds: whole seconds from 1 to 30; dates and garbage are 1', () => {
  assert.deepEqual(['0', '1', '12', '30', '31', ' 5 ', 'Wed, 21 Oct 2026 07:28:00 GMT', '1.5', '', undefined].map(storeRetryAfterSeconds), [1, 1, 12, 30, 30, 5, 1, 1, 1, 1]);
});

test('isBrokenBody: resets, early ends, stalls and timeouts are continued; a changed object or a wrong answer is not', () => {
  assert.equal(isBrokenBody(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })), true);
  assert.equal(isBrokenBody(new Error('aborted')), true);
  assert.equal(isBrokenBody(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })), true);
  assert.equal(isBrokenBody(Object.assign(new Error('t'), { name: 'TimeoutError' })), true);
  assert.equal(isBrokenBody(new FerryError('FERRY_ERR_STORAGE_CHANGED', 'changed')), false);
  assert.equal(isBrokenBody(new FerryError('FERRY_ERR_STORAGE_BAD_GATEWAY', 'wrong range')), false);
  assert.equal(isBrokenBody(undefined), false);
});

test('resumeDelayMs: full jitter over 100 ms · 2^(n−1), capped at 2 s', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 6, 10].map((n) => resumeDelayMs(n, 0.999999)), [99, 199, 399, 799, 1599, 1999, 1999]);
  assert.deepEqual([1, 5].map((n) => resumeDelayMs(n, 0)), [0, 0]);
  assert.equal(resumeDelayMs(2, 0.5), 100);
});
