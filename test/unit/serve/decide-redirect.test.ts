/** decideRedirect (--s3-redirect): which /files requests go to the bucket by 302. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideRedirect, type RedirectDecision } from '../../../src/serve/decide-redirect.ts';

test('decideRedirect: GETs, ranges and the bucket\'s own conditionals redirect; HEAD, If-Range and digests do not', () => {
  const cases: [string, Parameters<typeof decideRedirect>[0], RedirectDecision][] = [
    ['off by default', { enabled: false, method: 'GET', headers: {} }, { redirect: false, reason: 'disabled' }],
    ['a GET', { enabled: true, method: 'GET', headers: {} }, { redirect: true }],
    ['a range', { enabled: true, method: 'GET', headers: { range: 'bytes=0-9' } }, { redirect: true }],
    ['If-None-Match (the bucket evaluates it)', { enabled: true, method: 'GET', headers: { 'if-none-match': '"x"' } }, { redirect: true }],
    ['HEAD (a presigned URL is signed for GET)', { enabled: true, method: 'HEAD', headers: {} }, { redirect: false, reason: 'head' }],
    ['If-Range (S3 does not implement it)', { enabled: true, method: 'GET', headers: { range: 'bytes=5-', 'if-range': '"x"' } }, { redirect: false, reason: 'if-range' }],
    ['Want-Repr-Digest', { enabled: true, method: 'GET', headers: { 'want-repr-digest': 'sha-256=1' } }, { redirect: false, reason: 'digest' }],
    ['Want-Content-Digest', { enabled: true, method: 'GET', headers: { 'want-content-digest': 'sha-256=1' } }, { redirect: false, reason: 'digest' }],
  ];
  for (const [name, input, want] of cases) assert.deepEqual(decideRedirect(input), want, name);
});
