/**
 * GET/HEAD /files/{path} on a real server, rule by rule from RFC 9110: ranges (single,
 * multipart, 416, ignored), conditional requests in §13.2.2 order, methods, content metadata,
 * Content-Disposition, compression and sidecars, digests, logs, metrics.
 * The same table runs against every storage backend (test/helpers/backends.ts: local disk and
 * an S3-compatible bucket); validators are compared by relationship (the 304 carries the ETag
 * the 200 gave), never as literal values, since each backend derives them differently.
 * undici.request is used because it adds no Accept-Encoding and never decodes bodies.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { createHash } from 'node:crypto';
import { request, type Dispatcher } from 'undici';
import type { TestServer } from '../helpers/start-server.ts';
import { backends, type Backend, type BackendFixture } from '../helpers/backends.ts';
import { formatHttpDate } from '../../src/http/index.ts';

interface Res { status: number; headers: Record<string, string>; body: Buffer }

async function http(s: TestServer, urlPath: string, headers: Record<string, string> = {}, method: Dispatcher.HttpMethod = 'GET'): Promise<Res> {
  const r = await request(`${s.url}${urlPath}`, { method, headers });
  const body = Buffer.from(await r.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(r.headers)) flat[k] = Array.isArray(v) ? v.join(', ') : String(v);
  return { status: r.statusCode, headers: flat, body };
}

const DATA = Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7 + 3) % 251));
const TEXT = Buffer.from(Array.from({ length: 400 }, (_, i) => `line ${i}: the quick brown fox jumps over the lazy dog\n`).join(''));
const sha256b64 = (b: Buffer): string => createHash('sha256').update(b).digest('base64');

/** Parses a multipart/byteranges body into parts (RFC 9110 §14.6). */
function parseMultipart(body: Buffer, contentType: string): Array<{ headers: Record<string, string>; data: Buffer }> {
  const boundary = /boundary=([^;]+)/.exec(contentType)![1]!;
  const text = body.toString('latin1');
  assert.ok(text.startsWith(`--${boundary}\r\n`), 'starts with the first delimiter');
  assert.ok(text.endsWith(`\r\n--${boundary}--\r\n`), 'ends with the close delimiter');
  const chunks = text.slice(0, -(`\r\n--${boundary}--\r\n`.length)).split(`--${boundary}\r\n`).slice(1);
  return chunks.map((chunk, i, all) => {
    const end = chunk.indexOf('\r\n\r\n');
    const headers: Record<string, string> = {};
    for (const line of chunk.slice(0, end).split('\r\n')) {
      const c = line.indexOf(':');
      headers[line.slice(0, c).toLowerCase()] = line.slice(c + 1).trim();
    }
    let data = chunk.slice(end + 4);
    if (i < all.length - 1) data = data.slice(0, -2); // CRLF before the next delimiter
    return { headers, data: Buffer.from(data, 'latin1') };
  });
}

for (const backend of backends) describe(`/files on ${backend.name} storage`, () => runSuite(backend));

