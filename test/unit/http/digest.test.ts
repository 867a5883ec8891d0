/** RFC 9530 digest fields: Want-* preferences, Repr-Digest values, and the cache key. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseWantDigest, wantsSha256, formatDigestField, digestCacheKey } from '../../../src/http/index.ts';

test('Want-*-Digest is a Dictionary of Integers 0–10 (RFC 9530 §4, RFC 8941 §3.2)', () => {
  assert.deepEqual([...parseWantDigest('sha-256=1, sha-512=3')], [['sha-256', 1], ['sha-512', 3]]);
  assert.deepEqual([...parseWantDigest('sha-256=10;x=1')], [['sha-256', 10]]);
  const invalid = ['sha-256', 'sha-256=11', 'sha-256=-1', 'sha-256=a', 'SHA-256=1', 'sha-256=1,,sha-512=2', 'sha-256=1.5'];
  for (const v of invalid) assert.equal(parseWantDigest(v).size, 0, v);
});

test('when to send sha-256', () => {
  const cases: Array<[string | undefined, boolean]> = [
    [undefined, false],
    ['sha-256=1', true],
    ['sha-256=0', false], // "0 ... not acceptable"
    ['sha-512=3', true], // the only algorithm Ferry has; §4 lets the sender choose
    ['sha-512=0', false],
    ['sha-256=0, sha-512=5', false],
    ['garbage', false],
  ];
  for (const [v, expected] of cases) assert.equal(wantsSha256(v), expected, String(v));
});

test('Repr-Digest value: sha-256 as an RFC 8941 Byte Sequence', () => {
  // RFC 9530 Appendix B.1: sha-256 of {"hello": "world"}
  const digest = createHash('sha256').update('{"hello": "world"}').digest();
  assert.equal(formatDigestField(digest), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  assert.equal(formatDigestField(digest.toString('hex')), 'sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
});

test('digestCacheKey changes with every version of the file and cannot collide through the path', () => {
  const st = { size: 10, mtimeNs: 123n, ino: 7n };
  const k = digestCacheKey('a/b.txt', st);
  assert.notEqual(digestCacheKey('a/b.txt', { ...st, size: 11 }), k);
  assert.notEqual(digestCacheKey('a/b.txt', { ...st, mtimeNs: 124n }), k);
  assert.notEqual(digestCacheKey('a/b.txt', { ...st, ino: 8n }), k);
  assert.notEqual(digestCacheKey('a/c.txt', st), k);
  assert.notEqual(digestCacheKey('1:2:3:x', { size: 0, mtimeNs: 0n, ino: 0n }), digestCacheKey('x', { size: 1, mtimeNs: 2n, ino: 3n }));
});
