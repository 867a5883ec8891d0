/** RFC 9110 §8.8.3 entity tags: syntax, the comparison table of §8.8.3.2, and generation. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateEtag, parseEntityTag, parseEntityTagList, strongMatch, weakMatch } from '../../../src/http/index.ts';

test('§8.8.3.2 comparison table', () => {
  // | ETag 1 | ETag 2 | Strong Comparison | Weak Comparison |
  const table: Array<[string, string, boolean, boolean]> = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
  ];
  for (const [a, b, strong, weak] of table) {
    const ta = parseEntityTag(a)!;
    const tb = parseEntityTag(b)!;
    assert.equal(strongMatch(ta, tb), strong, `strong ${a} ${b}`);
    assert.equal(weakMatch(ta, tb), weak, `weak ${a} ${b}`);
  }
});

test('entity-tag syntax', () => {
  assert.deepEqual(parseEntityTag('"xyzzy"'), { weak: false, opaque: '"xyzzy"' });
  assert.deepEqual(parseEntityTag('W/"xyzzy"'), { weak: true, opaque: '"xyzzy"' });
  assert.deepEqual(parseEntityTag('""'), { weak: false, opaque: '""' });
  for (const bad of ['xyzzy', '"xyz', 'xyz"', 'w/"x"', 'W/ "x"', '"a"b"', '"a b"', '"\u0001"']) {
    assert.equal(parseEntityTag(bad), undefined, bad);
  }
});

test('lists: "*", several tags, commas inside opaque-tags, empty elements, bad members skipped', () => {
  assert.equal(parseEntityTagList('*'), '*');
  assert.equal(parseEntityTagList(' * '), '*');
  assert.deepEqual((parseEntityTagList('"xyzzy", "r2d2xxxx", "c3piozzzz"') as ReadonlyArray<{ opaque: string }>).map((t) => t.opaque), ['"xyzzy"', '"r2d2xxxx"', '"c3piozzzz"']);
  // etagc includes %x2C (comma): one tag, not two.
  assert.deepEqual(parseEntityTagList('"a,b"'), [{ weak: false, opaque: '"a,b"' }]);
  // §5.6.1: empty list elements are accepted.
  assert.deepEqual(parseEntityTagList(' , "a" ,, W/"b" ,'), [{ weak: false, opaque: '"a"' }, { weak: true, opaque: '"b"' }]);
  assert.deepEqual(parseEntityTagList('garbage, "ok"'), [{ weak: false, opaque: '"ok"' }]);
  assert.deepEqual(parseEntityTagList('"ok" junk, "b"'), [{ weak: false, opaque: '"b"' }]);
  assert.deepEqual(parseEntityTagList(''), []);
});

test('generateEtag: strong, changes with any content change, distinct per content coding', () => {
  const base = { size: 1000, mtimeNs: 1_700_000_000_123_456_789n, ino: 42n };
  const tag = generateEtag(base);
  assert.match(tag, /^"[\x21\x23-\x7e]+"$/);
  assert.equal(parseEntityTag(tag)?.weak, false);
  assert.equal(generateEtag({ ...base }), tag, 'deterministic');
  assert.notEqual(generateEtag({ ...base, size: 1001 }), tag, 'size');
  assert.notEqual(generateEtag({ ...base, mtimeNs: base.mtimeNs + 1n }), tag, 'one nanosecond');
  assert.notEqual(generateEtag({ ...base, ino: 43n }), tag, 'replaced by rename');
  const codings = ['gzip', 'br', 'zstd'].map((c) => generateEtag(base, c));
  assert.equal(new Set([tag, ...codings]).size, 4);
  assert.equal(generateEtag(base, 'identity'), tag);
});

test('generateEtag: a backend validator (object ETag) decides the tag, not mtime or inode; unsafe characters are dropped', () => {
  const base = { size: 1000, mtimeNs: 5n, ino: 0n, etag: '5eb63bbbe01eeed093cb22bb8f5acdc3' };
  const tag = generateEtag(base);
  assert.ok(parseEntityTag(tag) !== undefined && !tag.startsWith('W/'), tag);
  assert.equal(generateEtag({ ...base, mtimeNs: 9n }), tag, 'one-second Last-Modified does not move the tag');
  assert.notEqual(generateEtag({ ...base, etag: 'a342d1630cc9c39067306e6c9ea32d0c-2' }), tag, 'a new object version');
  assert.notEqual(generateEtag({ ...base, size: 999 }), tag, 'size');
  assert.notEqual(generateEtag(base, 'gzip'), tag);
  const hostile = generateEtag({ ...base, etag: 'a"b c\u0000d' });
  assert.equal(hostile, `"oabcd-${(1000).toString(36)}"`);
});
