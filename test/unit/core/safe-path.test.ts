/**
 * Path caps of the jail's parsers (security hardening, "quadratic work on deep folders").
 * On the old code these paths were accepted: a 1,900-level PUT path then kept a core busy for
 * minutes, and a 300-byte name answered 500 ENAMETOOLONG only after the whole body was read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  parseSafePath, parseDecodedPath, pathLimitExceeded, MAX_PATH_SEGMENTS, MAX_SEGMENT_BYTES, MAX_PATH_BYTES, isFerryError,
} from '../../../src/core/index.ts';

/** 16 names of 254 bytes, then one that brings the total to `bytes`. */
function longPath(bytes: number): string {
  const head = Array.from({ length: 16 }, () => 'y'.repeat(254)).join('/');
  const p = `${head}/${'z'.repeat(bytes - head.length - 1)}`;
  assert.equal(Buffer.byteLength(p), bytes);
  return p;
}

const deep = (n: number): string => Array.from({ length: n }, () => 'd').join('/');

function refusedWith(fn: () => unknown, code: string, detail: RegExp): void {
  assert.throws(fn, (err: unknown) => isFerryError(err) && err.code === code && err.statusCode === 400 && detail.test(err.message));
}

const parsers = [
  ['parseSafePath', (p: string) => parseSafePath(encodeURI(p))],
  ['parseDecodedPath', parseDecodedPath],
] as const;

for (const [label, parse] of parsers) {
  test(`${label}: limits are inclusive, one more is 400 FERRY_ERR_PATH_TOO_LONG naming the limit`, () => {
    const cases: ReadonlyArray<readonly [string, string, RegExp]> = [
      ['at the depth limit', deep(MAX_PATH_SEGMENTS), /./],
      ['one level deeper', deep(MAX_PATH_SEGMENTS + 1), /more than 128 segments/],
      ['1,900 levels', deep(1900), /more than 128 segments/],
      ['a 255-byte name', 'x'.repeat(MAX_SEGMENT_BYTES), /./],
      ['a 256-byte name', 'x'.repeat(MAX_SEGMENT_BYTES + 1), /longer than 255 bytes/],
      ['a 300-byte name', `${'x'.repeat(296)}.bin`, /longer than 255 bytes/],
      // 86 × 3 bytes = 258 bytes in 86 characters: bytes count, not characters.
      ['86 CJK characters (258 bytes)', '季'.repeat(86), /longer than 255 bytes/],
      ['85 CJK characters (255 bytes)', '季'.repeat(85), /./],
      ['a path of exactly 4096 bytes', longPath(MAX_PATH_BYTES), /./],
      ['a path of 4097 bytes', longPath(MAX_PATH_BYTES + 1), /longer than 4096 bytes/],
    ];
    for (const [what, path, detail] of cases) {
      const fits = pathLimitExceeded(path) === undefined;
      if (detail.source === '.') {
        assert.ok(fits, `${what}: pathLimitExceeded agrees`);
        assert.ok(parse(path).relative === path, what);
      } else {
        assert.ok(!fits, `${what}: pathLimitExceeded agrees`);
        refusedWith(() => parse(path), 'FERRY_ERR_PATH_TOO_LONG', detail);
      }
    }
  });
}

test('the problem carries the limit as an extension member', () => {
  try {
    parseSafePath(deep(MAX_PATH_SEGMENTS + 1));
    assert.fail('accepted');
  } catch (err) {
    assert.ok(isFerryError(err));
    assert.deepEqual(err.extra, { limit: MAX_PATH_SEGMENTS, limitOf: 'segments' });
  }
});

test('other jail rules still apply and come first', () => {
  refusedWith(() => parseSafePath('a/%2e%2e/b'), 'FERRY_ERR_PATH_INVALID', /dot-segment/);
  refusedWith(() => parseSafePath('a%2Fb'), 'FERRY_ERR_PATH_INVALID', /separator/);
  refusedWith(() => parseDecodedPath('a/../b'), 'FERRY_ERR_PATH_INVALID', /dot-segment/);
  assert.deepEqual(parseSafePath('/a/b/').segments, ['a', 'b']);
  assert.equal(parseSafePath('').relative, '');
});

// Regression: a lone surrogate (from a JSON body or tus metadata, `"\ud800"`) used to pass the
// jail; it has no UTF-8 form, so a disk stored replacement bytes and an object store another key.
test('lone surrogates are refused (not valid Unicode); surrogate pairs are fine', () => {
  refusedWith(() => parseSafePath('odd/\uD800.txt'), 'FERRY_ERR_PATH_INVALID', /Unicode/);
  refusedWith(() => parseDecodedPath('odd/x\uDC00'), 'FERRY_ERR_PATH_INVALID', /Unicode/);
  assert.deepEqual(parseDecodedPath('odd/🚀.txt').segments, ['odd', '🚀.txt']);
  assert.deepEqual(parseSafePath('odd/%F0%9F%9A%80.txt').segments, ['odd', '🚀.txt']);
});
