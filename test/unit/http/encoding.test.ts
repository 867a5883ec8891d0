/** RFC 9110 §12.5.3 Accept-Encoding negotiation, and which types get compressed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { negotiateEncoding, parseAcceptEncoding, isCompressibleType, type ContentCoding } from '../../../src/http/index.ts';

const ALL: ContentCoding[] = ['zstd', 'br', 'gzip'];

test('negotiation table', () => {
  const cases: Array<[string | undefined, ContentCoding[], ContentCoding | undefined, string]> = [
    [undefined, ALL, 'identity', 'no field: identity (any coding acceptable, none asked for)'],
    ['', ALL, 'identity', '"An Accept-Encoding header field with a field value that is empty implies that the user agent does not want any content coding"'],
    ['gzip', ALL, 'gzip', 'only gzip'],
    ['GZIP', ALL, 'gzip', 'codings are case-insensitive'],
    ['x-gzip', ALL, 'gzip', '§8.4.1.3: x-gzip is gzip'],
    ['gzip, deflate, br, zstd', ALL, 'zstd', 'equal q: server preference'],
    ['gzip, deflate, br', ALL, 'br', 'browser without zstd'],
    ['br;q=0.5, gzip;q=0.8', ALL, 'gzip', 'higher q wins'],
    ['br;q=0, gzip', ALL, 'gzip', 'q=0 means not acceptable'],
    ['*', ALL, 'zstd', '"*" matches any coding not listed'],
    ['*;q=0.1, gzip;q=0', ['gzip', 'br'], 'br', 'explicit q=0 beats *'],
    ['deflate', ALL, 'identity', 'nothing we can produce: identity'],
    ['identity', ALL, 'identity', 'identity only'],
    ['gzip;q=0.5, identity', ALL, 'identity', 'explicit identity with a higher q'],
    ['identity;q=0, gzip', ['br'], undefined, 'identity refused and nothing else available'],
    ['*;q=0', ALL, undefined, '"*;q=0" without identity excludes identity'],
    ['*;q=0, identity', ALL, 'identity', 'a more specific identity entry'],
    ['gzip;q=1.001', ALL, 'identity', 'invalid qvalue: member ignored'],
    ['gzip;q=0.001', ALL, 'gzip', 'three decimals allowed'],
    ['gzip ; q=0.9 , br ; q=0.8', ALL, 'gzip', 'OWS around ";"'],
    ['br', ['gzip'], 'identity', 'server cannot produce br'],
  ];
  for (const [header, available, expected, name] of cases) assert.equal(negotiateEncoding(header, available), expected, name);
});

test('parseAcceptEncoding skips malformed members', () => {
  assert.deepEqual(parseAcceptEncoding('gzip;q=abc, br, ;q=1, z@p'), [{ coding: 'br', q: 1 }]);
});

test('compressible types: text, json, js, xml, svg, wasm — never media or archives', () => {
  const yes = ['text/plain; charset=utf-8', 'text/html', 'text/css', 'text/csv', 'application/json', 'application/ld+json',
    'application/javascript', 'text/javascript', 'application/xml', 'application/atom+xml', 'image/svg+xml', 'application/wasm',
    'application/manifest+json', 'font/ttf'];
  const no = ['image/png', 'image/jpeg', 'image/webp', 'video/mp4', 'audio/mpeg', 'application/zip', 'application/gzip',
    'application/x-7z-compressed', 'application/octet-stream', 'application/pdf', 'font/woff2', 'application/zstd', 'text/event-stream'];
  for (const t of yes) assert.equal(isCompressibleType(t), true, t);
  for (const t of no) assert.equal(isCompressibleType(t), false, t);
});
