/**
 * Security hardening of uploads:
 * - a second Ferry on the same --state-dir (one that fails to listen, or one that listens on
 *   another port, e.g. during a rolling restart) must not delete the in-flight uploads of the
 *   first: PUT temp files, tus data files;
 * - tus creation is capped: unfinished uploads per client and in total, the size of
 *   Upload-Metadata, and Upload-Length by a finite default --max-upload-size.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import diagnosticsChannel from 'node:diagnostics_channel';
import { watch } from 'node:fs';
import { access, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createHash } from 'node:crypto';
import { DatabaseSync } from 'node:sqlite';
import pino from 'pino';
import { CHANNEL_NAMES, type UploadEvent } from '../../src/core/channels.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createFerryServer, type FerryServer } from '../../src/server/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startChildServer, startServer } from '../helpers/start-server.ts';
import { AUTH, TUS, WRITE_TOKEN, bytes, chunked, patchHeaders, rawRequest, startUploadServer, writeTokensFile } from './uploads-kit.ts';

const KiB = 1024;

/** An in-process Ferry whose log lines arrive as events, so a test can wait for one. */
interface Instance {
  server: FerryServer;
  logs: Array<Record<string, unknown>>;
  /** Resolves with the first log line (already written or later) that matches. */
  nextLog(match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>>;
}

async function createInstance(o: { root: string; stateDir: string; tokensFile: string; port: number }): Promise<Instance> {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: o.port, root: o.root, stateDir: o.stateDir, tokensFile: o.tokensFile, logLevel: 'debug' } });
  const logs: Array<Record<string, unknown>> = [];
  const emitter = new EventEmitter();
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line.trim() === '') continue;
        const parsed = JSON.parse(line) as Record<string, unknown>;
        logs.push(parsed);
        emitter.emit('log', parsed);
      }
      cb();
    },
  });
  const server = await createFerryServer(config, { logger: pino({ level: 'debug' }, sink) });
  const nextLog = (match: (line: Record<string, unknown>) => boolean, timeoutMs: number): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const seen = logs.find(match);
    if (seen !== undefined) { resolve(seen); return; }
    const on = (line: Record<string, unknown>): void => {
      if (!match(line)) return;
      emitter.off('log', on);
      clearTimeout(timer);
      resolve(line);
    };
    const timer = setTimeout(() => { emitter.off('log', on); reject(new Error(`no matching log line within ${timeoutMs} ms`)); }, timeoutMs);
    emitter.on('log', on);
  });
  return { server, logs, nextLog };
}

/** Resolves once `dir` holds an entry that `match` accepts (fs.watch, no polling loop). */
async function waitForEntry(dir: string, match: (name: string) => boolean, timeoutMs: number): Promise<string> {
  const watcher = watch(dir);
  try {
    const deadline = AbortSignal.timeout(timeoutMs);
    for (;;) {
      const found = (await readdir(dir)).find(match);
      if (found !== undefined) return found;
      await once(watcher, 'change', { signal: deadline });
    }
  } finally {
    watcher.close();
  }
}

/**
 * Whether `file` disappears within `windowMs`. Proving that something does NOT happen needs a
 * window; it is only the time the faulty behaviour (a sweep fired during start-up, a few ms of
 * work) is given to show itself.
 */
async function removedWithin(file: string, windowMs: number): Promise<boolean> {
  const watcher = watch(path.dirname(file));
  try {
    const deadline = AbortSignal.timeout(windowMs);
    for (;;) {
      if (!(await access(file).then(() => true, () => false))) return true;
      try {
        await once(watcher, 'change', { signal: deadline });
      } catch {
        return !(await access(file).then(() => true, () => false));
      }
    }
  } finally {
    watcher.close();
  }
}

