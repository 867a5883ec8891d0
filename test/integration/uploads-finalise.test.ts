/**
 * Finalisation (issue 4 §4): the target from `filename` + `path` through the path jail,
 * `--on-conflict rename|reject|overwrite`, atomic publish, sha-256 / CRC-32 recorded for
 * Repr-Digest and zips, the optional `sha256` metadata verified; and concatenation
 * (tus §Concatenation, concatenation-unfinished).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import diagnosticsChannel from 'node:diagnostics_channel';
import path from 'node:path';
import { CHANNEL_NAMES, type UploadEvent } from '../../src/core/channels.ts';
import { DIGEST_CACHE_NAMESPACE, digestCacheKey } from '../../src/http/index.ts';
import { lookupCrc } from '../../src/zip/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { AUTH, TUS, b64, bytes, createUpload, patchHeaders, rawRequest, startUploadServer } from './uploads-kit.ts';

const sha256 = (d: Buffer | string): string => createHash('sha256').update(d).digest('hex');

async function upload(url: string, data: Buffer | string): Promise<Awaited<ReturnType<typeof rawRequest>>> {
  return rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: data });
}

test('target = path + filename through the jail; digests recorded; sha256 metadata verified', async (t) => {
  const s = await startUploadServer(t);
  const outside = await makeTempDir('ferry-outside-');
  t.after(() => outside.remove());

  await t.test('folders are created inside the root; the file is published whole, digests recorded', async () => {
    const data = bytes(300_000, 3);
    const url = await createUpload(s, { 'upload-length': data.length, 'upload-metadata': `filename ${b64('季度报告 2026.pdf')},path ${b64('reports/2026/q1')}` });
    const r = await upload(url, data);
    assert.equal(r.status, 204);
    const file = path.join(s.root, 'reports', '2026', 'q1', '季度报告 2026.pdf');
    assert.deepEqual(await readFile(file), data);
    assert.equal(r.headers['ferry-file'], `/files/reports/2026/q1/${encodeURIComponent('季度报告 2026.pdf')}`);
    // Recorded while receiving, under the keys serve and zip read.
    const st = await stat(file, { bigint: true });
    const rel = 'reports/2026/q1/季度报告 2026.pdf';
    const key = digestCacheKey(rel, { size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino });
    assert.equal(await s.server.meta.get(DIGEST_CACHE_NAMESPACE, key), sha256(data));
    assert.equal(await lookupCrc(s.server.meta, { path: rel, size: Number(st.size), mtimeNs: st.mtimeNs, ino: st.ino }), crc32(data) >>> 0);
    const leftovers = (await readdir(path.join(s.stateDir, 'uploads'))).filter((n) => n.endsWith('.part') || n.endsWith('.tmp'));
    assert.deepEqual(leftovers, [], 'the data file was moved, not copied');
    assert.ok(!s.logs.some((l) => l.event === 'digest-from-disk'), 'digests computed while receiving, not by reading the file again');
  });

  await t.test('no metadata name: the upload id is the name, in the root', async () => {
    const url = await createUpload(s, { 'upload-length': 3 });
    await upload(url, 'abc');
    assert.equal(await readFile(path.join(s.root, url.split('/').pop()!), 'utf8'), 'abc');
  });

  await t.test('a folder that is a symlink out of the root, or a file, is refused at creation', async () => {
    await symlink(outside.dir, path.join(s.root, 'escape'));
    await writeFile(path.join(s.root, 'plain.txt'), 'x');
    for (const folder of ['escape', 'escape/sub', 'plain.txt', 'plain.txt/sub']) {
      const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 1, 'upload-metadata': `filename ${b64('x.bin')},path ${b64(folder)}` } });
      assert.equal(r.status, 404, folder);
    }
    assert.deepEqual(await readdir(outside.dir), []);
  });

  await t.test('sha256 metadata: a match publishes; a mismatch fails the upload and publishes nothing', async () => {
    const good = await createUpload(s, { 'upload-length': 5, 'upload-metadata': `filename ${b64('good.txt')},sha256 ${b64(sha256('hello'))}` });
    assert.equal((await upload(good, 'hello')).status, 204);
    assert.equal(await readFile(path.join(s.root, 'good.txt'), 'utf8'), 'hello');
    const bad = await createUpload(s, { 'upload-length': 5, 'upload-metadata': `filename ${b64('bad.txt')},sha256 ${b64(sha256('HELLO'))}` });
    const r = await upload(bad, 'hello');
    assert.equal(r.status, 460);
    assert.equal(JSON.parse(r.text).code, 'FERRY_ERR_UPLOAD_FILE_DIGEST_MISMATCH');
    await assert.rejects(stat(path.join(s.root, 'bad.txt')), /ENOENT/);
    assert.equal((await rawRequest(bad, { method: 'HEAD', headers: { ...TUS, ...AUTH } })).status, 410);
  });
});

test('--on-conflict rename (default), reject, overwrite', async (t) => {
  const rename = await startUploadServer(t);
  await writeFile(path.join(rename.root, 'report.pdf'), 'old');
  for (const expected of ['report (1).pdf', 'report (2).pdf']) {
    const url = await createUpload(rename, { 'upload-length': 3, 'upload-metadata': `filename ${b64('report.pdf')}` });
    const r = await upload(url, 'new');
    assert.equal(r.status, 204);
    assert.equal(r.headers['ferry-file'], `/files/${encodeURIComponent(expected)}`);
    assert.equal(await readFile(path.join(rename.root, expected), 'utf8'), 'new');
  }
  assert.equal(await readFile(path.join(rename.root, 'report.pdf'), 'utf8'), 'old');

  const reject = await startUploadServer(t, { options: { onConflict: 'reject' } });
  await writeFile(path.join(reject.root, 'taken.txt'), 'old');
  const refused = await rawRequest(`${reject.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 3, 'upload-metadata': `filename ${b64('taken.txt')}` } });
  assert.equal(refused.status, 409, 'refused at creation, before any byte is sent');
  // A name taken while the upload was running: the upload fails, the existing file stays.
  const url = await createUpload(reject, { 'upload-length': 3, 'upload-metadata': `filename ${b64('race.txt')}` });
  await writeFile(path.join(reject.root, 'race.txt'), 'someone else');
  const late = await upload(url, 'new');
  assert.equal(late.status, 409);
  assert.equal(JSON.parse(late.text).code, 'FERRY_ERR_UPLOAD_CONFLICT');
  assert.equal(await readFile(path.join(reject.root, 'race.txt'), 'utf8'), 'someone else');
  assert.equal((await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } })).status, 410);

  const overwrite = await startUploadServer(t, { options: { onConflict: 'overwrite' } });
  await writeFile(path.join(overwrite.root, 'data.bin'), 'old');
  const before = await stat(path.join(overwrite.root, 'data.bin'));
  const ow = await createUpload(overwrite, { 'upload-length': 3, 'upload-metadata': `filename ${b64('data.bin')}` });
  assert.equal((await upload(ow, 'new')).status, 204);
  const after = await stat(path.join(overwrite.root, 'data.bin'));
  assert.equal(await readFile(path.join(overwrite.root, 'data.bin'), 'utf8'), 'new');
  assert.notEqual(after.ino, before.ino, 'replaced by rename (atomic), not rewritten in place');
  await mkdir(path.join(overwrite.root, 'adir'));
  const dir = await createUpload(overwrite, { 'upload-length': 1, 'upload-metadata': `filename ${b64('adir')}` });
  assert.equal((await upload(dir, 'x')).status, 409, 'never over a folder');
});

test('concatenation: partial uploads, final upload, 403 on PATCH of a final, concatenation-unfinished', async (t) => {
  const s = await startUploadServer(t);
  const events: string[] = [];
  const onEvent = (m: unknown): void => { events.push((m as UploadEvent).kind); };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.upload, onEvent);
  t.after(() => { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, onEvent); });

  await t.test('the protocol example: "hello" + " world"', async () => {
    const a = await createUpload(s, { 'upload-concat': 'partial', 'upload-length': 5 });
    const b = await createUpload(s, { 'upload-concat': 'partial', 'upload-length': 6 });
    assert.equal((await rawRequest(a, { method: 'PATCH', headers: patchHeaders(0, { 'upload-concat': 'partial' }), body: 'hello' })).status, 204);
    assert.equal((await rawRequest(b, { method: 'PATCH', headers: patchHeaders(0), body: ' world' })).status, 204);
    assert.deepEqual(await readdir(s.root), [], 'partial uploads are not published');
    const partialHead = await rawRequest(a, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(partialHead.headers['upload-concat'], 'partial');
    assert.equal(partialHead.headers['upload-offset'], '5', '"MUST contain the Upload-Offset header"');
    const concat = `final;${new URL(a).pathname} ${b}`;
    const f = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': concat, 'upload-metadata': `filename ${b64('hello.txt')}` } });
    assert.equal(f.status, 201);
    const final = f.headers.location!;
    assert.equal(await readFile(path.join(s.root, 'hello.txt'), 'utf8'), 'hello world');
    const h = await rawRequest(final, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-length'], '11');
    assert.equal(h.headers['upload-offset'], '11', '"Upload-Offset and Upload-Length MUST be set and their values MUST be equal"');
    assert.equal(h.headers['upload-concat'], concat);
    const p = await rawRequest(final, { method: 'PATCH', headers: patchHeaders(11), body: 'x' });
    assert.equal(p.status, 403, '"MUST respond with the 403 Forbidden status to PATCH requests against a final upload"');
    const again = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': `final;${a}` } });
    assert.equal(again.status, 400, 'a partial belongs to one final upload');
    const leftovers = (await readdir(path.join(s.stateDir, 'uploads'))).filter((n) => n.endsWith('.part'));
    assert.deepEqual(leftovers, [], 'partial data is consumed');
  });

  await t.test('concatenation-unfinished: the final is created first and assembled once the last partial completes', async () => {
    const parts = [bytes(100_000, 1), bytes(70_000, 2), bytes(1, 3)];
    const urls: string[] = [];
    for (const p of parts) urls.push(await createUpload(s, { 'upload-concat': 'partial', 'upload-length': p.length }));
    await rawRequest(urls[0]!, { method: 'PATCH', headers: patchHeaders(0), body: parts[0]! });
    const f = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': `final;${urls.join(' ')}`, 'upload-metadata': `filename ${b64('unfinished.bin')},path ${b64('cat')}` } });
    assert.equal(f.status, 201);
    const waiting = await rawRequest(f.headers.location!, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(waiting.headers['upload-offset'], undefined, '"SHOULD NOT contain the Upload-Offset header unless the concatenation has been successfully finished"');
    assert.equal(waiting.headers['upload-length'], '170001');
    await rawRequest(urls[2]!, { method: 'PATCH', headers: patchHeaders(0), body: parts[2]! });
    // The last partial completes: assembly runs; wait for its 'finished' event.
    const finished = new Promise<void>((resolve) => {
      const on = (m: unknown): void => { if ((m as UploadEvent).kind === 'finished') { diagnosticsChannel.unsubscribe(CHANNEL_NAMES.upload, on); resolve(); } };
      diagnosticsChannel.subscribe(CHANNEL_NAMES.upload, on);
    });
    await rawRequest(urls[1]!, { method: 'PATCH', headers: patchHeaders(0), body: parts[1]! });
    await finished;
    assert.deepEqual(await readFile(path.join(s.root, 'cat', 'unfinished.bin')), Buffer.concat(parts));
    const done = await rawRequest(f.headers.location!, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(done.headers['upload-offset'], '170001');
  });

  await t.test('invalid finals: unknown partial 404, not a partial 400, Upload-Length on a final 400', async () => {
    const missing = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': 'final;/uploads/AAAAAAAAAAAAAAAAAAAAAA' } });
    assert.equal(missing.status, 404);
    const single = await createUpload(s, { 'upload-length': 1 });
    const notPartial = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': `final;${single}` } });
    assert.equal(notPartial.status, 400);
    const withLength = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': `final;${single}`, 'upload-length': 1 } });
    assert.equal(withLength.status, 400, '"The Client MUST NOT include the Upload-Length header in the final upload creation"');
    const foreign = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': 'final;/files/etc/passwd' } });
    assert.equal(foreign.status, 400);
  });

  assert.ok(events.includes('created') && events.includes('finished'));
});
