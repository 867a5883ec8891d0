/**
 * tus 1.0.0 over raw HTTP against a real server: every status code the protocol names, in the
 * protocol's words (tus-resumable-upload-protocol/protocol.md, version 1.0.0).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  AUTH, TUS, b64, bytes, chunked, createUpload, headOffset, patchHeaders, rawRequest, startUploadServer,
} from './uploads-kit.ts';

const EXTENSIONS = 'creation,creation-with-upload,creation-defer-length,expiration,checksum,checksum-trailer,termination,concatenation,concatenation-unfinished';

function digest(alg: string, data: Buffer | string): string {
  if (alg === 'crc32') { const b = Buffer.alloc(4); b.writeUInt32BE(crc32(data) >>> 0); return b.toString('base64'); }
  return createHash(alg).update(data).digest('base64');
}

test('tus 1.0 core, creation, checksum, termination and method override over raw HTTP', async (t) => {
  const s = await startUploadServer(t, { options: { maxUploadSize: '1M' } });

  await t.test('OPTIONS: Tus-Version, Tus-Extension exactly, Tus-Max-Size, Tus-Checksum-Algorithm; Tus-Resumable ignored', async () => {
    for (const url of [`${s.url}/uploads/`, `${s.url}/uploads`]) {
      // §OPTIONS: "The Client SHOULD NOT include the Tus-Resumable header ... the Server MUST ignore the header."
      const r = await rawRequest(url, { method: 'OPTIONS', headers: { 'tus-resumable': '0.0.1' } });
      assert.equal(r.status, 204);
      assert.equal(r.headers['tus-version'], '1.0.0');
      assert.equal(r.headers['tus-extension'], EXTENSIONS);
      assert.equal(r.headers['tus-max-size'], String(1024 * 1024));
      assert.deepEqual(r.headers['tus-checksum-algorithm']?.split(','), ['sha1', 'sha256', 'sha512', 'md5', 'crc32']);
    }
  });

  await t.test('412 + Tus-Version for a missing or unsupported Tus-Resumable, and the request is not processed', async () => {
    const url = await createUpload(s, { 'upload-length': 10 });
    for (const headers of [{ ...AUTH }, { ...AUTH, 'tus-resumable': '0.2.2' }]) {
      const created = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...headers, 'upload-length': 5 } });
      assert.equal(created.status, 412);
      assert.equal(created.headers['tus-version'], '1.0.0');
      assert.equal(created.headers.location, undefined);
      const patched = await rawRequest(url, { method: 'PATCH', headers: { ...headers, 'content-type': 'application/offset+octet-stream', 'upload-offset': 0 }, body: 'abc' });
      assert.equal(patched.status, 412);
      assert.equal(patched.headers['tus-version'], '1.0.0');
    }
    assert.equal(await headOffset(url), 0, '"the Server MUST NOT process the request"');
  });

  await t.test('POST → 201 with an absolute Location; HEAD → 200 with Upload-Offset, Upload-Length, Upload-Metadata, no-store', async () => {
    const metadata = `filename ${b64('world_domination_plan.pdf')},is_confidential`;
    const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 100, 'upload-metadata': metadata } });
    assert.equal(r.status, 201);
    assert.equal(r.headers['tus-resumable'], '1.0.0');
    assert.match(r.headers.location ?? '', new RegExp(`^${s.url}/uploads/[A-Za-z0-9_-]{22}$`));
    assert.ok(!Number.isNaN(Date.parse(r.headers['upload-expires'] ?? '')), 'expiration: Upload-Expires in the POST answer');
    const h = await rawRequest(r.headers.location!, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '0', '"even if the offset is 0"');
    assert.equal(h.headers['upload-length'], '100');
    assert.equal(h.headers['upload-metadata'], metadata, '"its value as specified by the Client"');
    assert.equal(h.headers['cache-control'], 'no-store');
    assert.equal(h.headers['tus-resumable'], '1.0.0');
  });

  await t.test('PATCH → 204 with the new Upload-Offset and Upload-Expires; the bytes land at the offset', async () => {
    const url = await createUpload(s, { 'upload-length': 11, 'upload-metadata': `filename ${b64('hello.txt')}` });
    const a = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'hello' });
    assert.equal(a.status, 204);
    assert.equal(a.headers['upload-offset'], '5');
    assert.ok(a.headers['upload-expires'], '"MUST be included in every PATCH response if the upload is going to expire"');
    const b = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(5), body: ' world' });
    assert.equal(b.status, 204);
    assert.equal(b.headers['upload-offset'], '11');
    assert.equal(await readFile(path.join(s.root, 'hello.txt'), 'utf8'), 'hello world');
    assert.equal(b.headers['ferry-file'], '/files/hello.txt');
    const h = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.headers['upload-offset'], '11', '"or the upload is already considered completed"');
    // Regression: an empty PATCH at the final offset once re-created an empty data file and
    // reset the offset to 0. It is a no-op.
    const again = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(11, { 'content-length': 0 }) });
    assert.equal(again.status, 204);
    assert.equal(again.headers['upload-offset'], '11');
    assert.equal(await headOffset(url), 11);
    assert.equal(await readFile(path.join(s.root, 'hello.txt'), 'utf8'), 'hello world');
  });

  await t.test('415 for another Content-Type; 409 with the current offset for a wrong Upload-Offset, upload untouched', async () => {
    const url = await createUpload(s, { 'upload-length': 10 });
    const ct = await rawRequest(url, { method: 'PATCH', headers: { ...patchHeaders(0), 'content-type': 'application/octet-stream' }, body: 'abc' });
    assert.equal(ct.status, 415);
    assert.equal(ct.headers['tus-resumable'], '1.0.0');
    assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abc' })).status, 204);
    for (const off of [0, 2, 4, 10]) {
      const r = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(off), body: 'x' });
      assert.equal(r.status, 409, `offset ${off}`);
      assert.equal(r.headers['upload-offset'], '3');
    }
    assert.equal(await headOffset(url), 3);
    const missing = await rawRequest(url, { method: 'PATCH', headers: { ...TUS, ...AUTH, 'content-type': 'application/offset+octet-stream' }, body: 'x' });
    assert.equal(missing.status, 400, 'Upload-Offset is required');
  });

  await t.test('413 past Tus-Max-Size (creation) and past Upload-Length (PATCH), before the body is read', async () => {
    const big = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 1024 * 1024 + 1 } });
    assert.equal(big.status, 413);
    assert.equal(big.headers['tus-max-size'], String(1024 * 1024));
    assert.match(JSON.parse(big.text).detail as string, /1048576/, '413 names the limit');
    const url = await createUpload(s, { 'upload-length': 10 });
    const over = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: bytes(11) });
    assert.equal(over.status, 413);
    assert.equal(await headOffset(url), 0);
    // Chunked: refused as soon as the stream passes the length; the chunk is discarded.
    const overChunked = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: chunked(bytes(64 * 1024), 4096) });
    assert.equal(overChunked.status, 413);
    assert.equal(await headOffset(url), 0);
    const deferred = await createUpload(s, { 'upload-defer-length': 1 });
    assert.equal((await rawRequest(deferred, { method: 'PATCH', headers: patchHeaders(0, { 'upload-length': 2 * 1024 * 1024 }), body: 'x' })).status, 413);
  });

  await t.test('404 for unknown uploads and for ids that try to traverse paths; 401 without credentials', async () => {
    const ids = ['AAAAAAAAAAAAAAAAAAAAAA', '..%2F..%2Fmeta.sqlite', '%2e%2e', '..', 'AAAAAAAAAAAAAAAAAAAAAA%00', '..%5C..%5Cx', 'a%2F..%2F..%2Fetc%2Fpasswd', 'uploads'];
    for (const id of ids) {
      for (const method of ['HEAD', 'PATCH', 'DELETE']) {
        const r = await rawRequest(`${s.url}/uploads/${id}`, { method, headers: patchHeaders(0), ...(method === 'PATCH' ? { body: 'x' } : {}) });
        assert.equal(r.status, 404, `${method} ${id}`);
        if (method === 'HEAD') assert.equal(r.headers['upload-offset'], undefined, '"without the Upload-Offset header"');
      }
    }
    for (const raw of ['/uploads/../meta.sqlite', '/uploads/x/../../etc/passwd']) {
      const r = await rawRequest(`${s.url}${raw}`, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
      assert.equal(r.status, 404, raw);
    }
    const anon = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, 'upload-length': 1 } });
    assert.equal(anon.status, 401);
  });

  await t.test('termination: DELETE → 204; afterwards 410 (the server keeps track), data freed', async () => {
    const url = await createUpload(s, { 'upload-length': 10 });
    await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abcd' });
    const id = url.split('/').pop()!;
    const del = await rawRequest(url, { method: 'DELETE', headers: { ...TUS, ...AUTH } });
    assert.equal(del.status, 204);
    assert.equal(del.headers['tus-resumable'], '1.0.0');
    await assert.rejects(readFile(path.join(s.stateDir, 'uploads', `${id}.part`)), /ENOENT/);
    for (const [method, extra] of [['HEAD', {}], ['PATCH', { body: 'e' }], ['DELETE', {}]] as const) {
      const r = await rawRequest(url, { method, headers: patchHeaders(4), ...extra });
      assert.equal(r.status, 410, method);
    }
  });

  await t.test('Upload-Metadata errors are 400 and create nothing', async () => {
    const bad = [
      'filename not-base64!', `filename ${b64('a')},filename ${b64('b')}`, `a ${b64('x')} extra`, `filename ${b64('a/b.txt')}`,
      `filename ${b64('..')}`, `path ${b64('../outside')}`, `path ${b64('a/../../b')}`, `path ${b64('a\\b')}`, `filename ${b64('.hidden')}`,
      `filename ${Buffer.from([0xc3, 0x28]).toString('base64')}`, `sha256 ${b64('nope')}`,
    ];
    for (const metadata of bad) {
      const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 1, 'upload-metadata': metadata } });
      assert.equal(r.status, 400, metadata);
      assert.equal(r.headers.location, undefined);
      assert.match(r.headers['content-type'] ?? '', /problem\+json/);
    }
  });

  await t.test('checksum: sha1/sha256/sha512/md5/crc32 accepted; mismatch → 460, chunk discarded, offset unchanged; unknown → 400', async () => {
    const data = bytes(5000, 7);
    const url = await createUpload(s, { 'upload-length': data.length });
    let offset = 0;
    for (const alg of ['sha1', 'sha256', 'sha512', 'md5', 'crc32']) {
      const chunk = data.subarray(offset, offset + 1000);
      const bad = Buffer.from(chunk);
      bad[0] = bad[0]! ^ 0xff;
      const wrong = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset, { 'upload-checksum': `${alg} ${digest(alg, bad)}` }), body: chunk });
      assert.equal(wrong.status, 460, `${alg} mismatch`);
      assert.equal(await headOffset(url), offset, `${alg}: "the upload and its offset MUST NOT be updated"`);
      const ok = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset, { 'upload-checksum': `${alg} ${digest(alg, chunk)}` }), body: chunk });
      assert.equal(ok.status, 204, alg);
      offset += 1000;
      assert.equal(ok.headers['upload-offset'], String(offset));
    }
    const unknown = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(offset, { 'upload-checksum': `whirlpool ${b64('x')}` }), body: 'x' });
    assert.equal(unknown.status, 400);
    assert.equal(await headOffset(url), offset);
  });

  await t.test('checksum-trailer: Upload-Checksum sent as a trailer after a chunked body', async () => {
    const data = bytes(70_000, 9);
    const url = await createUpload(s, { 'upload-length': data.length, 'upload-metadata': `filename ${b64('trailer.bin')}` });
    const first = data.subarray(0, 40_000);
    const headers = patchHeaders(0, { trailer: 'Upload-Checksum', 'transfer-encoding': 'chunked' });
    const wrong = await rawRequest(url, { method: 'PATCH', headers, body: chunked(first, 8192), trailers: { 'Upload-Checksum': `sha256 ${digest('sha256', data.subarray(1, 40_001))}` } });
    assert.equal(wrong.status, 460);
    assert.equal(await headOffset(url), 0);
    const right = await rawRequest(url, { method: 'PATCH', headers, body: chunked(first, 8192), trailers: { 'Upload-Checksum': `sha256 ${digest('sha256', first)}` } });
    assert.equal(right.status, 204);
    assert.equal(right.headers['upload-offset'], '40000');
    const rest = data.subarray(40_000);
    const last = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(40_000, { trailer: 'Upload-Checksum', 'transfer-encoding': 'chunked' }), body: chunked(rest, 8192), trailers: { 'Upload-Checksum': `crc32 ${digest('crc32', rest)}` } });
    assert.equal(last.status, 204);
    assert.deepEqual(await readFile(path.join(s.root, 'trailer.bin')), data);
  });

  await t.test('creation-defer-length: Upload-Defer-Length: 1 until a PATCH sets Upload-Length, which cannot change', async () => {
    const url = await createUpload(s, { 'upload-defer-length': 1, 'upload-metadata': `filename ${b64('deferred.txt')}` });
    let h = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.headers['upload-defer-length'], '1');
    assert.equal(h.headers['upload-length'], undefined);
    assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'hello' })).status, 204);
    h = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.headers['upload-defer-length'], '1');
    const last = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(5, { 'upload-length': 11 }), body: ' world' });
    assert.equal(last.status, 204);
    assert.equal(last.headers['upload-offset'], '11');
    h = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    assert.equal(h.headers['upload-length'], '11');
    assert.equal(h.headers['upload-defer-length'], undefined);
    assert.equal(await readFile(path.join(s.root, 'deferred.txt'), 'utf8'), 'hello world');
    const bad = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-defer-length': 2 } });
    assert.equal(bad.status, 400, '"any other value than 1"');
    const both = await createUpload(s, { 'upload-defer-length': 1 });
    await rawRequest(both, { method: 'PATCH', headers: patchHeaders(0, { 'upload-length': 4 }), body: 'ab' });
    const change = await rawRequest(both, { method: 'PATCH', headers: patchHeaders(2, { 'upload-length': 5 }), body: 'c' });
    assert.equal(change.status, 400, '"Once set the length MUST NOT be changed"');
  });

  await t.test('creation-with-upload: the POST body is the first chunk, Upload-Offset in the 201', async () => {
    const r = await rawRequest(`${s.url}/uploads/`, {
      method: 'POST',
      headers: { ...TUS, ...AUTH, 'upload-length': 11, 'content-type': 'application/offset+octet-stream', 'upload-metadata': `filename ${b64('cwu.txt')}` },
      body: 'hello',
    });
    assert.equal(r.status, 201);
    assert.equal(r.headers['upload-offset'], '5');
    const url = r.headers.location!;
    assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(5), body: ' world' })).status, 204);
    assert.equal(await readFile(path.join(s.root, 'cwu.txt'), 'utf8'), 'hello world');
    const whole = await rawRequest(`${s.url}/uploads/`, {
      method: 'POST',
      headers: { ...TUS, ...AUTH, 'upload-length': 3, 'content-type': 'application/offset+octet-stream', 'upload-metadata': `filename ${b64('whole.txt')}`, 'upload-checksum': `sha1 ${digest('sha1', 'abc')}` },
      body: 'abc',
    });
    assert.equal(whole.status, 201);
    assert.equal(whole.headers['upload-offset'], '3');
    assert.equal(await readFile(path.join(s.root, 'whole.txt'), 'utf8'), 'abc');
    const wrongType = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': 3, 'content-type': 'text/plain' }, body: 'abc' });
    assert.equal(wrongType.status, 415);
  });

  await t.test('X-HTTP-Method-Override is the method; the actual one is ignored', async () => {
    const url = await createUpload(s, { 'upload-length': 4 });
    const p = await rawRequest(url, { method: 'POST', headers: { ...patchHeaders(0), 'x-http-method-override': 'PATCH' }, body: 'ab' });
    assert.equal(p.status, 204);
    assert.equal(p.headers['upload-offset'], '2');
    const h = await rawRequest(url, { method: 'POST', headers: { ...TUS, ...AUTH, 'x-http-method-override': 'HEAD' } });
    assert.equal(h.status, 200);
    assert.equal(h.headers['upload-offset'], '2');
    assert.equal(h.headers['cache-control'], 'no-store');
    const d = await rawRequest(url, { method: 'POST', headers: { ...TUS, ...AUTH, 'x-http-method-override': 'DELETE' } });
    assert.equal(d.status, 204);
    assert.equal((await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } })).status, 410);
  });

  await t.test('an empty upload is complete at creation', async () => {
    await createUpload(s, { 'upload-length': 0, 'upload-metadata': `filename ${b64('empty.txt')}` });
    assert.equal((await readFile(path.join(s.root, 'empty.txt'))).length, 0);
  });
});

test('Location is built from X-Forwarded-* only with --trust-proxy', async (t) => {
  const fwd = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'files.example.org', 'x-forwarded-prefix': '/ferry' };
  const trusted = await startUploadServer(t, { options: { trustProxy: true } });
  const r = await rawRequest(`${trusted.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, ...fwd, 'upload-length': 1 } });
  assert.equal(r.status, 201);
  assert.match(r.headers.location ?? '', /^https:\/\/files\.example\.org\/ferry\/uploads\/[A-Za-z0-9_-]{22}$/);
  const plain = await startUploadServer(t);
  const p = await rawRequest(`${plain.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, ...fwd, 'upload-length': 1 } });
  assert.ok(p.headers.location?.startsWith(`${plain.url}/uploads/`), p.headers.location);
});
