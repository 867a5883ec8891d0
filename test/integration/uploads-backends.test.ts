/**
 * Uploads through Storage's write half on every backend (test/helpers/backends.ts: local disk
 * and an S3-compatible bucket on loopback), one table of requests: PUT creates and replaces,
 * `If-None-Match: *` refuses an existing file, a chunk with a wrong checksum is discarded (460)
 * and the offset stays, a tus concatenation of a part larger than an object store's minimum
 * part and a 3-byte part publishes byte-identical, and a resumed upload continues at its offset.
 *
 * On the code before issue 9 the S3 rows failed: uploads wrote to local disk behind Storage's
 * back and answered 503 on any other backend.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { backends, type BackendFixture } from '../helpers/backends.ts';
import type { TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { AUTH, TUS, b64, createUpload, headOffset, patchHeaders, rawRequest, writeTokensFile } from './uploads-kit.ts';

const MiB = 1024 * 1024;

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

for (const backend of backends) {
  describe(`[${backend.name}] uploads through the write half`, () => {
    let fx: BackendFixture;
    let s: TestServer;
    let cleanup: () => Promise<void>;
    before(async () => {
      const tmp = await makeTempDir('ferry-upl-be-');
      cleanup = tmp.remove;
      fx = await backend.start({ 'old.txt': 'old' });
      s = await fx.startServer({ tokensFile: await writeTokensFile(tmp.dir), stateDir: path.join(tmp.dir, 'state') });
    });
    after(async () => { await s?.close(); await fx?.cleanup(); await cleanup?.(); });

    const get = async (rel: string): Promise<Buffer> => {
      const r = await fetch(`${s.url}/files/${rel}`, { headers: AUTH });
      assert.equal(r.status, 200, rel);
      return Buffer.from(await r.arrayBuffer());
    };

    test('PUT: 201 new, 204 replacing, 412 with If-None-Match: * on an existing file', async () => {
      const put = (rel: string, body: string, headers: Record<string, string> = {}): Promise<Response> => fetch(`${s.url}/files/${rel}`, { method: 'PUT', headers: { ...AUTH, ...headers }, body });
      assert.equal((await put('p/new.txt', 'one')).status, 201);
      assert.equal((await get('p/new.txt')).toString(), 'one');
      assert.equal((await put('p/new.txt', 'two')).status, 204);
      assert.equal((await get('p/new.txt')).toString(), 'two');
      assert.equal((await put('old.txt', 'clobber', { 'if-none-match': '*' })).status, 412);
      assert.equal((await get('old.txt')).toString(), 'old', 'nothing replaced');
    });

    test('tus: a wrong chunk checksum is 460 and the offset stays; the upload resumes and publishes', async () => {
      const url = await createUpload(s, { 'upload-length': 8, 'upload-metadata': `filename ${b64('c.txt')}` });
      assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: 'abcd' })).status, 204);
      const bad = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(4, { 'upload-checksum': `sha1 ${createHash('sha1').update('nope').digest('base64')}` }), body: 'efgh' });
      assert.equal(bad.status, 460);
      assert.equal(await headOffset(url), 4);
      assert.equal((await rawRequest(url, { method: 'PATCH', headers: patchHeaders(4), body: 'efgh' })).status, 204);
      assert.equal((await get('c.txt')).toString(), 'abcdefgh');
    });

    test('tus concatenation: a part larger than 5 MiB and a 3-byte part become one file', async () => {
      const big = randomBytes(5 * MiB + 17);
      const small = Buffer.from('end');
      const partial = async (data: Buffer): Promise<string> => {
        const url = await createUpload(s, { 'upload-length': data.length, 'upload-concat': 'partial' });
        const r = await rawRequest(url, { method: 'PATCH', headers: patchHeaders(0), body: data });
        assert.equal(r.status, 204, r.text);
        return url;
      };
      const parts = [await partial(big), await partial(small)];
      const fin = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-concat': `final;${parts.join(' ')}`, 'upload-metadata': `filename ${b64('cat.bin')}` } });
      assert.equal(fin.status, 201, fin.text);
      const whole = Buffer.concat([big, small]);
      // All parts were complete: the final was assembled and published before the 201.
      assert.equal(await headOffset(fin.headers.location!), whole.length);
      assert.equal(sha(await get('cat.bin')), sha(whole));
    });
  });
}
