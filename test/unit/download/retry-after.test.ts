// RFC 9110 §10.2.3: Retry-After = HTTP-date / delay-seconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRetryAfter } from '../../../src/download/retry-after.ts';

const now = Date.parse('Fri, 31 Dec 1999 23:59:00 GMT');

test('delay-seconds', () => {
  assert.equal(parseRetryAfter('120', now), 120_000);
  assert.equal(parseRetryAfter(' 0 ', now), 0);
});

test('HTTP-date, relative to the client clock, never negative', () => {
  // The RFC's example: "Retry-After: Fri, 31 Dec 1999 23:59:59 GMT".
  assert.equal(parseRetryAfter('Fri, 31 Dec 1999 23:59:59 GMT', now), 59_000);
  assert.equal(parseRetryAfter('Fri, 31 Dec 1999 23:00:00 GMT', now), 0);
});

test('malformed values are ignored', () => {
  for (const v of [undefined, '', '-1', '1.5', 'soon', '12abc']) assert.equal(parseRetryAfter(v, now), undefined, String(v));
});
