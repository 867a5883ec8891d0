/**
 * GET/HEAD /zip/{dir} and /zip?path=…&name=… against a real server (docs/zip.md):
 * headers, determinism, Range/If-Range/416/multipart, conditional requests, selections with
 * duplicate names, the path jail, limits, layouts and the CRC cache, compress=1.
 * Every archive received is checked by unzip, 7-Zip, Python zipfile and bsdtar (file + stdin).
 * The same cases run against every storage backend (test/helpers/backends.ts: local disk and
 * an S3-compatible bucket); ETags are compared by relationship, never as literal values.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { symlink, writeFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import type { ZipTestServer } from '../unit/zip/zip-server-kit.ts';
import { validateArchive, type ExpectedEntry } from '../unit/zip/zip-test-kit.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { backends, type Backend, type BackendFixture } from '../helpers/backends.ts';
import { recordCrc, lookupCrcRecord, type CrcKey } from '../../src/zip/index.ts';
import { parseSafePath } from '../../src/core/index.ts';
import { crc32 } from 'node:zlib';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

interface Resp { status: number; headers: Headers; body: Buffer }
/** A request with the target sent exactly as written (fetch would normalise `%2e%2e`). */
function rawGet(base: string, target: string): Promise<{ status: number; contentType: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}/`, { path: target }, (res) => {
      res.resume();
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] }); });
    });
    req.on('error', reject);
    req.end();
  });
}
async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Resp> {
  const r = await fetch(url, { method, headers });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

/**
 * Fixture bytes, generated once and the same on every backend: the same files with the same
 * modification times make the same archive, whatever store they come from.
 */
const CONTENT = {
  pdf: randomBytes(200_000),
  unicorn: randomBytes(70_000),
  big: randomBytes(5 * 1024 * 1024 + 3),
  beach: randomBytes(30_000),
  good: randomBytes(300_000),
  bad: randomBytes(3 * 1024 * 1024),
} as const;

/** sha-256 of archive bytes (and the expected entries) every reader has already accepted. */
const validated = new Set<string>();

/**
 * Runs every reader (unzip, 7-Zip, Python zipfile, bsdtar from a file and from stdin) over an
 * archive. The readers are deterministic functions of the bytes, so an archive byte-identical
 * to one they already accepted (typically the same selection from another backend) is not read
 * again: a backend that produced different bytes misses this cache and is read in full.
 */
async function validateBody(body: Buffer, expected: readonly ExpectedEntry[], label: string): Promise<void> {
  const key = `${sha(body)} ${JSON.stringify(expected)}`;
  if (validated.has(key)) return;
  const tmp = await makeTempDir('ferry-zip-body-');
  try {
    const file = path.join(tmp.dir, `${label}.zip`);
    await writeFile(file, body);
    await validateArchive(file, expected);
  } finally {
    await tmp.remove();
  }
  validated.add(key);
}

for (const backend of backends) describe(`/zip on ${backend.name} storage`, () => runSuite(backend));

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail('condition not reached within 2 s');
}

function runSuite(backend: Backend): void {
  let fx: BackendFixture;
  let s: ZipTestServer;
  let outside: { dir: string; remove: () => Promise<void> };
  const files = new Map<string, Buffer>();
  const put = async (rel: string, content: Buffer, mtimeMs = Date.UTC(2025, 4, 1, 12, 0, 0)): Promise<void> => {
    await fx.seed({ [rel]: content }, { mtimeMs });
    files.set(rel, content);
  };

  before(async () => {
    outside = await makeTempDir('ferry-zip-outside-');
    fx = await backend.start();
    await put('docs/季度报告 2026.pdf', CONTENT.pdf);
    await put('docs/日本語/メモ.txt', Buffer.from('メモ\n'.repeat(1000)));
    await put('docs/emoji/🦄 unicorn.bin', CONTENT.unicorn);
    await put('docs/empty.txt', Buffer.alloc(0));
    await fx.seedFolder('docs/empty-folder', { mtimeMs: Date.UTC(2025, 0, 1) });
    await put('docs/.secret', Buffer.from('hidden'));
    await put('docs/big.bin', CONTENT.big);
    await put('a/report.pdf', Buffer.from('report from a'));
    await put('b/report.pdf', Buffer.from('report from b'));
    await put('b/Report.PDF', Buffer.from('shouting report from b'));
    await put('photos/2024/beach.jpg', CONTENT.beach);
    // s3rver leaves a folder that holds only folders out of its parent's listing
    // (docs/storage.md, "The S3 test server"): a hidden file, which Ferry never shows, keeps
    // photos/ listed without changing any archive.
    await put('photos/.keep', Buffer.alloc(0));
    await writeFile(path.join(outside.dir, 'passwd'), 'outside the root');
    if (fx.root !== undefined && backend.hasSymlinks) await symlink(path.join(outside.dir, 'passwd'), path.join(fx.root, 'docs/escape-link'));
    s = await fx.startServer();
    assert.equal(s.server.config.storage, backend.name, 'the suite runs against the backend it names');
  });
  after(async () => { await s?.close(); await fx?.cleanup(); await outside?.remove(); });

  const docsExpected = (): ExpectedEntry[] => {
    // Walk order: names sorted by code unit at each level, depth first; folders with content implied.
    const rels = ['docs/big.bin', 'docs/emoji/🦄 unicorn.bin', 'docs/empty-folder/', 'docs/empty.txt', 'docs/季度报告 2026.pdf', 'docs/日本語/メモ.txt'];
    return rels.map((r) => (r.endsWith('/') ? { name: r, size: 0 } : { name: r, size: files.get(r)!.length, sha256: sha(files.get(r)!) }));
  };

  test('GET /zip/docs: a valid archive of the folder, hidden names and links out of the root left out; exact headers', async () => {
    const r = await get(`${s.url}/zip/docs`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'application/zip');
    assert.equal(Number(r.headers.get('content-length')), r.body.length);
    assert.equal(r.headers.get('accept-ranges'), 'bytes');
    assert.match(r.headers.get('etag') ?? '', /^"z1-c-[A-Za-z0-9_-]+"$/, 'strong ETag, crc-first layout (small selection)');
    assert.equal(r.headers.get('content-disposition'), `attachment; filename="docs.zip"; filename*=UTF-8''docs.zip`);
    assert.equal(r.headers.get('last-modified'), null, 'no date validator: adding an older file would not change it');
    await validateBody(r.body, docsExpected(), 'docs');
    const again = await get(`${s.url}/zip/docs`);
    assert.ok(again.body.equals(r.body), 'same selection, same bytes');
    assert.equal(again.headers.get('etag'), r.headers.get('etag'));
    const log = s.logs.find((l) => l.event === 'zip' && l.status === 200);
    assert.ok(log !== undefined && log.outcome === 'completed' && log.entries === 6, 'one log line per archive');
  });

  test('HEAD gives the GET headers without a body', async () => {
    const g = await get(`${s.url}/zip/docs`);
    const h = await get(`${s.url}/zip/docs`, {}, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.body.length, 0);
    for (const k of ['content-length', 'etag', 'content-type', 'accept-ranges', 'content-disposition']) assert.equal(h.headers.get(k), g.headers.get(k), k);
  });

  test('Range: the first 100 bytes, a cut-and-resume with If-Range, multi-range, 416 past the end (RFC 9110 §14)', async () => {
    const full = await get(`${s.url}/zip/docs`);
    const etag = full.headers.get('etag')!;
    const head = await get(`${s.url}/zip/docs`, { range: 'bytes=0-99' });
    assert.equal(head.status, 206);
    assert.equal(head.headers.get('content-range'), `bytes 0-99/${full.body.length}`);
    assert.ok(head.body.equals(full.body.subarray(0, 100)));
    for (const cut of [1, 37, 4096, Math.floor(full.body.length / 3), full.body.length - 30, full.body.length - 1]) {
      const rest = await get(`${s.url}/zip/docs`, { range: `bytes=${cut}-`, 'if-range': etag });
      assert.equal(rest.status, 206, `cut at ${cut}`);
      assert.ok(Buffer.concat([full.body.subarray(0, cut), rest.body]).equals(full.body), `resume at ${cut} is byte-identical`);
    }
    const suffix = await get(`${s.url}/zip/docs`, { range: 'bytes=-22' });
    assert.ok(suffix.body.equals(full.body.subarray(-22)), 'suffix range = end of central directory record');
    const multi = await get(`${s.url}/zip/docs`, { range: 'bytes=0-9,1000-1009' });
    assert.equal(multi.status, 206);
    const ct = multi.headers.get('content-type')!;
    assert.match(ct, /^multipart\/byteranges; boundary=/);
    const text = multi.body.toString('latin1');
    assert.ok(text.includes(`Content-Range: bytes 0-9/${full.body.length}`) && text.includes(`Content-Range: bytes 1000-1009/${full.body.length}`));
    assert.ok(text.includes(full.body.subarray(1000, 1010).toString('latin1')));
    assert.equal(Number(multi.headers.get('content-length')), multi.body.length);
    const past = await get(`${s.url}/zip/docs`, { range: `bytes=${full.body.length}-` });
    assert.equal(past.status, 416);
    assert.equal(past.headers.get('content-range'), `bytes */${full.body.length}`);
    assert.match(past.headers.get('content-type') ?? '', /application\/problem\+json/);
  });

  test('conditional requests: If-None-Match → 304, If-Match mismatch → 412, stale If-Range → 200 with the new archive', async () => {
    const full = await get(`${s.url}/zip/photos`);
    const etag = full.headers.get('etag')!;
    const nm = await get(`${s.url}/zip/photos`, { 'if-none-match': etag });
    assert.equal(nm.status, 304);
    assert.equal(nm.headers.get('etag'), etag);
    const im = await get(`${s.url}/zip/photos`, { 'if-match': '"other"' });
    assert.equal(im.status, 412);
    const byDate = await get(`${s.url}/zip/photos`, { range: 'bytes=100-', 'if-range': new Date().toUTCString() });
    assert.equal(byDate.status, 200, 'If-Range with a date never validates an archive');
    // The folder changes: the old ETag no longer matches; a resume must restart from byte 0.
    // The file is replaced by one of the same size, 1 ms later (the same second): on disk the
    // nanosecond mtime changes, in a bucket only the object's ETag does.
    await put('photos/2024/beach.jpg', Buffer.from(CONTENT.beach).reverse(), Date.UTC(2025, 4, 1, 12, 0, 0) + 1);
    const stale = await get(`${s.url}/zip/photos`, { range: 'bytes=100-', 'if-range': etag });
    assert.equal(stale.status, 200, 'If-Range with an old ETag: the whole new archive');
    assert.notEqual(stale.headers.get('etag'), etag);
    assert.equal(Number(stale.headers.get('content-length')), stale.body.length);
    const content = files.get('photos/2024/beach.jpg')!;
    await validateBody(stale.body, [{ name: 'photos/2024/beach.jpg', size: content.length, sha256: sha(content) }], 'photos');
  });

  test('selection: paths from several folders, duplicate names numbered, ?name= for the download', async () => {
    const q = new URLSearchParams();
    for (const p of ['a/report.pdf', 'b/report.pdf', 'b/Report.PDF', 'photos', 'a/report.pdf']) q.append('path', p);
    q.set('name', '选集 2026');
    const r = await get(`${s.url}/zip?${q}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-disposition'), `attachment; filename="_ 2026.zip"; filename*=UTF-8''%E9%80%89%E9%9B%86%202026.zip`);
    const photo = files.get('photos/2024/beach.jpg')!;
    await validateBody(r.body, [
      { name: 'report.pdf', size: 13, sha256: sha(files.get('a/report.pdf')!) },
      { name: 'report (2).pdf', size: 13, sha256: sha(files.get('b/report.pdf')!) },
      { name: 'Report (3).PDF', size: 22, sha256: sha(files.get('b/Report.PDF')!) },
      { name: 'photos/2024/beach.jpg', size: photo.length, sha256: sha(photo) },
    ], 'selection');
    // A selection resumes like a folder: cut anywhere, the rest by If-Range, byte-identical.
    const etag = r.headers.get('etag')!;
    for (const cut of [1, 200, Math.floor(r.body.length / 2), r.body.length - 1]) {
      const rest = await get(`${s.url}/zip?${q}`, { range: `bytes=${cut}-`, 'if-range': etag });
      assert.equal(rest.status, 206, `cut at ${cut}`);
      assert.ok(Buffer.concat([r.body.subarray(0, cut), rest.body]).equals(r.body), `resume at ${cut} is byte-identical`);
    }
  });

  test('path jail: dot-segments and encoded separators 400, missing 404, hidden and escaping links 404', async () => {
    const cases: Array<[string, number]> = [
      ['/zip/docs/..%2F..%2Fetc', 400],
      ['/zip/docs/%2e%2e/x', 400],
      ['/zip?path=../etc', 400],
      ['/zip?path=a/../../etc', 400],
      ['/zip?path=a%5Cb', 400],
      ['/zip?path=', 400],
      ['/zip?path=/', 400],
      ['/zip/missing', 404],
      ['/zip?path=missing.txt', 404],
      ['/zip?path=docs/.secret', 404],
      ['/zip/docs/.secret', 404],
      ['/zip?path=docs/escape-link', 404],
      ['/zip/docs?path=a', 400],
    ];
    for (const [url, status] of cases) {
      const r = await rawGet(s.url, url);
      assert.equal(r.status, status, url);
      assert.match(r.contentType ?? '', /application\/problem\+json/, url);
    }
    const post = await fetch(`${s.url}/zip/docs`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get('allow'), 'GET, HEAD');
  });

  test('limits: --zip-max-entries and --zip-max-bytes answer 413 problem+json naming the limit, before any byte', async (t) => {
    const limited = await fx.startServer({ zipMaxEntries: 3, zipMaxBytes: '1M' });
    t.after(() => limited.close());
    const many = await get(`${limited.url}/zip?path=a/report.pdf&path=b/report.pdf&path=b/Report.PDF&path=docs/empty.txt`);
    assert.equal(many.status, 413);
    const p1 = JSON.parse(many.body.toString()) as { code: string; detail: string; limit: number };
    assert.equal(p1.code, 'FERRY_ERR_ZIP_TOO_MANY_ENTRIES');
    assert.match(p1.detail, /--zip-max-entries/);
    assert.equal(p1.limit, 3);
    const big = await get(`${limited.url}/zip?path=docs/big.bin`);
    assert.equal(big.status, 413);
    const p2 = JSON.parse(big.body.toString()) as { code: string; detail: string };
    assert.equal(p2.code, 'FERRY_ERR_ZIP_TOO_LARGE');
    assert.match(p2.detail, /--zip-max-bytes/);
  });

  test('layout: a selection bigger than --zip-crc-prefetch streams at once with data descriptors, stays that way (resume-safe), and fills the CRC cache', async (t) => {
    const tiny = await fx.startServer({ zipCrcPrefetch: '1k' });
    t.after(() => tiny.close());
    const first = await get(`${tiny.url}/zip/docs`);
    assert.match(first.headers.get('etag')!, /^"z1-d-/, 'descriptor layout');
    await validateBody(first.body, docsExpected(), 'docs-descriptor');
    // The CRCs are now cached, but the same selection keeps its layout: a curl -C - without
    // If-Range must get the same bytes.
    const second = await get(`${tiny.url}/zip/docs`);
    assert.ok(second.body.equals(first.body));
    const resumed = await get(`${tiny.url}/zip/docs`, { range: `bytes=${first.body.length - 5000}-` });
    assert.ok(resumed.body.equals(first.body.subarray(first.body.length - 5000)));
    // Another selection over the same (now cached) files is crc-first without reading ahead.
    const other = await get(`${tiny.url}/zip?path=docs/big.bin&path=docs/empty.txt`);
    assert.match(other.headers.get('etag')!, /^"z1-c-/);
    const log = tiny.logs.findLast((l) => l.event === 'zip');
    assert.equal(log?.crcComputedBytes, 0, 'no member read twice: the CRCs came from the cache');
  });

  test('?compress=1: deflated where it pays, chunked, Accept-Ranges: none, Range ignored', async () => {
    const r = await get(`${s.url}/zip/docs?compress=1`, { range: 'bytes=0-99' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-length'), null);
    assert.equal(r.headers.get('accept-ranges'), 'none');
    assert.match(r.headers.get('etag') ?? '', /^W\//);
    await validateBody(r.body, docsExpected(), 'docs-deflate');
    const stored = await get(`${s.url}/zip/docs`);
    assert.ok(r.body.length < stored.body.length);
  });

  test('the root folder: /zip/ archives everything visible, without a top-level folder', async () => {
    const r = await get(`${s.url}/zip/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-disposition') ?? '', /filename="archive.zip"/);
    const names = new Set<string>();
    const tmp = await makeTempDir();
    try {
      await writeFile(path.join(tmp.dir, 'root.zip'), r.body);
      const { run } = await import('../unit/zip/zip-test-kit.ts');
      const out = await run('bsdtar', ['-tf', path.join(tmp.dir, 'root.zip')]);
      for (const l of out.stdout.split('\n')) if (l !== '') names.add(l);
    } finally {
      await tmp.remove();
    }
    assert.ok(names.has('a/report.pdf') && names.has('docs/empty-folder/') && names.has('photos/2024/beach.jpg'));
    assert.ok(![...names].some((n) => n.includes('.secret') || n.includes('escape-link') || n.startsWith('/') || n.includes('..')));
  });

  test('CRCs recorded by others (uploads) are checked the first time a zip streams the file: a wrong one cuts the archive and is dropped, a right one becomes verified', async () => {
    // The key the zip route computes: the backend's own stat (inode and ns mtime on disk, the
    // ETag's hash and S3's one-second Last-Modified in a bucket).
    const putKeyed = async (rel: string, content: Buffer): Promise<CrcKey> => {
      await put(rel, content);
      const st = await s.server.storage.stat(parseSafePath(rel));
      return { path: rel, size: content.length, mtimeNs: st.mtimeNs, ino: st.ino };
    };
    const good = CONTENT.good;
    const goodKey = await putKeyed('recorded/good.bin', good);
    await recordCrc(s.server.meta, goodKey, crc32(good));
    const r = await get(`${s.url}/zip?path=recorded/good.bin`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('etag')!, /^"z1-c-/, 'cached CRC: crc-first without reading ahead');
    await validateBody(r.body, [{ name: 'good.bin', size: good.length, sha256: sha(good) }], 'recorded-good');
    assert.deepEqual(await lookupCrcRecord(s.server.meta, goodKey), { crc: crc32(good), verified: true });

    // A wrong recorded CRC (a bug elsewhere, or content changed behind an unchanged mtime).
    const bad = CONTENT.bad;
    const badKey = await putKeyed('recorded/bad.bin', bad);
    await recordCrc(s.server.meta, badKey, (crc32(bad) ^ 1) >>> 0);
    const res = await fetch(`${s.url}/zip?path=recorded/bad.bin`);
    assert.equal(res.status, 200);
    await assert.rejects(res.arrayBuffer(), 'the connection is cut: a truncated download, not a wrong archive');
    await waitUntil(() => lookupCrcRecord(s.server.meta, badKey).then((v) => v === undefined));
    const again = await get(`${s.url}/zip?path=recorded/bad.bin`);
    assert.equal(again.status, 200);
    await validateBody(again.body, [{ name: 'bad.bin', size: bad.length, sha256: sha(bad) }], 'recorded-bad-retry');
  });
}
