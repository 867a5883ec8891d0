/**
 * One writer per upload (issue 4 §3): a second PATCH asks the first to let go; the first keeps
 * what it stored and its connection is cut; the second continues from there. Bytes are never
 * interleaved. A lock that cannot be taken is 423.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import Fastify from 'fastify';
import pino from 'pino';
import { CHANNEL_NAMES } from '../../src/core/channels.ts';
import { createLocalStorage } from '../../src/storage/index.ts';
import { createEmbeddedMeta } from '../../src/meta/index.ts';
import { createUnlimitedTransferControl } from '../../src/limits/index.ts';
import { createInProcessUploadLocker, registerUploadRoutes } from '../../src/uploads/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { AUTH, TUS, b64, bytes, chunked, createUpload, headOffset, patchHeaders, rawRequest, startUploadServer } from './uploads-kit.ts';

test('two concurrent PATCHes: the first hands over, nothing interleaves, the file is right', async (t) => {
  const s = await startUploadServer(t);
  const size = 4 * 1024 * 1024;
  const first = 1024 * 1024;
  const a = bytes(size, 11); // what the first client sends (it stops after `first` bytes)
  const b = bytes(size, 22); // what the second client sends
  const url = await createUpload(s, { 'upload-length': size, 'upload-metadata': `filename ${b64('contended.bin')}` });

  // Client A sends `first` bytes, then stalls with the request open (a half-dead connection).
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  t.after(() => { release(); });
  let received = 0;
  const receivedFirst = new Promise<void>((resolve) => {
    const on = (m: unknown): void => {
      received += (m as { bytes: number }).bytes;
      if (received >= first) { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.uploadBytes, on); resolve(); }
    };
    diagnosticsChannel.subscribe(CHANNEL_NAMES.uploadBytes, on);
  });
  const reqA = rawRequest(url, { method: 'PATCH', headers: patchHeaders(0, { 'content-length': size }), body: chunked(a, 64 * 1024, { pauseAfter: first, wait: gate }) })
    .then((r) => `answered ${r.status}`, (err: unknown) => err);
  await receivedFirst;

  // Client B starts from 0 too. The server asks A to let go; A's bytes are kept, so B learns
  // the new offset from a 409 and continues from there.
  let offset = 0;
  let conflicts = 0;
  for (let attempt = 0; attempt < 5; attempt++) {
    const r = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset), body: b.subarray(offset) });
    if (r.status === 409) { conflicts++; offset = Number(r.headers['upload-offset']); continue; }
    assert.equal(r.status, 204, r.text);
    assert.equal(r.headers['upload-offset'], String(size));
    break;
  }
  assert.ok((await reqA) instanceof Error, 'the first request was cut, not answered');
  assert.equal(conflicts, 1);
  assert.equal(offset, first, 'all of the first writer\'s stored bytes were kept');
  const stored = await readFile(path.join(s.root, 'contended.bin'));
  assert.ok(stored.subarray(0, first).equals(a.subarray(0, first)), 'prefix from A, whole');
  assert.ok(stored.subarray(first).equals(b.subarray(first)), 'rest from B, whole: nothing interleaved');
  assert.ok(s.logs.some((l) => l.event === 'taken-over'));
  assert.ok(s.logs.some((l) => l.event === 'resumed'));
});

test('a lock that cannot be taken within --upload-lock-wait answers 423', async (t) => {
  const tmp = await makeTempDir('ferry-lock-');
  t.after(() => tmp.remove());
  const root = path.join(tmp.dir, 'files');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(root, { recursive: true });
  const meta = await createEmbeddedMeta(path.join(tmp.dir, 'state'));
  // Uploads are staged in the state dir, as the server wires it (src/server/create-server.ts).
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside', stagingDir: path.join(tmp.dir, 'state', 'uploads'), journal: meta });
  const locker = createInProcessUploadLocker();
  const app = Fastify({ logger: false });
  t.after(async () => { await app.close(); await meta.close(); });
  await registerUploadRoutes(app, {
    config: { stateDir: path.join(tmp.dir, 'state'), maxUploadSize: undefined, maxPendingUploads: 10_000, maxPendingUploadsClient: 100, maxUploadMetadata: 4096, uploadExpiry: 60_000, uploadLockWait: 200, onConflict: 'rename', dotfiles: 'deny', trustProxy: false },
    storage, meta, logger: pino({ level: 'silent' }), transfer: createUnlimitedTransferControl(), locker,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const addr = app.server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  const base = `http://127.0.0.1:${addr.port}`;
  const url = await createUpload({ url: base } as Parameters<typeof createUpload>[0], { 'upload-length': 10 });
  const id = url.split('/').pop()!;
  // A holder that ignores release requests (as a request in its publishing phase does).
  const held = await locker.acquire(id, { waitMs: 0 });
  const t0 = Date.now();
  const r = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abc' });
  assert.equal(r.status, 423);
  assert.ok(Date.now() - t0 >= 150, 'waited a bounded time first');
  assert.equal(await headOffset(url), 0, 'HEAD does not need the lock');
  await held.release();
  const ok = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abc' });
  assert.equal(ok.status, 204);
  void AUTH; void TUS;
});