function runSuite(backend: Backend): void {
  let fx: BackendFixture;
  let s: TestServer;
  let off: TestServer;

  before(async () => {
    fx = await backend.start({
      'data.bin': DATA,
      'empty.txt': '',
      'notes.txt': TEXT,
      'page.html': '<script>alert(1)</script>',
      'photo.jpg': DATA,
      'archive.zip': DATA,
      'README': 'no extension',
      '季度报告 2026.pdf': 'pdf',
      'dir/inner.txt': 'inner',
      'app.js': TEXT,
      'app.js.br': zlib.brotliCompressSync(TEXT),
      'app.js.gz': zlib.gzipSync(TEXT),
      'stale.css': TEXT,
    });
    await fx.seed({ 'stale.css.gz': zlib.gzipSync(Buffer.from('OLD CONTENT')) }, { mtimeMs: Date.now() - 3600_000 });
    if (fx.root !== undefined && backend.hasSymlinks) await symlink(path.join(fx.root, 'data.bin'), path.join(fx.root, 'link-inside.bin'));
    s = await fx.startServer();
    off = await fx.startServer({ compress: 'off', maxRanges: 4 });
    assert.equal(s.server.config.storage, backend.name, 'the suite runs against the backend it names');
  });
  after(async () => { await s?.close(); await off?.close(); await fx?.cleanup(); });

  test('GET: 200 with the whole body and every header SPEC §2.1 names', async () => {
    const r = await http(s, '/files/data.bin');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, DATA);
    assert.equal(r.headers['content-length'], '10000');
    assert.equal(r.headers['accept-ranges'], 'bytes');
    assert.match(r.headers.etag!, /^"[^"]+"$/, 'strong ETag');
    assert.ok(!Number.isNaN(Date.parse(r.headers['last-modified']!)));
    assert.equal(r.headers['content-type'], 'application/octet-stream');
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.equal(r.headers['content-encoding'], undefined);
    assert.ok(r.headers['x-request-id']);
  });

  test('HEAD: the same header fields as GET, no content (RFC 9110 §9.3.2)', async () => {
    const g = await http(s, '/files/data.bin');
    const h = await http(s, '/files/data.bin', {}, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    for (const name of ['content-length', 'content-type', 'etag', 'last-modified', 'accept-ranges', 'x-content-type-options']) {
      assert.equal(h.headers[name], g.headers[name], name);
    }
  });

  test('Content-Type from the name; unknown → application/octet-stream; HTML is sandboxed', async () => {
    const cases: Array<[string, RegExp]> = [
      ['/files/notes.txt', /^text\/plain; charset=utf-8$/],
      ['/files/photo.jpg', /^image\/jpeg$/],
      ['/files/README', /^application\/octet-stream$/],
      ['/files/page.html', /^text\/html; charset=utf-8$/],
      [`/files/${encodeURIComponent('季度报告 2026.pdf')}`, /^application\/pdf$/],
    ];
    for (const [p, ct] of cases) {
      const r = await http(s, p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers['content-type']!, ct, p);
    }
    const html = await http(s, '/files/page.html');
    assert.equal(html.headers['content-security-policy'], 'sandbox');
  });

  test('Range: table of single ranges, ignored ranges and 416 on a real response', async () => {
    type Row = [string, string, number, [number, number] | 'all' | 'none'];
    const rows: Row[] = [
      ['first 500', 'bytes=0-499', 206, [0, 499]],
      ['suffix', 'bytes=-500', 206, [9500, 9999]],
      ['open-ended', 'bytes=9500-', 206, [9500, 9999]],
      ['suffix longer than the file', 'bytes=-20000', 206, [0, 9999]],
      ['last-pos clamped', 'bytes=9990-20000', 206, [9990, 9999]],
      ['upper-case unit', 'BYTES=1-2', 206, [1, 2]],
      ['empty list elements', 'bytes=,5-9,', 206, [5, 9]],
      ['huge numerals', 'bytes=0-999999999999999999999999', 206, [0, 9999]],
      ['overlapping ranges coalesce to one part', 'bytes=0-10,5-20', 206, [0, 20]],
      ['malformed → 200', 'bytes=abc', 200, 'all'],
      ['unknown unit → 200', 'pages=1-2', 200, 'all'],
      ['inverted → 200', 'bytes=5-1', 200, 'all'],
      ['bytes=-0 → 416', 'bytes=-0', 416, 'none'],
      ['first-pos past the end → 416', 'bytes=10000-', 416, 'none'],
    ];
    for (const [name, range, status, expect] of rows) {
      const r = await http(s, '/files/data.bin', { range });
      assert.equal(r.status, status, name);
      if (Array.isArray(expect)) {
        assert.equal(r.headers['content-range'], `bytes ${expect[0]}-${expect[1]}/10000`, name);
        assert.deepEqual(r.body, DATA.subarray(expect[0], expect[1] + 1), name);
        assert.equal(r.headers['content-length'], String(expect[1] - expect[0] + 1), name);
      } else if (expect === 'all') {
        assert.deepEqual(r.body, DATA, name);
        assert.equal(r.headers['content-range'], undefined, name);
      } else {
        // §15.5.17: "SHOULD generate a Content-Range header field specifying the current length".
        assert.equal(r.headers['content-range'], 'bytes */10000', name);
        assert.match(r.headers['content-type']!, /^application\/problem\+json/, name);
        assert.ok(!r.body.includes(DATA.subarray(0, 64)), 'no file bytes in an error');
      }
    }
  });

  test('empty file: bytes=0- → 416 bytes */0, a suffix → 200 with nothing', async () => {
    const a = await http(s, '/files/empty.txt', { range: 'bytes=0-' });
    assert.equal(a.status, 416);
    assert.equal(a.headers['content-range'], 'bytes */0');
    const b = await http(s, '/files/empty.txt', { range: 'bytes=-5' });
    assert.equal(b.status, 200);
    assert.equal(b.headers['content-length'], '0');
    assert.equal(b.body.length, 0);
    const c = await http(s, '/files/empty.txt');
    assert.equal(c.status, 200);
    assert.equal(c.body.length, 0);
  });

  test('multipart/byteranges: parts, per-part headers and an exact Content-Length', async () => {
    const r = await http(s, '/files/notes.txt', { range: 'bytes=0-0,-1,100-199' });
    assert.equal(r.status, 206);
    assert.match(r.headers['content-type']!, /^multipart\/byteranges; boundary=[0-9a-f]+$/);
    assert.equal(Number(r.headers['content-length']), r.body.length);
    assert.equal(r.headers['content-range'], undefined, '§14.6: no Content-Range on the multipart response itself');
    const parts = parseMultipart(r.body, r.headers['content-type']!);
    assert.deepEqual(parts.map((p) => p.headers['content-range']), [`bytes 0-0/${TEXT.length}`, `bytes 100-199/${TEXT.length}`, `bytes ${TEXT.length - 1}-${TEXT.length - 1}/${TEXT.length}`]);
    for (const p of parts) assert.equal(p.headers['content-type'], 'text/plain; charset=utf-8');
    assert.deepEqual(parts[0]!.data, TEXT.subarray(0, 1));
    assert.deepEqual(parts[1]!.data, TEXT.subarray(100, 200));
    assert.deepEqual(parts[2]!.data, TEXT.subarray(TEXT.length - 1));
  });

  test('many tiny ranges: more parts than --max-ranges → 200 with the whole body', async () => {
    const ranges = Array.from({ length: 5 }, (_, i) => `${i * 10}-${i * 10}`).join(',');
    const r = await http(off, '/files/data.bin', { range: `bytes=${ranges}` });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body, DATA);
    const four = Array.from({ length: 4 }, (_, i) => `${i * 10}-${i * 10}`).join(',');
    assert.equal((await http(off, '/files/data.bin', { range: `bytes=${four}` })).status, 206);
  });

  test('methods: HEAD and other methods never apply Range; POST/DELETE/PATCH → 405 with Allow', async () => {
    // §14.2: "GET is the only method for which range handling is defined."
    const head = await http(s, '/files/data.bin', { range: 'bytes=0-9' }, 'HEAD');
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '10000');
    assert.equal(head.headers['content-range'], undefined);
    for (const method of ['POST', 'DELETE', 'PATCH'] as const) {
      const r = await http(s, '/files/data.bin', { range: 'bytes=0-9' }, method);
      assert.equal(r.status, 405, method);
      assert.equal(r.headers.allow, 'GET, HEAD, PUT', method);
      assert.match(r.headers['content-type']!, /^application\/problem\+json/);
      assert.ok(!r.body.includes(DATA.subarray(0, 10)));
    }
  });

  test('conditional requests on a real response, in RFC 9110 §13.2.2 order', async () => {
    const base = await http(s, '/files/data.bin');
    const etag = base.headers.etag!;
    const lm = base.headers['last-modified']!;
    const lmMs = Date.parse(lm);
    const weak = `W/${etag}`;
    type Row = [string, Record<string, string>, number, string?];
    const rows: Row[] = [
      ['If-None-Match same tag → 304', { 'if-none-match': etag }, 304],
      ['If-None-Match weak form matches weakly → 304', { 'if-none-match': weak }, 304],
      ['If-None-Match * → 304', { 'if-none-match': '*' }, 304],
      ['If-None-Match other → 200', { 'if-none-match': '"other"' }, 200],
      ['If-Match same → 200', { 'if-match': etag }, 200],
      ['If-Match weak → 412 (strong comparison)', { 'if-match': weak }, 412],
      ['If-Match other → 412', { 'if-match': '"other"' }, 412],
      ['If-Modified-Since = Last-Modified → 304', { 'if-modified-since': lm }, 304],
      ['If-Modified-Since earlier → 200', { 'if-modified-since': formatHttpDate(lmMs - 1000) }, 200],
      ['If-Modified-Since invalid → ignored', { 'if-modified-since': 'yesterday' }, 200],
      ['If-Modified-Since ignored with If-None-Match', { 'if-none-match': '"other"', 'if-modified-since': lm }, 200],
      ['If-Unmodified-Since earlier → 412', { 'if-unmodified-since': formatHttpDate(lmMs - 1000) }, 412],
      ['If-Unmodified-Since = LM → 200', { 'if-unmodified-since': lm }, 200],
      ['If-Unmodified-Since ignored with If-Match', { 'if-match': etag, 'if-unmodified-since': formatHttpDate(lmMs - 1000) }, 200],
      ['If-Match false wins over If-None-Match', { 'if-match': '"x"', 'if-none-match': etag }, 412],
      ['Cache-Control: no-cache with a validator → still 304', { 'cache-control': 'no-cache', 'if-none-match': etag }, 304],
      ['Pragma: no-cache with a validator → still 304', { pragma: 'no-cache', 'if-modified-since': lm }, 304],
      ['If-Range strong tag → 206', { range: 'bytes=0-9', 'if-range': etag }, 206],
      ['If-Range weak tag → 200 (weak never matches)', { range: 'bytes=0-9', 'if-range': weak }, 200],
      ['If-Range exact date → 206', { range: 'bytes=0-9', 'if-range': lm }, 206],
      ['If-Range date one second off → 200', { range: 'bytes=0-9', 'if-range': formatHttpDate(lmMs - 1000) }, 200],
      ['If-Range date one second later → 200', { range: 'bytes=0-9', 'if-range': formatHttpDate(lmMs + 1000) }, 200],
      ['If-Range other tag → 200', { range: 'bytes=0-9', 'if-range': '"stale"' }, 200],
      ['If-Range without Range → ignored', { 'if-range': '"stale"' }, 200],
      ['If-Range false ignores even an unsatisfiable Range', { range: 'bytes=99999-', 'if-range': '"stale"' }, 200],
      ['preconditions before Range: 304 beats 206', { range: 'bytes=0-9', 'if-none-match': etag }, 304],
      ['preconditions before Range: 412 beats 416', { range: 'bytes=99999-', 'if-match': '"x"' }, 412],
    ];
    for (const [name, headers, status] of rows) {
      const r = await http(s, '/files/data.bin', headers);
      assert.equal(r.status, status, name);
      if (status === 304) {
        assert.equal(r.body.length, 0, name);
        assert.equal(r.headers.etag, etag, `${name}: §15.4.5 304 carries ETag`);
        assert.equal(r.headers['content-length'], undefined, name);
      }
      if (status === 200) assert.deepEqual(r.body, DATA, name);
      if (status === 206) assert.deepEqual(r.body, DATA.subarray(0, 10), name);
      if (status === 412) assert.ok(!r.body.includes(DATA.subarray(0, 16)), name);
    }
    // HEAD follows GET: If-None-Match → 304.
    assert.equal((await http(s, '/files/data.bin', { 'if-none-match': etag }, 'HEAD')).status, 304);
  });

  test('the ETag changes when the content does, even at the same size within the same second', async () => {
    // Same size, modification times 1 ms apart inside one second: disk tells the versions
    // apart by the nanosecond mtime, an object store (one-second Last-Modified) only by the
    // object's own ETag, so a backend whose validator ignored it would serve a stale resume.
    const second = Math.floor(Date.now() / 1000) * 1000;
    await fx.seed({ 'changing.bin': 'version-1' }, { mtimeMs: second });
    const a = await http(s, '/files/changing.bin');
    await fx.seed({ 'changing.bin': 'version-2' }, { mtimeMs: second + 1 });
    const b = await http(s, '/files/changing.bin');
    assert.equal(b.body.toString(), 'version-2');
    assert.equal(b.headers['last-modified'], a.headers['last-modified'], 'the same Last-Modified: only the ETag can tell');
    assert.notEqual(a.headers.etag, b.headers.etag);
    // The old tag no longer validates a resumed download: If-Range fails → full 200.
    const resumed = await http(s, '/files/changing.bin', { range: 'bytes=3-', 'if-range': a.headers.etag! });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.body.toString(), 'version-2');
    // Nor a cached copy: If-None-Match with the old tag → 200 with the new bytes.
    assert.equal((await http(s, '/files/changing.bin', { 'if-none-match': a.headers.etag! })).status, 200);
  });

  test('Last-Modified is never in the future (§8.8.2.1)', async () => {
    await fx.seed({ 'future.txt': 'x' }, { mtimeMs: Date.now() + 365 * 24 * 3600_000 });
    const r = await http(s, '/files/future.txt');
    assert.ok(Date.parse(r.headers['last-modified']!) <= Date.parse(r.headers.date!));
  });

  test('?download → Content-Disposition attachment with filename and filename* (RFC 6266/8187)', async () => {
    const name = '季度报告 2026.pdf';
    const r = await http(s, `/files/${encodeURIComponent(name)}?download`);
    assert.equal(r.status, 200);
    const cd = r.headers['content-disposition']!;
    assert.match(cd, /^attachment; filename="[^"?%\\]+"; filename\*=UTF-8''/);
    assert.equal(decodeURIComponent(/filename\*=UTF-8''(.+)$/.exec(cd)![1]!), name);
    const plain = await http(s, '/files/data.bin');
    assert.equal(plain.headers['content-disposition'], undefined);
  });

  test('compression: only compressible types, only without Range, distinct ETag, Vary', async () => {
    const identity = await http(s, '/files/notes.txt');
    const gz = await http(s, '/files/notes.txt', { 'accept-encoding': 'gzip' });
    assert.equal(gz.status, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    assert.equal(identity.headers.vary, 'Accept-Encoding', 'Vary on the identity response too');
    assert.deepEqual(zlib.gunzipSync(gz.body), TEXT);
    assert.ok(gz.body.length < TEXT.length / 3);
    assert.notEqual(gz.headers.etag, identity.headers.etag, 'a different representation has a different strong ETag');
    const br = await http(s, '/files/notes.txt', { 'accept-encoding': 'br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.deepEqual(zlib.brotliDecompressSync(br.body), TEXT);
    if (typeof zlib.zstdDecompressSync === 'function') {
      const zs = await http(s, '/files/notes.txt', { 'accept-encoding': 'gzip, br, zstd' });
      assert.equal(zs.headers['content-encoding'], 'zstd');
      assert.deepEqual(zlib.zstdDecompressSync(zs.body), TEXT);
    }
    // The compressed representation validates itself: If-None-Match with its tag → 304.
    assert.equal((await http(s, '/files/notes.txt', { 'accept-encoding': 'gzip', 'if-none-match': gz.headers.etag! })).status, 304);
    // Never with Range: identity bytes.
    const ranged = await http(s, '/files/notes.txt', { 'accept-encoding': 'gzip', range: 'bytes=0-9' });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.headers['content-encoding'], undefined);
    assert.deepEqual(ranged.body, TEXT.subarray(0, 10));
    // Never for media or archives.
    for (const p of ['/files/photo.jpg', '/files/archive.zip', '/files/data.bin']) {
      const r = await http(s, p, { 'accept-encoding': 'gzip, br' });
      assert.equal(r.headers['content-encoding'], undefined, p);
      assert.equal(r.headers.vary, undefined, p);
    }
    // identity;q=0 but nothing to offer for a jpg: identity anyway (§12.5.3 "disregard").
    assert.equal((await http(s, '/files/photo.jpg', { 'accept-encoding': 'identity;q=0' })).status, 200);
  });

  test('--compress off disables on-the-fly compression only; sidecars are still served', async () => {
    const r = await http(off, '/files/notes.txt', { 'accept-encoding': 'gzip, br' });
    assert.equal(r.headers['content-encoding'], undefined);
    assert.deepEqual(r.body, TEXT);
    const sc = await http(off, '/files/app.js', { 'accept-encoding': 'gzip' });
    assert.equal(sc.headers['content-encoding'], 'gzip');
    assert.deepEqual(zlib.gunzipSync(sc.body), TEXT);
  });

  test('precompressed sidecars: preferred when present, exact length, own ETag, never when stale', async () => {
    const br = await http(s, '/files/app.js', { 'accept-encoding': 'gzip, br' });
    assert.equal(br.headers['content-encoding'], 'br');
    assert.equal(br.headers['content-length'], String(zlib.brotliCompressSync(TEXT).length));
    assert.match(br.headers['content-type']!, /javascript/);
    assert.deepEqual(zlib.brotliDecompressSync(br.body), TEXT);
    const gz = await http(s, '/files/app.js', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['content-length'], String(zlib.gzipSync(TEXT).length));
    const id = await http(s, '/files/app.js');
    assert.equal(new Set([br.headers.etag, gz.headers.etag, id.headers.etag]).size, 3);
    // A sidecar older than its file is never served (it would be the wrong content).
    const stale = await http(s, '/files/stale.css', { 'accept-encoding': 'gzip' });
    assert.deepEqual(zlib.gunzipSync(stale.body), TEXT);
    assert.ok(!stale.body.equals(zlib.gzipSync(Buffer.from('OLD CONTENT'))));
  });

  test('Repr-Digest and Content-Digest (RFC 9530) only when asked, sha-256', async () => {
    const none = await http(s, '/files/data.bin');
    assert.equal(none.headers['repr-digest'], undefined);
    const full = await http(s, '/files/data.bin', { 'want-repr-digest': 'sha-256=1', 'want-content-digest': 'sha-256=1' });
    assert.equal(full.headers['repr-digest'], `sha-256=:${sha256b64(DATA)}:`);
    assert.equal(full.headers['content-digest'], `sha-256=:${sha256b64(DATA)}:`);
    // On a 206 the representation digest is still the whole file; the content digest is the part.
    const part = await http(s, '/files/data.bin', { range: 'bytes=10-19', 'want-repr-digest': 'sha-256=1', 'want-content-digest': 'sha-256=1' });
    assert.equal(part.status, 206);
    assert.equal(part.headers['repr-digest'], `sha-256=:${sha256b64(DATA)}:`);
    assert.equal(part.headers['content-digest'], `sha-256=:${sha256b64(DATA.subarray(10, 20))}:`);
    // Multipart: the content digest covers the multipart body as sent.
    const mp = await http(s, '/files/data.bin', { range: 'bytes=0-0,5-5', 'want-content-digest': 'sha-256=1' });
    assert.equal(mp.headers['content-digest'], `sha-256=:${sha256b64(mp.body)}:`);
    // HEAD: Repr-Digest describes the representation.
    const head = await http(s, '/files/data.bin', { 'want-repr-digest': 'sha-256=1' }, 'HEAD');
    assert.equal(head.headers['repr-digest'], `sha-256=:${sha256b64(DATA)}:`);
    // sha-256=0 refuses it.
    assert.equal((await http(s, '/files/data.bin', { 'want-repr-digest': 'sha-256=0' })).headers['repr-digest'], undefined);
    // A digest request disables on-the-fly compression (the digest of that body is unknown up front).
    const txt = await http(s, '/files/notes.txt', { 'accept-encoding': 'gzip', 'want-repr-digest': 'sha-256=1' });
    assert.equal(txt.headers['content-encoding'], undefined);
    assert.equal(txt.headers['repr-digest'], `sha-256=:${sha256b64(TEXT)}:`);
    // The digest was cached in the meta store under the shared key.
    const cached = await s.server.meta.list('sha256');
    assert.ok(cached.some((e) => e.value === createHash('sha256').update(DATA).digest('hex')));
  });

  test('paths: folders, the root, missing files', async () => {
    for (const p of ['/files/dir', '/files/dir/', '/files/', '/files', '/files/missing.bin', '/files/dir/missing']) {
      const r = await http(s, p);
      assert.equal(r.status, 404, p);
      assert.match(r.headers['content-type']!, /^application\/problem\+json/, p);
    }
    const inner = await http(s, '/files/dir/inner.txt');
    assert.equal(inner.body.toString(), 'inner');
  });

  test('a symlink inside the root is served as its target', { skip: backend.hasSymlinks ? false : `${backend.name} storage has no symlinks` }, async () => {
    const link = await http(s, '/files/link-inside.bin');
    assert.equal(link.status, 200);
    assert.deepEqual(link.body, DATA);
  });

  test('one log line per finished response, and transfer metrics', async () => {
    const before = s.logs.length;
    await http(s, '/files/data.bin', { range: 'bytes=0-0,5-5' });
    await http(s, '/files/data.bin', { 'if-none-match': '*' });
    const lines = s.logs.slice(before).filter((l) => l.event === 'transfer');
    assert.equal(lines.length, 2);
    assert.deepEqual({ status: lines[0]!.status, outcome: lines[0]!.outcome, ranges: lines[0]!.ranges, level: lines[0]!.level }, { status: 206, outcome: 'completed', ranges: 2, level: 30 });
    assert.ok(Number(lines[0]!.bytes) > 2 && typeof lines[0]!.durationMs === 'number');
    assert.equal(lines[1]!.status, 304);
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(metrics, /ferry_transfers_total\{route="\/files\/\*",outcome="completed",status="206"\} \d+/);
    assert.match(metrics, /ferry_transfer_bytes_sent_total\{route="\/files\/\*"\} \d+/);
    assert.match(metrics, /ferry_http_requests_total\{route="\/files\/\*",method="GET",status="304"\} \d+/);
    assert.match(metrics, /ferry_http_requests_total\{route="\/files\/\*",method="GET",status="416"\} \d+/);
  });
}
