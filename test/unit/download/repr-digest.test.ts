// RFC 9530 §3: Repr-Digest is a Structured Fields Dictionary of byte sequences.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { parseReprDigest, sha256FromReprDigest } from '../../../src/download/repr-digest.ts';

test('the RFC 9530 example value parses to 32 bytes of sha-256', () => {
  const m = parseReprDigest('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  assert.equal(m.get('sha-256')?.length, 32);
});

test('sha-256 among several members, with parameters, as hex', () => {
  const digest = createHash('sha256').update('hello').digest();
  const sha512 = createHash('sha512').update('hello').digest('base64');
  const value = `sha-512=:${sha512}:, sha-256=:${digest.toString('base64')}:;p=1`;
  assert.equal(sha256FromReprDigest(value), digest.toString('hex'));
});

test('malformed or wrong-length digests are not trusted', () => {
  assert.equal(sha256FromReprDigest(undefined), undefined);
  assert.equal(sha256FromReprDigest('sha-256=abc'), undefined);
  assert.equal(sha256FromReprDigest('sha-256=:AAAA:'), undefined);
  assert.equal(sha256FromReprDigest('md5=:1B2M2Y8AsgTpgAmY7PhCfg==:'), undefined);
});
