// RFC 9110 §13.1.5 (If-Range) and §8.8: which validator may guard a range request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseIfRange, describeChange, isStrongEtag } from '../../../src/download/validators.ts';

test('strong and weak entity tags (§8.8.3)', () => {
  assert.equal(isStrongEtag('"xyzzy"'), true);
  assert.equal(isStrongEtag('""'), true);
  assert.equal(isStrongEtag('W/"xyzzy"'), false);
  assert.equal(isStrongEtag('xyzzy'), false);
  assert.equal(isStrongEtag(undefined), false);
});

test('"A client MUST NOT generate an If-Range header field containing an entity tag that is marked as weak"', () => {
  assert.equal(chooseIfRange('"abc"', 'Sat, 01 Jan 2000 00:00:00 GMT', 'Sat, 01 Jan 2000 01:00:00 GMT'), '"abc"');
  assert.equal(chooseIfRange('W/"abc"', 'Sat, 01 Jan 2000 00:00:00 GMT', 'Sat, 01 Jan 2000 01:00:00 GMT'), undefined);
});

test('a date only without an entity tag and only when strong (Date ≥ 1 s after Last-Modified, §8.8.2.2)', () => {
  const lm = 'Sat, 01 Jan 2000 00:00:00 GMT';
  assert.equal(chooseIfRange(undefined, lm, 'Sat, 01 Jan 2000 00:00:01 GMT'), lm);
  assert.equal(chooseIfRange(undefined, lm, lm), undefined);
  assert.equal(chooseIfRange(undefined, lm, undefined), undefined);
  assert.equal(chooseIfRange(undefined, 'garbage', 'Sat, 01 Jan 2000 00:00:01 GMT'), undefined);
});

test('describeChange names what contradicts the starting representation', () => {
  const started = { sizeBytes: 10, etag: '"a"', lastModified: 'x' };
  assert.equal(describeChange(started, { sizeBytes: 10, etag: '"a"', lastModified: 'y' }), undefined);
  assert.match(describeChange(started, { sizeBytes: 10, etag: '"b"', lastModified: 'x' }) ?? '', /ETag changed/);
  assert.match(describeChange(started, { sizeBytes: 11, etag: '"a"', lastModified: 'x' }) ?? '', /size changed/);
  assert.equal(describeChange(started, { sizeBytes: undefined, etag: undefined, lastModified: undefined }), undefined);
  assert.match(describeChange({ sizeBytes: 10, etag: undefined, lastModified: 'x' }, { sizeBytes: 10, etag: undefined, lastModified: 'y' }) ?? '', /Last-Modified/);
});