/** A gate the body generator waits on. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = (): void => {};
  const wait = new Promise<void>((resolve) => { open = resolve; });
  return { wait, open };
}

test('a second instance on the same --state-dir never deletes an in-flight PUT: not when its listen fails, not when it starts', async (t) => {
  // On the old code the start-up sweep ran in onReady (before listen) and removed every
  // put-*.tmp this process did not own: instance B1 (EADDRINUSE) deleted A's temp file, and
  // A's PUT then failed to publish; B2 (listening on another port) did the same.
  const tmp = await makeTempDir('ferry-sec-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const a = await startChildServer(['--tokens-file', tokensFile], { root, stateDir });
  t.after(() => a[Symbol.asyncDispose]());
  const data = bytes(1024 * KiB, 7);
  const half = gate();
  const put = rawRequest(`${a.url}/files/big.bin`, {
    method: 'PUT',
    headers: { ...AUTH, 'content-length': data.length },
    body: chunked(data, 64 * KiB, { pauseAfter: data.length / 2, wait: half.wait }),
  });
  const uploads = path.join(stateDir, 'uploads');
  const tempName = await waitForEntry(uploads, (n) => n.startsWith('put-') && n.endsWith('.tmp'), 10_000);
  const temp = path.join(uploads, tempName);

  // B1: same state dir, A's port: listen fails.
  const b1 = await createInstance({ root, stateDir, tokensFile, port: Number(new URL(a.url).port) });
  await assert.rejects(b1.server.listen(), (err: NodeJS.ErrnoException) => err.code === 'EADDRINUSE');
  assert.equal(await removedWithin(temp, 1000), false, 'an instance that failed to listen deleted A\'s in-flight temp file');
  assert.ok(!b1.logs.some((l) => l.event === 'sweep'), 'no sweep before listening');
  await b1.server.close(0);

  // B2: same state dir, its own port: it sweeps, and leaves A's temp alone.
  const b2 = await createInstance({ root, stateDir, tokensFile, port: 0 });
  t.after(() => b2.server.close(0));
  await b2.server.listen();
  const swept = await b2.nextLog((l) => l.event === 'sweep', 10_000);
  assert.ok(await access(temp).then(() => true, () => false), 'B2\'s sweep deleted A\'s in-flight temp file');
  assert.ok(Number(swept.kept) >= 1, `the sweep reports what it left alone: ${JSON.stringify(swept)}`);

  half.open();
  const r = await put;
  assert.equal(r.status, 201, r.text);
  const stored = await readFile(path.join(root, 'big.bin'));
  assert.equal(createHash('sha256').update(stored).digest('hex'), createHash('sha256').update(data).digest('hex'), 'the file is complete and byte-identical');
  assert.deepEqual((await readdir(uploads)).filter((n) => n.endsWith('.tmp')), []);
  assert.match(tempName, new RegExp(`^put-${a.child.pid}-[0-9a-f]+\\.tmp$`), 'the temp name carries the writer pid');
});

test('a second instance does not expire a tus upload that another live instance is writing', async (t) => {
  // On the old code B's sweep took its own (in-process) lock, found the record past its
  // expiry (a long PATCH refreshes it only at checkpoints) and removed A's data file under the
  // running PATCH; A's upload then failed to publish.
  const tmp = await makeTempDir('ferry-sec-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const a = await startChildServer(['--tokens-file', tokensFile, '--upload-expiry', '1s'], { root, stateDir });
  t.after(() => a[Symbol.asyncDispose]());
  const data = bytes(512 * KiB, 11);
  const created = await rawRequest(`${a.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': data.length, 'upload-metadata': `filename ${Buffer.from('tus.bin').toString('base64')}` } });
  assert.equal(created.status, 201, created.text);
  const url = created.headers.location!;
  const id = url.split('/').pop()!;
  const half = gate();
  const patch = rawRequest(url, { method: 'PATCH', headers: { ...patchHeaders(0), 'content-length': data.length }, body: chunked(data, 32 * KiB, { pauseAfter: data.length / 2, wait: half.wait }) });
  await waitForEntry(path.join(stateDir, 'uploads'), (n) => n === `${id}.part`, 10_000);
  // The record's expiry (1 s after creation) passes while the PATCH is in flight.
  const expiresAt = Date.parse(created.headers['upload-expires']!);
  await new Promise((r) => setTimeout(r, Math.max(0, expiresAt + 1000 - Date.now()))); // the wall-clock expiry is the condition under test

  const b = await createInstance({ root, stateDir, tokensFile, port: 0 });
  t.after(() => b.server.close(0));
  await b.server.listen();
  const swept = await b.nextLog((l) => l.event === 'sweep', 10_000);
  assert.equal(swept.expired, 0, `B expired A's upload: ${JSON.stringify(swept)}`);

  half.open();
  const r = await patch;
  assert.equal(r.status, 204, r.text);
  const stored = await readFile(path.join(root, 'tus.bin'));
  assert.ok(stored.equals(data), 'the tus upload is complete and byte-identical');
});

/** Tokens for two identities with the write role. */
async function twoTokens(dir: string): Promise<{ file: string; one: Record<string, string>; two: Record<string, string> }> {
  const file = path.join(dir, 'tokens2.json');
  const second = 'ferry-second-uploader-token-abcdef0123456789';
  const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
  await writeFile(file, JSON.stringify([{ name: 'one', role: 'write', sha256: sha(WRITE_TOKEN) }, { name: 'two', role: 'write', sha256: sha(second) }]));
  return { file, one: { authorization: `Bearer ${WRITE_TOKEN}` }, two: { authorization: `Bearer ${second}` } };
}

