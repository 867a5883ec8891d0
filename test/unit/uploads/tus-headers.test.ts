/**
 * tus 1.0.0 header grammar, case by case from protocol.md's own words.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/errors.ts';
import {
  checkTusResumable, parseDeferLength, parseNonNegativeInteger, parseUploadChecksum, parseUploadConcat, uploadIdFromUrl, isUploadId,
} from '../../../src/uploads/tus-headers.ts';

function code(fn: () => unknown): string | undefined {
  try { fn(); return undefined; } catch (err) { return err instanceof FerryError ? err.code : 'not-ferry'; }
}

test('Upload-Offset / Upload-Length: "The value MUST be a non-negative integer"', () => {
  const cases: Array<[string | undefined, number | undefined | 'error']> = [
    [undefined, undefined], ['0', 0], ['70', 70], [' 100 ', 100], ['9007199254740991', 9007199254740991],
    ['-1', 'error'], ['+1', 'error'], ['1.5', 'error'], ['1e3', 'error'], ['', 'error'], ['0x10', 'error'], ['9007199254740992', 'error'], ['12 34', 'error'],
  ];
  for (const [input, expected] of cases) {
    if (expected === 'error') assert.equal(code(() => parseNonNegativeInteger('Upload-Offset', input)), 'FERRY_ERR_UPLOAD_HEADER_INVALID', String(input));
    else assert.equal(parseNonNegativeInteger('Upload-Offset', input), expected, String(input));
  }
});

test('Tus-Resumable: a missing or other version is 412 with Tus-Version', () => {
  assert.doesNotThrow(() => { checkTusResumable('1.0.0'); });
  for (const v of [undefined, '0.2.2', '1.0', '2.0.0', '']) {
    try {
      checkTusResumable(v);
      assert.fail(`accepted ${v}`);
    } catch (err) {
      assert.ok(err instanceof FerryError);
      assert.equal(err.statusCode, 412);
      assert.equal(err.headers['tus-version'], '1.0.0');
    }
  }
});

test('Upload-Defer-Length: "Its value MUST be 1" (else 400)', () => {
  assert.equal(parseDeferLength(undefined), false);
  assert.equal(parseDeferLength('1'), true);
  for (const v of ['0', 'true', '2', '']) assert.equal(code(() => parseDeferLength(v)), 'FERRY_ERR_UPLOAD_HEADER_INVALID', v);
});

test('Upload-Checksum: "<algorithm> <base64>", unknown algorithm is 400', () => {
  // The protocol's own example: sha1 of "hello world".
  const c = parseUploadChecksum('sha1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=');
  assert.equal(c?.algorithm, 'sha1');
  assert.equal(c?.digest.toString('hex'), '2aae6c35c94fcfb415dbe95f408b9ce91ee846ed');
  assert.equal(parseUploadChecksum(undefined), undefined);
  assert.equal(parseUploadChecksum('crc32 DUoRhQ==')?.digest.length, 4);
  assert.equal(code(() => parseUploadChecksum('whirlpool AAAA')), 'FERRY_ERR_UPLOAD_CHECKSUM_UNSUPPORTED');
  assert.equal(code(() => parseUploadChecksum('SHA1 Kq5sNclPz7QV2+lfQIuc6R7oRu0=')), 'FERRY_ERR_UPLOAD_CHECKSUM_UNSUPPORTED', 'names are lowercase');
  assert.equal(code(() => parseUploadChecksum('sha1')), 'FERRY_ERR_UPLOAD_HEADER_INVALID');
  assert.equal(code(() => parseUploadChecksum('sha1 not*base64')), 'FERRY_ERR_UPLOAD_HEADER_INVALID');
  assert.equal(code(() => parseUploadChecksum('sha1 AAAA')), 'FERRY_ERR_UPLOAD_HEADER_INVALID', 'wrong digest size');
});

test('Upload-Concat: partial, or final;<urls separated by spaces>', () => {
  assert.deepEqual(parseUploadConcat('partial'), { kind: 'partial' });
  assert.deepEqual(parseUploadConcat('final;/files/a /files/b'), { kind: 'final', urls: ['/files/a', '/files/b'] });
  assert.deepEqual(parseUploadConcat('final;https://tus.example.org/files/a'), { kind: 'final', urls: ['https://tus.example.org/files/a'] });
  for (const v of ['final;', 'final', 'partial;x', 'foo']) assert.equal(code(() => parseUploadConcat(v)), 'FERRY_ERR_UPLOAD_CONCAT_INVALID', v);
});

test('upload ids: only our 22-character form names an upload', () => {
  assert.equal(isUploadId('AAAAAAAAAAAAAAAAAAAAAA'), true);
  for (const v of ['..', '../../etc/passwd', 'AAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAA/', 'AAAAAAAAAAAAAAAAAAAA..', '%2e%2e%2fAAAAAAAAAAAAAAAA']) assert.equal(isUploadId(v), false, v);
  const base = 'http://h:1/uploads/';
  assert.equal(uploadIdFromUrl('/uploads/AAAAAAAAAAAAAAAAAAAAAA', base), 'AAAAAAAAAAAAAAAAAAAAAA');
  assert.equal(uploadIdFromUrl('http://other/prefix/uploads/BBBBBBBBBBBBBBBBBBBBBB', base), 'BBBBBBBBBBBBBBBBBBBBBB');
  assert.equal(uploadIdFromUrl('CCCCCCCCCCCCCCCCCCCCCC', base), 'CCCCCCCCCCCCCCCCCCCCCC', 'relative to the creation URL');
  assert.equal(uploadIdFromUrl('/uploads/../etc/passwd', base), undefined);
  assert.equal(uploadIdFromUrl('/files/AAAAAAAAAAAAAAAAAAAAAA', base), undefined);
});
