/** decideRedirect (--s3-redirect): which /files requests go to the bucket by 302. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRedirect, redirectTtlSeconds, type RedirectDecision } from '../../../src/serve/decide-redirect.ts';

test('decideRedirect: GETs, ranges and the bucket\'s own conditionals redirect; HEAD, If-Range and digests do not', () => {
  const cases: [string, Parameters<typeof decideRedirect>[0], RedirectDecision][] = [
    ['off by default', { enabled: false, method: 'GET', headers: {}, linkRateBound: false }, { redirect: false, reason: 'disabled' }],
    ['a GET', { enabled: true, method: 'GET', headers: {}, linkRateBound: false }, { redirect: true }],
    ['a range', { enabled: true, method: 'GET', headers: { range: 'bytes=0-9' }, linkRateBound: false }, { redirect: true }],
    ['If-None-Match (the bucket evaluates it)', { enabled: true, method: 'GET', headers: { 'if-none-match': '"x"' }, linkRateBound: false }, { redirect: true }],
    ['HEAD (a presigned URL is signed for GET)', { enabled: true, method: 'HEAD', headers: {}, linkRateBound: false }, { redirect: false, reason: 'head' }],
    ['If-Range (S3 does not implement it)', { enabled: true, method: 'GET', headers: { range: 'bytes=5-', 'if-range': '"x"' }, linkRateBound: false }, { redirect: false, reason: 'if-range' }],
    ['Want-Repr-Digest', { enabled: true, method: 'GET', headers: { 'want-repr-digest': 'sha-256=1' }, linkRateBound: false }, { redirect: false, reason: 'digest' }],
    ['Want-Content-Digest', { enabled: true, method: 'GET', headers: { 'want-content-digest': 'sha-256=1' }, linkRateBound: false }, { redirect: false, reason: 'digest' }],
    ['a signed link with a bound rate (the bucket would not pace it)', { enabled: true, method: 'GET', headers: {}, linkRateBound: true }, { redirect: false, reason: 'link-rate' }],
  ];
  for (const [name, input, want] of cases) assert.deepEqual(decideRedirect(input), want, name);
});

test('redirectTtlSeconds: --s3-redirect-ttl, never past a signed link\'s expiry, at least 1 s', () => {
  const now = 1_700_000_000_000;
  assert.equal(redirectTtlSeconds(300_000, undefined, now), 300);
  assert.equal(redirectTtlSeconds(300_000, 1_700_000_060, now), 60, 'the link expires in 60 s');
  assert.equal(redirectTtlSeconds(300_000, 1_700_003_600, now), 300, 'the link outlives the TTL');
  assert.equal(redirectTtlSeconds(300_000, 1_700_000_000, now + 500), 1, 'at least one second');
});
