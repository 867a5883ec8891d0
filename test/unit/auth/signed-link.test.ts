import { test } from 'node:test';
import assert from 'node:assert/strict';
import { signedLinkPath, verifySignedLink } from '../../../src/auth/index.ts';

const K1 = Buffer.from('key-one');
const K2 = Buffer.from('key-two');
const NOW = Date.UTC(2026, 0, 1);
const EXP = Math.floor(NOW / 1000) + 3600;

function link(path: string, opts: { expires?: number; rate?: number; key?: Buffer; query?: Array<[string, string]> } = {}): string {
  return signedLinkPath({ method: 'GET', path, query: opts.query ?? [], expiresUnix: opts.expires ?? EXP, maxRateBytesPerSec: opts.rate }, opts.key ?? K1);
}

test('a link verifies for GET and HEAD until it expires', () => {
  const url = link('/files/docs/a%20b.pdf');
  assert.match(url, /^\/files\/docs\/a%20b\.pdf\?expires=\d+&sig=[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(verifySignedLink('GET', url, [K1], NOW), { ok: true, expiresUnix: EXP, maxRateBytesPerSec: undefined });
  assert.equal(verifySignedLink('HEAD', url, [K1], NOW).ok, true);
  assert.equal(verifySignedLink('GET', url, [K1], EXP * 1000 - 1).ok, true);
  const expired = verifySignedLink('GET', url, [K1], EXP * 1000);
  assert.equal(expired.ok, false);
  assert.equal(!expired.ok && expired.reason, 'link-expired');
});

test('tampering with anything signed breaks the signature', () => {
  const url = link('/files/a.bin', { rate: 1000 });
  const cases: Array<[string, string, string]> = [
    ['path', 'GET', url.replace('/files/a.bin', '/files/b.bin')],
    ['path prefix', 'GET', url.replace('/files/a.bin', '/files/a.bin2')],
    ['expiry', 'GET', url.replace(`expires=${EXP}`, `expires=${EXP + 3600}`)],
    ['rate removed', 'GET', url.replace('&rate=1000', '')],
    ['rate raised', 'GET', url.replace('rate=1000', 'rate=100000')],
    ['method', 'PUT', url],
    ['extra query parameter', 'GET', url.replace('?', '?download&')],
    ['sig bit flip', 'GET', url.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`)],
  ];
  for (const [what, method, u] of cases) {
    const r = verifySignedLink(method, u, [K1], NOW);
    assert.equal(r.ok, false, what);
    assert.equal(!r.ok && r.reason, 'link-signature', what);
  }
  const ok = verifySignedLink('GET', url, [K1], NOW);
  assert.deepEqual(ok, { ok: true, expiresUnix: EXP, maxRateBytesPerSec: 1000 });
});

test('malformed link parameters are refused as malformed', () => {
  const url = link('/files/a.bin');
  for (const u of [
    url.replace(/&sig=[^&]*/, '&sig=short'),
    url.replace(/expires=\d+/, 'expires=soon'),
    url.replace(/expires=\d+/, 'expires=1&expires=2'),
    `${url}&sig=again`,
    url.replace('?', '?rate=0&'),
  ]) {
    const r = verifySignedLink('GET', u, [K1], NOW);
    assert.equal(!r.ok && r.reason, 'link-malformed', u);
  }
});

test('key rotation: the newest key signs, every listed key verifies', () => {
  const old = link('/files/a.bin', { key: K2 });
  assert.equal(verifySignedLink('GET', old, [K1, K2], NOW).ok, true);
  assert.equal(verifySignedLink('GET', old, [K1], NOW).ok, false);
});

test('equivalent percent-encodings verify; zip selections are signed in order', () => {
  const url = link('/files/%E5%AD%A3%E5%BA%A6%20~x.pdf');
  assert.equal(verifySignedLink('GET', url.replace('~', '%7E'), [K1], NOW).ok, true);
  const zip = link('/zip', { query: [['path', 'a dir'], ['path', 'b.txt'], ['name', 'pack.zip']] });
  assert.match(zip, /^\/zip\?path=a%20dir&path=b\.txt&name=pack\.zip&expires=/);
  assert.equal(verifySignedLink('GET', zip, [K1], NOW).ok, true);
  assert.equal(verifySignedLink('GET', zip.replace('path=a%20dir', 'path=a+dir'), [K1], NOW).ok, true);
  assert.equal(verifySignedLink('GET', zip.replace('path=b.txt', 'path=c.txt'), [K1], NOW).ok, false);
  assert.equal(verifySignedLink('GET', zip.replace('path=a%20dir&path=b.txt', 'path=b.txt&path=a%20dir'), [K1], NOW).ok, false);
  assert.equal(verifySignedLink('GET', zip.replace('&name=pack.zip', ''), [K1], NOW).ok, false);
});
