/** Upload-Metadata (tus 1.0.0 §Upload-Metadata), from the protocol's words. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/errors.ts';
import { encodeUploadMetadata, parseUploadMetadata, readUploadIntent } from '../../../src/uploads/upload-metadata.ts';

function code(fn: () => unknown): string | undefined {
  try { fn(); return undefined; } catch (err) { return err instanceof FerryError ? err.code : 'not-ferry'; }
}

test('the protocol example parses; a value may be empty and then the space may be left out', () => {
  const m = parseUploadMetadata('filename d29ybGRfZG9taW5hdGlvbl9wbGFuLnBkZg==,is_confidential');
  assert.equal(m.get('filename')?.toString(), 'world_domination_plan.pdf');
  assert.equal(m.get('is_confidential')?.length, 0);
  assert.equal(parseUploadMetadata('a ,b YQ==').get('a')?.length, 0);
  assert.equal(parseUploadMetadata(undefined).size, 0);
});

test('breaches are 400 FERRY_ERR_UPLOAD_METADATA_INVALID', () => {
  const bad = [
    ['', 'empty header'],
    ['filename', undefined], // valid: empty value
    ['a YQ==,a Yg==', 'keys MUST be unique'],
    ['a YQ== Yg==', 'two spaces'],
    ['a not-base64!', 'value MUST be Base64'],
    ['a YQ', 'unpadded Base64'],
    ['a YQ==,,b Yg==', 'empty pair'],
    ['ké YQ==', 'non-ASCII key'],
  ] as const;
  for (const [value, why] of bad) {
    if (why === undefined) assert.doesNotThrow(() => parseUploadMetadata(value));
    else assert.equal(code(() => parseUploadMetadata(value)), 'FERRY_ERR_UPLOAD_METADATA_INVALID', why);
  }
});

test('intent: filename (or name), path, sha256 (hex or base64)', () => {
  const enc = (o: Record<string, string>) => parseUploadMetadata(encodeUploadMetadata(o));
  assert.deepEqual(readUploadIntent(enc({ filename: '季度报告 2026.pdf', path: 'reports/q1' })), { filename: '季度报告 2026.pdf', folder: 'reports/q1', sha256: undefined });
  assert.equal(readUploadIntent(enc({ name: 'uppy.bin' })).filename, 'uppy.bin');
  const hex = 'a'.repeat(64);
  assert.equal(readUploadIntent(enc({ sha256: hex.toUpperCase() })).sha256, hex);
  assert.equal(readUploadIntent(enc({ sha256: Buffer.from(hex, 'hex').toString('base64') })).sha256, hex);
  for (const filename of ['a/b', '..', '.', 'a\\b', 'x\0y', '']) {
    assert.equal(code(() => readUploadIntent(enc({ filename }))), 'FERRY_ERR_UPLOAD_METADATA_INVALID', JSON.stringify(filename));
  }
  assert.equal(code(() => readUploadIntent(parseUploadMetadata(`filename ${Buffer.from([0xff, 0xfe]).toString('base64')}`))), 'FERRY_ERR_UPLOAD_METADATA_INVALID', 'not UTF-8');
  assert.equal(code(() => readUploadIntent(enc({ sha256: 'abc' }))), 'FERRY_ERR_UPLOAD_METADATA_INVALID');
});
