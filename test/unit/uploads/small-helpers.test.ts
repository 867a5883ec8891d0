/** Pure helpers: conflict names, RFC 9530 digest fields, the Location base URL. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { conflictName, splitExtension } from '../../../src/storage/conflict-name.ts';
import { parseDigestFields, formatSha256Digest } from '../../../src/uploads/digest-fields.ts';
import { requestBaseUrl } from '../../../src/uploads/base-url.ts';
import { FerryError } from '../../../src/core/errors.ts';

test('conflict names: report (1).pdf, backup (2).tar.gz, README (1)', () => {
  assert.equal(conflictName('report.pdf', 0), 'report.pdf');
  assert.equal(conflictName('report.pdf', 1), 'report (1).pdf');
  assert.equal(conflictName('backup.tar.gz', 2), 'backup (2).tar.gz');
  assert.equal(conflictName('README', 1), 'README (1)');
  assert.deepEqual(splitExtension('.bashrc'), { stem: '.bashrc', ext: '' });
  assert.ok(Buffer.byteLength(conflictName(`${'é'.repeat(126)}.bin`, 12)) <= 255);
});

test('Content-Digest / Repr-Digest (RFC 9530 §2): sha-256 and sha-512 verified, others ignored', () => {
  // RFC 9530 Appendix D example: sha-256 of {"hello": "world"}.
  const m = parseDigestFields('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:');
  assert.equal(m.get('sha-256')?.toString('base64'), 'X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=');
  assert.equal(parseDigestFields('unixsum=:AAA=:, md5=:AAAAAAAAAAAAAAAAAAAAAA==:').size, 0);
  assert.equal(parseDigestFields(undefined).size, 0);
  assert.equal(parseDigestFields('sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:;p=1, sha-512=:' + Buffer.alloc(64).toString('base64') + ':').size, 2);
  for (const bad of ['sha-256=abc', 'sha-256=:AAA=:', 'sha-256=:***:', ',']) {
    assert.throws(() => parseDigestFields(bad), (e: unknown) => e instanceof FerryError && e.statusCode === 400, bad);
  }
  assert.equal(formatSha256Digest('00'.repeat(32)), `sha-256=:${Buffer.alloc(32).toString('base64')}:`);
});

test('Location base URL: X-Forwarded-* only with --trust-proxy, and only sane values', () => {
  const base = { encrypted: false, localHost: '127.0.0.1:8080' };
  const fwd = { host: 'internal:8080', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'files.example.org', 'x-forwarded-prefix': '/ferry/' };
  assert.equal(requestBaseUrl({ ...base, trustProxy: false, headers: fwd }), 'http://internal:8080');
  assert.equal(requestBaseUrl({ ...base, trustProxy: true, headers: fwd }), 'https://files.example.org/ferry');
  assert.equal(requestBaseUrl({ ...base, trustProxy: true, headers: { host: 'h', 'x-forwarded-host': 'evil.com/x?y', 'x-forwarded-proto': 'javascript' } }), 'http://h');
  assert.equal(requestBaseUrl({ ...base, trustProxy: false, headers: { host: 'bad host\r\n' } }), 'http://127.0.0.1:8080');
  assert.equal(requestBaseUrl({ ...base, trustProxy: true, headers: { host: '[::1]:9', 'x-forwarded-host': 'a.example, b.example' } }), 'http://a.example');
});
