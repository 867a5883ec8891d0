/**
 * Expiration (tus §Expiration) and hygiene: Upload-Expires moves with each PATCH, an expired
 * upload answers 410 and its data is swept on a timer and at start-up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CHANNEL_NAMES, type UploadEvent } from '../../src/core/channels.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startServer } from '../helpers/start-server.ts';
import { AUTH, TUS, createUpload, patchHeaders, rawRequest, startUploadServer, writeTokensFile } from './uploads-kit.ts';

/** Resolves on the next upload event of `kind` (bounded). */
function nextEvent(kind: UploadEvent['kind'], timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const on = (m: unknown): void => {
      if ((m as UploadEvent).kind !== kind) return;
      diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, on);
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, on); reject(new Error(`no ${kind} event within ${timeoutMs} ms`)); }, timeoutMs);
    diagnosticsChannel.subscribe(CHANNEL_NAMES.upload, on);
  });
}

const parts = async (stateDir: string): Promise<string[]> => (await readdir(path.join(stateDir, 'uploads'))).filter((n) => n.endsWith('.part'));

test('unfinished uploads expire: Upload-Expires, 410 afterwards, data swept on the timer', async (t) => {
  const s = await startUploadServer(t, { options: { uploadExpiry: '1200ms' } });
  const url = await createUpload(s, { 'upload-length': 10 });
  const first = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abc' });
  const expires1 = Date.parse(first.headers['upload-expires'] ?? '');
  assert.ok(expires1 > Date.now() - 1000 && expires1 <= Date.now() + 2000, first.headers['upload-expires']);
  assert.equal((await parts(s.stateDir)).length, 1);
  const expired = nextEvent('expired', 10_000);
  await expired;
  const h = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
  assert.equal(h.status, 410, '"The latter one SHOULD be used if the Server is keeping track of expired uploads"');
  assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(3), body: 'def' })).status, 410);
  assert.deepEqual(await parts(s.stateDir), []);
  const m = await (await fetch(`${s.url}/metrics`)).text();
  assert.match(m, /ferry_uploads_events_total\{event="expired",protocol="tus"\} [1-9]/);
});

test('an upload that expired while the server was down is swept at start-up', async (t) => {
  const tmp = await makeTempDir('ferry-exp-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const a = await startServer({ root, stateDir, options: { tokensFile, uploadExpiry: '800ms' } });
  t.after(() => a.close());
  const url = await createUpload(a, { 'upload-length': 10 });
  await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abc' });
  await a.server.close(0);
  await new Promise((r) => setTimeout(r, 900)); // let the expiry pass while no server runs
  const expired = nextEvent('expired', 10_000);
  const b = await startServer({ root, stateDir, options: { tokensFile, uploadExpiry: '1h' } });
  t.after(() => b.close());
  await expired;
  assert.deepEqual(await parts(stateDir), []);
  const id = url.split('/').pop()!;
  assert.equal((await rawRequest(`${b.url}/uploads/${id}`, { method: 'HEAD', headers: { ...TUS, ...AUTH } })).status, 410);
});