/** Rows in the meta store, read through SQLite itself (nothing stored means no new row). */
function metaRows(stateDir: string): number {
  const db = new DatabaseSync(path.join(stateDir, 'meta.sqlite'), { readOnly: true });
  try {
    return Number((db.prepare('SELECT COUNT(*) AS n FROM kv').get() as { n: number }).n);
  } finally {
    db.close();
  }
}

test('tus creation is capped per client (429) and in total (503); finishing or terminating frees a slot', async (t) => {
  // On the old code there was no cap: every creation below answered 201.
  const tmp = await makeTempDir('ferry-sec-');
  t.after(() => tmp.remove());
  const tokens = await twoTokens(tmp.dir);
  const s = await startServer({ options: { tokensFile: tokens.file, maxPendingUploadsClient: 3, maxPendingUploads: 5 } });
  t.after(() => s.close());
  const create = (who: Record<string, string>, length = 10): ReturnType<typeof rawRequest> =>
    rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...who, 'upload-length': length } });

  const mine: string[] = [];
  for (let i = 0; i < 3; i++) {
    const r = await create(tokens.one);
    assert.equal(r.status, 201, r.text);
    mine.push(r.headers.location!);
  }
  const over = await create(tokens.one);
  assert.equal(over.status, 429, over.text);
  assert.equal(JSON.parse(over.text).code, 'FERRY_ERR_UPLOAD_PENDING_CLIENT');
  assert.match(JSON.parse(over.text).detail, /--max-pending-uploads-client/);
  assert.ok(Number(over.headers['retry-after']) >= 1, 'Retry-After');
  assert.equal((await create(tokens.two)).status, 201, 'another identity can still create');

  // Terminating frees a slot.
  assert.equal((await rawRequest(mine[0]!, { method: 'DELETE', headers: { ...TUS, ...tokens.one } })).status, 204);
  const again = await create(tokens.one, 3);
  assert.equal(again.status, 201, again.text);
  // Finishing frees a slot.
  const done = await rawRequest(again.headers.location!, { method: 'PATCH', headers: { ...TUS, ...tokens.one, 'content-type': 'application/offset+octet-stream', 'upload-offset': 0 }, body: 'abc' });
  assert.equal(done.status, 204, done.text);
  assert.equal((await create(tokens.one)).status, 201, 'a finished upload stops counting');

  // Total: one has 3, two has 1; one more from two fills the server (5), the next is 503.
  assert.equal((await create(tokens.two)).status, 201);
  const full = await create(tokens.two);
  assert.equal(full.status, 503, full.text);
  assert.equal(JSON.parse(full.text).code, 'FERRY_ERR_UPLOAD_PENDING_GLOBAL');
  assert.ok(Number(full.headers['retry-after']) >= 1, 'Retry-After');
});

