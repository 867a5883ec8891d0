/** GET /api/list/{dir}: shape, order, paging, hidden names, errors (SPEC §2). */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/start-server.ts';

interface Listing { entries: Array<{ name: string; type: string; size: number; mtime: string; etag: string | null }>; next: string | null }

async function list(s: TestServer, p: string): Promise<{ status: number; body: unknown; headers: Headers }> {
  const r = await fetch(`${s.url}${p}`);
  return { status: r.status, body: await r.json(), headers: r.headers };
}

let s: TestServer;
let allow: TestServer;

before(async () => {
  s = await startServer();
  allow = await startServer({ options: { dotfiles: 'allow' } });
  for (const srv of [s, allow]) {
    const r = srv.root;
    await mkdir(path.join(r, 'docs', 'sub'), { recursive: true });
    await writeFile(path.join(r, 'docs', 'b.txt'), 'bb');
    await writeFile(path.join(r, 'docs', 'a.txt'), 'a');
    await writeFile(path.join(r, 'docs', 'Z.txt'), 'zzz');
    await writeFile(path.join(r, 'docs', '季度.pdf'), 'pdf');
    await writeFile(path.join(r, 'docs', '.hidden'), 'h');
    await mkdir(path.join(r, 'docs', '.private'));
    await writeFile(path.join(r, 'top.bin'), 'top');
    await symlink('/etc', path.join(r, 'docs', 'etc-link'));
  }
});
after(async () => { await s?.close(); await allow?.close(); });

test('entries: sorted by name (code units), typed, with size, mtime and the GET ETag', async () => {
  const r = await list(s, '/api/list/docs');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type')!, /^application\/json/);
  const body = r.body as Listing;
  assert.deepEqual(body.entries.map((e) => e.name), ['Z.txt', 'a.txt', 'b.txt', 'sub', '季度.pdf']);
  assert.equal(body.next, null);
  const a = body.entries.find((e) => e.name === 'a.txt')!;
  assert.equal(a.type, 'file');
  assert.equal(a.size, 1);
  assert.ok(Math.abs(Date.parse(a.mtime) - Date.now()) < 60_000);
  const get = await fetch(`${s.url}/files/docs/a.txt`);
  assert.equal(a.etag, get.headers.get('etag'));
  const sub = body.entries.find((e) => e.name === 'sub')!;
  assert.deepEqual({ type: sub.type, size: sub.size, etag: sub.etag }, { type: 'directory', size: 0, etag: null });
});

test('hidden names are not listed; symlinks out of the root are not listed', async () => {
  const names = ((await list(s, '/api/list/docs')).body as Listing).entries.map((e) => e.name);
  assert.ok(!names.includes('.hidden') && !names.includes('.private'));
  assert.ok(!names.includes('etc-link'));
  const allowed = ((await list(allow, '/api/list/docs')).body as Listing).entries.map((e) => e.name);
  assert.ok(allowed.includes('.hidden') && allowed.includes('.private'));
});

test('the root, with or without a trailing slash', async () => {
  for (const p of ['/api/list', '/api/list/']) {
    const body = (await list(s, p)).body as Listing;
    assert.deepEqual(body.entries.map((e) => e.name), ['docs', 'top.bin'], p);
  }
});

test('cursor paging returns every name once, in order', async () => {
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = cursor === null ? '?limit=2' : `?limit=2&cursor=${cursor}`;
    const body = (await list(s, `/api/list/docs${q}`)).body as Listing;
    assert.ok(body.entries.length <= 2);
    seen.push(...body.entries.map((e) => e.name));
    cursor = body.next;
    pages++;
  } while (cursor !== null && pages < 10);
  assert.deepEqual(seen, ['Z.txt', 'a.txt', 'b.txt', 'sub', '季度.pdf']);
  assert.equal(pages, 3);
});

test('paging stays correct while files come and go between pages', async () => {
  const dir = path.join(s.root, 'moving');
  await mkdir(dir);
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) await writeFile(path.join(dir, n), n);
  const first = (await list(s, '/api/list/moving?limit=3')).body as Listing;
  assert.deepEqual(first.entries.map((e) => e.name), ['a', 'b', 'c']);
  await rm(path.join(dir, 'a')); // before the cursor: no shift
  await rm(path.join(dir, 'e')); // after the cursor: simply gone
  await writeFile(path.join(dir, 'bb'), 'x'); // before the cursor: not repeated
  await writeFile(path.join(dir, 'g'), 'x'); // after: appears
  const second = (await list(s, `/api/list/moving?limit=3&cursor=${first.next}`)).body as Listing;
  assert.deepEqual(second.entries.map((e) => e.name), ['d', 'f', 'g']);
  assert.equal(second.next, null);
});

test('errors: bad limit, bad cursor, not a folder, missing, hidden, encoded separators', async () => {
  const rows: Array<[string, number, string]> = [
    ['/api/list/docs?limit=0', 400, 'FERRY_ERR_LIST_LIMIT_INVALID'],
    ['/api/list/docs?limit=10001', 400, 'FERRY_ERR_LIST_LIMIT_INVALID'],
    ['/api/list/docs?limit=ten', 400, 'FERRY_ERR_LIST_LIMIT_INVALID'],
    ['/api/list/docs?cursor=!!', 400, 'FERRY_ERR_LIST_CURSOR_INVALID'],
    ['/api/list/docs?cursor=_w', 400, 'FERRY_ERR_LIST_CURSOR_INVALID'],
    ['/api/list/top.bin', 404, 'FERRY_ERR_PATH_NOT_DIRECTORY'],
    ['/api/list/nope', 404, 'FERRY_ERR_PATH_NOT_FOUND'],
    ['/api/list/docs/.private', 404, 'FERRY_ERR_PATH_NOT_FOUND'],
    ['/api/list/docs%2fsub', 400, 'FERRY_ERR_PATH_INVALID'],
  ];
  for (const [p, status, code] of rows) {
    const r = await list(s, p);
    assert.equal(r.status, status, p);
    assert.equal((r.body as { code: string }).code, code, p);
    assert.match(r.headers.get('content-type')!, /^application\/problem\+json/, p);
  }
  // The limit bounds: 1 and 10000 are fine.
  assert.equal((await list(s, '/api/list/docs?limit=1')).status, 200);
  assert.equal((await list(s, '/api/list/docs?limit=10000')).status, 200);
});
