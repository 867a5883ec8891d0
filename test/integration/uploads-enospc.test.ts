/**
 * Disk full (issue 4 §6): with the state dir and the root on a 32 MiB tmpfs, an upload that
 * does not fit answers 507 Insufficient Storage, keeps every byte it acknowledged, and resumes
 * to a byte-identical file once space is freed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer } from '../helpers/start-server.ts';
import { AUTH, TUS, b64, bytes, headOffset, patchHeaders, rawRequest, writeTokensFile } from './uploads-kit.ts';
import { tmpfsFixture } from '../helpers/tmpfs.ts';

const MiB = 1024 * 1024;

test('ENOSPC → 507, the upload stays resumable, resumes after space is freed', async (t) => {
  const fx = await tmpfsFixture(t, { prefix: 'ferry-full-', name: 'mnt', size: '32m' });
  if (fx === undefined) return;
  const { dir: tmpDir, mnt } = fx;
  const tokensFile = await writeTokensFile(tmpDir);
  const root = path.join(mnt, 'files');
  const stateDir = path.join(mnt, 'state');
  const s = await startServer({ root, stateDir, options: { tokensFile } });
  fx.beforeUnmount(() => s.close());

  const filler = path.join(mnt, 'filler.bin');
  await writeFile(filler, Buffer.alloc(20 * MiB, 1));
  const data = bytes(16 * MiB, 42);
  const created = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': data.length, 'upload-metadata': `filename ${b64('big.bin')}` } });
  assert.equal(created.status, 201);
  const url = created.headers.location!;

  const full = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: data });
  assert.equal(full.status, 507, full.text);
  assert.equal(JSON.parse(full.text).code, 'FERRY_ERR_STORAGE_FULL');
  const offset = await headOffset(url);
  assert.ok(offset < data.length, `offset ${offset}`);
  const stillFull = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset), body: data.subarray(offset) });
  assert.equal(stillFull.status, 507);
  const offset2 = await headOffset(url);
  assert.ok(offset2 >= offset);

  await rm(filler);
  const resumed = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset2), body: data.subarray(offset2) });
  assert.equal(resumed.status, 204, resumed.text);
  assert.ok((await readFile(path.join(root, 'big.bin'))).equals(data), 'byte-identical');
  const m = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(m, /ferry_http_requests_total\{route="\/uploads\/:id",method="PATCH",status="507"\} 2/);
});
