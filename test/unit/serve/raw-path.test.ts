/** The raw request target, before any decoding: what the jail must see. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitRawTarget, hasQueryParam, queryParam } from '../../../src/serve/raw-path.ts';
import { decodeCursor, encodeCursor } from '../../../src/serve/index.ts';
import { parseLimit } from '../../../src/serve/list-route.ts';
import { FerryError } from '../../../src/core/index.ts';

test('splitRawTarget keeps the encoding and separates the query', () => {
  const cases: Array<[string, string, string]> = [
    ['/files/a%2Fb.txt?download', 'a%2Fb.txt', 'download'],
    ['/files/dir/x.bin', 'dir/x.bin', ''],
    ['/files', '', ''],
    ['/files/', '', ''],
    ['/files/../etc/passwd', '../etc/passwd', ''],
    ['/files/a?x=1?y', 'a', 'x=1?y'],
    // Absolute-form (RFC 9112 §3.2.2): the path is taken as is, no URL normalisation of "..".
    ['http://example.test/files/../secret', '../secret', ''],
    ['http://example.test:8080/files/x?download', 'x', 'download'],
  ];
  for (const [url, path, query] of cases) assert.deepEqual(splitRawTarget(url, '/files'), { encodedPath: path, query }, url);
  assert.throws(() => splitRawTarget('/%66iles/x', '/files'), (e: unknown) => e instanceof FerryError && e.statusCode === 400);
  assert.throws(() => splitRawTarget('/filesx/y', '/files'), FerryError);
});

test('query helpers', () => {
  assert.equal(hasQueryParam('download', 'download'), true);
  assert.equal(hasQueryParam('a=1&download=', 'download'), true);
  assert.equal(hasQueryParam('downloads=1', 'download'), false);
  assert.equal(hasQueryParam('', 'download'), false);
  assert.equal(queryParam('limit=5&cursor=abc', 'cursor'), 'abc');
  assert.equal(queryParam('x=1', 'cursor'), undefined);
});

test('listing cursors are opaque base64url and refuse anything else', () => {
  for (const name of ['a', 'zz top', '季度报告 2026.pdf', 'x'.repeat(255), '=+/?']) {
    const c = encodeCursor(name);
    assert.match(c, /^[A-Za-z0-9_-]+$/);
    assert.equal(decodeCursor(c), name);
  }
  for (const bad of ['', 'a+b', 'abc=', '!!', '_w', 'A']) {
    assert.throws(() => decodeCursor(bad), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_LIST_CURSOR_INVALID', bad);
  }
});

test('listing limits: default 1000, 1..10000', () => {
  assert.equal(parseLimit(undefined), 1000);
  assert.equal(parseLimit('1'), 1);
  assert.equal(parseLimit('10000'), 10000);
  for (const bad of ['0', '10001', '-1', '1.5', 'abc', '', '1e3', '99999999']) {
    assert.throws(() => parseLimit(bad), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_LIST_LIMIT_INVALID', bad);
  }
});
