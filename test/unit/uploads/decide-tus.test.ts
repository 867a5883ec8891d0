/** Pure tus decisions: creation (POST) and PATCH admission, in the protocol's order. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/errors.ts';
import { decideCreation, decidePatch, headHeaders } from '../../../src/uploads/decide-tus.ts';
import type { UploadRecord } from '../../../src/uploads/upload-record.ts';

const limits = { maxUploadBytes: 1000 };
function status(fn: () => unknown): number | undefined {
  try { fn(); return undefined; } catch (err) { return err instanceof FerryError ? err.statusCode : -1; }
}

test('creation: exactly one of Upload-Length / Upload-Defer-Length; 413 past Tus-Max-Size', () => {
  assert.equal(status(() => decideCreation({}, limits)), 400);
  assert.equal(status(() => decideCreation({ 'upload-length': '10', 'upload-defer-length': '1' }, limits)), 400);
  assert.equal(status(() => decideCreation({ 'upload-length': '1001' }, limits)), 413);
  assert.equal(status(() => decideCreation({ 'upload-length': 'x' }, limits)), 400);
  const plan = decideCreation({ 'upload-defer-length': '1' }, limits);
  assert.equal(plan.kind === 'single' && plan.length, null);
  assert.equal(status(() => decideCreation({ 'upload-length': '10', 'content-length': '5', 'content-type': 'text/plain' }, limits)), 415);
  const withUpload = decideCreation({ 'upload-length': '10', 'content-length': '5', 'content-type': 'application/offset+octet-stream' }, limits);
  assert.equal(withUpload.kind === 'single' && withUpload.withUpload, true);
  assert.equal(status(() => decideCreation({ 'upload-length': '10', 'content-length': '11', 'content-type': 'application/offset+octet-stream' }, limits)), 413);
});

test('creation: a final upload MUST NOT include Upload-Length, nor a body', () => {
  assert.equal(decideCreation({ 'upload-concat': 'final;/uploads/a /uploads/b' }, limits).kind, 'final');
  assert.equal(status(() => decideCreation({ 'upload-concat': 'final;/uploads/a', 'upload-length': '5' }, limits)), 400);
  assert.equal(status(() => decideCreation({ 'upload-concat': 'final;/uploads/a', 'content-length': '5', 'content-type': 'application/offset+octet-stream' }, limits)), 400);
  assert.equal(decideCreation({ 'upload-concat': 'partial', 'upload-length': '5' }, limits).kind, 'partial');
});

const rec = (over: Partial<UploadRecord> = {}): UploadRecord => ({
  id: 'AAAAAAAAAAAAAAAAAAAAAA', createdAt: 0, expiresAt: 10_000, length: 100, offset: 70, metadata: null, intent: { folder: '' }, concat: null, state: 'receiving', ...over,
});
const patch = (h: Record<string, string> = {}) => ({ 'content-type': 'application/offset+octet-stream', 'upload-offset': '70', ...h });

test('PATCH: 415, 410, 403, 409 (with the current offset), 413, deferred length', () => {
  assert.equal(status(() => decidePatch(rec(), { 'upload-offset': '70' }, limits, 0)), 415);
  assert.equal(status(() => decidePatch(rec({ state: 'terminated' }), patch(), limits, 0)), 410);
  assert.equal(status(() => decidePatch(rec({ expiresAt: 5 }), patch(), limits, 6)), 410, 'expired');
  assert.equal(status(() => decidePatch(rec({ concat: 'final' }), patch(), limits, 0)), 403);
  try {
    decidePatch(rec(), patch({ 'upload-offset': '60' }), limits, 0);
    assert.fail('accepted a wrong offset');
  } catch (err) {
    assert.ok(err instanceof FerryError);
    assert.equal(err.statusCode, 409);
    assert.equal(err.headers['upload-offset'], '70');
  }
  assert.equal(status(() => decidePatch(rec(), patch({ 'content-length': '31' }), limits, 0)), 413);
  assert.equal(decidePatch(rec(), patch({ 'content-length': '30' }), limits, 0).maxBytes, 30);
  assert.equal(status(() => decidePatch(rec(), patch({ 'upload-length': '90' }), limits, 0)), 400, 'length cannot change');
  const declared = decidePatch(rec({ length: null }), patch({ 'upload-length': '300' }), limits, 0);
  assert.equal(declared.declareLength, 300);
  assert.equal(declared.maxBytes, 230);
  assert.equal(status(() => decidePatch(rec({ length: null }), patch({ 'upload-length': '60' }), limits, 0)), 400);
  assert.equal(status(() => decidePatch(rec({ length: null }), patch({ 'upload-length': '2000' }), limits, 0)), 413);
  assert.equal(decidePatch(rec({ length: null }), patch(), limits, 0).maxBytes, 930, 'deferred: bounded by Tus-Max-Size');
  assert.equal(decidePatch(rec(), patch({ trailer: 'Upload-Checksum' }), limits, 0).checksumInTrailer, true);
});

test('HEAD: Upload-Offset always (final: only when done), Upload-Defer-Length while unknown, no-store', () => {
  const h = headHeaders(rec({ length: null, metadata: 'a YQ==' }));
  assert.equal(h['upload-offset'], '70');
  assert.equal(h['upload-defer-length'], '1');
  assert.equal(h['upload-length'], undefined);
  assert.equal(h['cache-control'], 'no-store');
  assert.equal(h['upload-metadata'], 'a YQ==');
  const f = headHeaders(rec({ concat: 'final', concatHeader: 'final;/uploads/a', state: 'waiting', offset: 0 }));
  assert.equal(f['upload-offset'], undefined);
  assert.equal(f['upload-concat'], 'final;/uploads/a');
  assert.equal(headHeaders(rec({ concat: 'final', state: 'done', offset: 100 }))['upload-offset'], '100');
});

test('creation: Upload-Metadata over maxMetadataBytes is 400 before it is parsed', () => {
  const capped = { ...limits, maxMetadataBytes: 300 };
  const ok = `filename ${Buffer.from('a.bin').toString('base64')}`;
  assert.equal(decideCreation({ 'upload-length': '1', 'upload-metadata': ok }, capped).metadata, ok);
  // Malformed too, but the size is what is refused (nothing else reads an oversize value).
  const big = `k ${'A'.repeat(400)}!`;
  assert.throws(() => decideCreation({ 'upload-length': '1', 'upload-metadata': big }, capped), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_UPLOAD_METADATA_TOO_LARGE' && /--max-upload-metadata/.test(err.message));
  assert.equal(decideCreation({ 'upload-length': '1', 'upload-metadata': `k ${'A'.repeat(400)}` }, limits).kind, 'single', 'no cap without maxMetadataBytes');
});