test('expired uploads stop counting once swept', async (t) => {
  // On the old code there was no cap: the third creation answered 201 at once.
  const s = await startUploadServer(t, { options: { maxPendingUploadsClient: 2, uploadExpiry: '1s' } });
  const create = (): ReturnType<typeof rawRequest> => rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 10 } });
  assert.equal((await create()).status, 201);
  assert.equal((await create()).status, 201);
  let expired = 0;
  const bothExpired = new Promise<void>((resolve) => {
    const on = (m: unknown): void => {
      if ((m as UploadEvent).kind === 'expired' && ++expired === 2) { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, on); resolve(); }
    };
    diagnosticsChannel.subscribe(CHANNEL_NAMES.upload, on);
  });
  assert.equal((await create()).status, 429);
  await bothExpired;
  assert.equal((await create()).status, 201, 'the swept uploads no longer count');
});

test('Upload-Metadata over --max-upload-metadata is 400 and stores nothing', async (t) => {
  // On the old code the 7 KB metadata was stored (201, new rows).
  const s = await startUploadServer(t);
  const before = metaRows(s.stateDir);
  const big = `filename ${Buffer.from('x.bin').toString('base64')},junk ${Buffer.alloc(7 * KiB, 1).toString('base64')}`;
  const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 10, 'upload-metadata': big } });
  assert.equal(r.status, 400, r.text);
  assert.equal(JSON.parse(r.text).code, 'FERRY_ERR_UPLOAD_METADATA_TOO_LARGE');
  assert.match(JSON.parse(r.text).detail, /--max-upload-metadata/);
  assert.equal(metaRows(s.stateDir), before, 'nothing stored');
  assert.equal(r.headers.location, undefined);
  const small = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 10, 'upload-metadata': `filename ${Buffer.from('x.bin').toString('base64')}` } });
  assert.equal(small.status, 201, 'metadata under the cap is accepted');
});

test('a terminated upload leaves a small tombstone: its metadata is not kept for the 410', async (t) => {
  // On the old code the tombstone (kept 7 days) carried the full Upload-Metadata, so
  // create-and-terminate stored kilobytes per request without counting against any cap.
  const s = await startUploadServer(t);
  const meta = `filename ${Buffer.from('t.bin').toString('base64')},note ${Buffer.alloc(2 * KiB, 2).toString('base64')}`;
  const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 10, 'upload-metadata': meta } });
  assert.equal(r.status, 201, r.text);
  const url = r.headers.location!;
  assert.equal((await rawRequest(url, { method: 'DELETE', headers: { ...TUS, ...AUTH } })).status, 204);
  assert.equal((await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } })).status, 410, 'still answered 410');
  const db = new DatabaseSync(path.join(s.stateDir, 'meta.sqlite'), { readOnly: true });
  try {
    const row = db.prepare("SELECT value FROM kv WHERE ns = 'tus-uploads' AND key = ?").get(url.split('/').pop()!) as { value: string };
    assert.ok(row.value.length < 600, `tombstone is ${row.value.length} bytes: ${row.value.slice(0, 200)}`);
    assert.equal((JSON.parse(row.value) as { metadata: unknown }).metadata, null);
  } finally {
    db.close();
  }
});

test('Upload-Length over the default --max-upload-size (100G) is 413 naming the option; Tus-Max-Size advertises it', async (t) => {
  // On the old code the default was unlimited: 201 for 1 TiB, and no Tus-Max-Size.
  const s = await startUploadServer(t);
  const options = await rawRequest(`${s.url}/uploads/`, { method: 'OPTIONS' });
  assert.equal(options.headers['tus-max-size'], String(100 * 1024 ** 3), 'Tus-Max-Size advertises the default');
  const huge = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 2 ** 40 } });
  assert.equal(huge.status, 413, huge.text);
  assert.match(JSON.parse(huge.text).detail, /--max-upload-size/);
});
