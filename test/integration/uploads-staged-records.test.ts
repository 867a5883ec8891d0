/**
 * Upload records and the storage's checkpoints (issue 9): a record stores the checkpoint its
 * storage returned with the offset (`staged`), and a record of an older version, which has only
 * the offset, still resumes (its checkpoint is `{ offset }`): bytes the data file holds past it
 * are cut off, the rest is kept, the published file is byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, truncate } from 'node:fs/promises';
import path from 'node:path';
import { createEmbeddedMeta } from '../../src/meta/index.ts';
import type { UploadRecord } from '../../src/uploads/upload-record.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startServer } from '../helpers/start-server.ts';
import { b64, createUpload, headOffset, patchHeaders, rawRequest, writeTokensFile } from './uploads-kit.ts';

// On the code before issue 9 this failed at the first check: records carried no checkpoint.
test('a record keeps the storage checkpoint with its offset; a record without one (older version) resumes from its offset', async (t) => {
  const tmp = await makeTempDir('ferry-staged-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const a = await startServer({ root, stateDir, options: { tokensFile } });
  t.after(() => a.close());
  const url = await createUpload(a, { 'upload-length': 10, 'upload-metadata': `filename ${b64('old.txt')}` });
  const id = url.split('/').pop()!;
  assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abcd' })).status, 204);
  await a.close();

  const meta = await createEmbeddedMeta(stateDir);
  const record = await meta.get<UploadRecord>('tus-uploads', id);
  assert.ok(record !== undefined);
  assert.deepEqual(record.staged, { offset: 4 }, 'the checkpoint is stored with the offset');
  // As an older version wrote it: the offset alone.
  const { staged: _staged, ...old } = record;
  await meta.set('tus-uploads', id, old);
  await meta.close();
  // Bytes of a write that was never acknowledged (a crash between write and commit).
  await appendFile(path.join(stateDir, 'uploads', `${id}.part`), 'ZZZ');

  const b = await startServer({ root, stateDir, options: { tokensFile } });
  t.after(() => b.close());
  const again = url.replace(a.url, b.url);
  assert.equal(await headOffset(again), 4);
  const r = await rawRequest(again, { method: 'PATCH', headers: patchHeaders(4), body: 'efghij' });
  assert.equal(r.status, 204);
  assert.equal(r.headers['upload-offset'], '10');
  assert.equal(await readFile(path.join(root, 'old.txt'), 'utf8'), 'abcdefghij');
});

// Behaviour kept from before issue 9 (now through Staging.open's `details.durable`).
test('a data file shorter than its acknowledged offset (storage that lied about a sync): 409 with the real offset, then the upload resumes there', async (t) => {
  const tmp = await makeTempDir('ferry-staged-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const s = await startServer({ root, stateDir, options: { tokensFile } });
  t.after(() => s.close());
  const url = await createUpload(s, { 'upload-length': 6, 'upload-metadata': `filename ${b64('lied.txt')}` });
  const id = url.split('/').pop()!;
  assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abcd' })).status, 204);
  await truncate(path.join(stateDir, 'uploads', `${id}.part`), 2);
  const r = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(4), body: 'ef' });
  assert.equal(r.status, 409);
  assert.equal(r.headers['upload-offset'], '2');
  assert.equal(await headOffset(url), 2);
  assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(2), body: 'cdef' })).status, 204);
  assert.equal(await readFile(path.join(root, 'lied.txt'), 'utf8'), 'abcdef');
});
