/** The Storage conformance suite: the path jail, same-handle reads, listing and walking. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, symlink, rename, utimes, readdir } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createLocalStorage } from '../../src/storage/index.ts';
import { parseSafePath, FerryError } from '../../src/core/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

async function fixture(t: { after: (fn: () => Promise<void>) => void }) {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const root = path.join(tmp.dir, 'root');
  await mkdir(path.join(root, 'docs', 'empty'), { recursive: true });
  await mkdir(path.join(root, '.hidden-dir'), { recursive: true });
  await writeFile(path.join(root, 'hello.txt'), 'hello world');
  await writeFile(path.join(root, 'docs', '季度报告 2026.pdf'), 'pdf');
  await writeFile(path.join(root, '.secret'), 'secret');
  await writeFile(path.join(root, '.hidden-dir', 'x.txt'), 'x');
  await writeFile(path.join(tmp.dir, 'outside.txt'), 'outside');
  await symlink(path.join(tmp.dir, 'outside.txt'), path.join(root, 'link-out'));
  await symlink(path.join(root, 'hello.txt'), path.join(root, 'link-in'));
  await symlink(path.join(root, '.secret'), path.join(root, 'link-to-hidden'));
  await symlink(tmp.dir, path.join(root, 'dir-out'));
  return { root, tmp: tmp.dir };
}

const p = (s: string) => parseSafePath(s);
const isNotFound = (err: unknown) => err instanceof FerryError && err.statusCode === 404;

test('path jail: symlinks out of the root and hidden names are 404; inside links follow the setting', async (t) => {
  const { root } = await fixture(t);
  const inside = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  await assert.rejects(inside.stat(p('link-out')), isNotFound);
  await assert.rejects(inside.open(p('link-out')), isNotFound);
  await assert.rejects(inside.open(p('dir-out/outside.txt')), isNotFound);
  await assert.rejects(inside.open(p('.secret')), isNotFound);
  await assert.rejects(inside.open(p('.hidden-dir/x.txt')), isNotFound);
  await assert.rejects(inside.open(p('link-to-hidden')), isNotFound, 'a link to a hidden name is hidden too');
  await assert.rejects(inside.open(p('nope.txt')), isNotFound);
  await assert.rejects(inside.open(p('hello.txt/child')), isNotFound);
  assert.equal((await inside.stat(p('link-in'))).size, 11);

  const never = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'never' });
  await assert.rejects(never.open(p('link-in')), isNotFound);
  assert.equal((await never.stat(p('hello.txt'))).size, 11);

  const dots = await createLocalStorage({ root, dotfiles: 'allow', followSymlinks: 'inside' });
  assert.equal((await dots.stat(p('.secret'))).size, 6);
  await assert.rejects(dots.open(p('link-out')), isNotFound, 'dotfiles allow does not open the jail');
});

test('open: stat and bytes come from one handle; ranges; a folder is refused', async (t) => {
  const { root } = await fixture(t);
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  const f = await storage.open(p('hello.txt'));
  t.after(() => f.close());
  assert.equal(f.stat.size, 11);
  assert.equal(await text(f.openRead()), 'hello world');
  assert.equal(await text(f.openRead({ start: 6, end: 10 })), 'world');
  assert.equal(await text(f.openRead({ start: 0, end: 0 })), 'h');
  // Replace the file by rename: the open handle still reads the old bytes, never a mix.
  await writeFile(path.join(root, 'new.txt'), 'HELLO WORLD');
  await rename(path.join(root, 'new.txt'), path.join(root, 'hello.txt'));
  assert.equal(await text(f.openRead()), 'hello world');
  await f.close();
  await f.close(); // idempotent
  await assert.rejects(storage.open(p('docs')), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_PATH_IS_DIRECTORY');
});

test('list: sorted, hidden names omitted, paged with after, links out of the root omitted', async (t) => {
  const { root } = await fixture(t);
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  const all = await storage.list(p(''), { limit: 100 });
  assert.deepEqual(all.entries.map((e) => e.name), ['docs', 'hello.txt', 'link-in']);
  assert.equal(all.more, false);
  const page1 = await storage.list(p(''), { limit: 2 });
  assert.deepEqual(page1.entries.map((e) => e.name), ['docs', 'hello.txt']);
  assert.equal(page1.more, true);
  const page2 = await storage.list(p(''), { limit: 2, after: 'hello.txt' });
  assert.deepEqual(page2.entries.map((e) => e.name), ['link-in']);
  assert.equal(page2.more, false);
  await assert.rejects(storage.list(p('hello.txt'), { limit: 1 }), (err: unknown) => err instanceof FerryError && err.statusCode === 404);
});

test('list pages through 20,000 names exactly once each, in order (the 100,000-file case runs over HTTP in list-large)', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const dir = path.join(tmp.dir, 'big');
  await mkdir(dir);
  const N = 20_000;
  // touch(1) creates 100k files in about a second; 100k fs.writeFile calls take ten.
  execFileSync('bash', ['-c', `cd "$1" && seq -f 'f%06g' 0 ${N - 1} | xargs touch`, '_', dir]);
  const storage = await createLocalStorage({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside' });
  let after: string | undefined;
  let count = 0;
  let prev = '';
  for (;;) {
    const page = await storage.list(p('big'), { limit: 3000, ...(after === undefined ? {} : { after }) });
    for (const e of page.entries) {
      assert.ok(e.name > prev);
      prev = e.name;
      count++;
    }
    if (!page.more) break;
    after = page.entries.at(-1)!.name;
  }
  assert.equal(count, N);
});

test('walk: depth first, sorted, empty folders flagged, deterministic', async (t) => {
  const { root } = await fixture(t);
  await utimes(path.join(root, 'hello.txt'), 1_000_000, 1_000_000);
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  const seen: string[] = [];
  for await (const e of storage.walk(p(''))) seen.push(`${e.type === 'directory' ? 'd' : 'f'}:${e.relative}${e.empty === true ? ' (empty)' : ''}`);
  assert.deepEqual(seen, ['d:docs', 'd:docs/empty (empty)', 'f:docs/季度报告 2026.pdf', 'f:hello.txt', 'f:link-in']);
});

test('walk: a symlink back to an ancestor folder is not followed (no endless archive)', async (t) => {
  const { root } = await fixture(t);
  // Without the guard this walk never ends: docs/loop → docs → docs/loop → …
  await symlink(path.join(root, 'docs'), path.join(root, 'docs', 'loop'));
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  const seen: string[] = [];
  for await (const e of storage.walk(p('docs'))) {
    seen.push(e.relative);
    assert.ok(seen.length < 100, 'walk did not terminate');
  }
  assert.deepEqual(seen, ['empty', '季度报告 2026.pdf']);
});

test('open-file reuse: concurrent readers share one handle, the last close releases it, a new window sees a replaced file', async (t) => {
  const { root } = await fixture(t);
  const fds = async () => (await readdir('/proc/self/fd')).length;
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside', openFileReuseMs: 200 });
  const base = await fds();
  const a = await storage.open(p('hello.txt'));
  const b = await storage.open(p('hello.txt'));
  assert.equal(await fds(), base + 1, 'two concurrent readers, one descriptor');
  assert.equal(await text(b.openRead({ start: 0, end: 4 })), 'hello');
  await a.close();
  await a.close(); // idempotent: must not release b's share
  assert.equal(await text(b.openRead({ start: 6, end: 10 })), 'world');
  await b.close();
  assert.equal(await fds(), base, 'the last close releases the descriptor at once');

  // Replaced while a reader holds the shared handle: inside the window the old file is
  // served (one consistent version); after the window a new open sees the new file.
  const c = await storage.open(p('hello.txt'));
  await writeFile(path.join(root, 'new.txt'), 'HELLO WORLD');
  await rename(path.join(root, 'new.txt'), path.join(root, 'hello.txt'));
  const d = await storage.open(p('hello.txt'));
  assert.equal(await text(d.openRead()), 'hello world');
  await d.close();
  await new Promise((r) => setTimeout(r, 250)); // let the 200 ms window pass: time is the behaviour under test
  const e = await storage.open(p('hello.txt'));
  assert.equal(await text(e.openRead()), 'HELLO WORLD');
  await e.close();
  await c.close();
  assert.equal(await fds(), base);
});

test('special files: a FIFO in the root is 404 at once and not listed (the old open() blocked a thread forever)', { timeout: 10_000 }, async (t) => {
  const { root } = await fixture(t);
  execFileSync('mkfifo', [path.join(root, 'pipe')]);
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  await assert.rejects(storage.open(p('pipe')), isNotFound);
  await assert.rejects(storage.stat(p('pipe')), isNotFound);
  const names = (await storage.list(p(''), { limit: 100 })).entries.map((e) => e.name);
  assert.ok(!names.includes('pipe'), `listed: ${names.join(', ')}`);
});

test('openFolder: creates missing levels inside the root, refuses links out, files on the way and hidden names', async (t) => {
  const { root, tmp } = await fixture(t);
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside' });
  const made = await storage.openFolder(p('docs/new/deeper'), { create: true });
  t.after(() => made.close());
  assert.equal(made.relative, 'docs/new/deeper');
  assert.equal(made.real, path.join(root, 'docs', 'new', 'deeper'));
  await writeFile(made.entry('x.txt'), 'through the descriptor');
  assert.deepEqual(await readdir(path.join(root, 'docs', 'new', 'deeper')), ['x.txt']);
  await made.sync();
  await made.close();
  await made.close(); // idempotent

  await assert.rejects(storage.openFolder(p('dir-out/made-outside'), { create: true }), isNotFound);
  assert.ok(!(await readdir(tmp)).includes('made-outside'), 'nothing created outside the root');
  await assert.rejects(storage.openFolder(p('hello.txt/x'), { create: true }), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_PATH_NOT_DIRECTORY');
  await assert.rejects(storage.openFolder(p('.hidden-dir'), { create: false }), isNotFound);
  await assert.rejects(storage.openFolder(p('missing'), { create: false }), isNotFound);
  const aborted = AbortSignal.abort();
  await assert.rejects(storage.openFolder(p('a/b/c'), { create: true, signal: aborted }), (err: unknown) => (err as Error).name === 'AbortError');
});

test('walk: a 600-level tree is walked in full (iterative; the nested generators were quadratic)', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const depth = 600;
  // One mkdir -p of "d/d/…/d": 1,200 bytes of path, well under PATH_MAX.
  const leaf = path.join(tmp.dir, 'top', ...Array.from({ length: depth }, () => 'd'));
  await mkdir(leaf, { recursive: true });
  await writeFile(path.join(leaf, 'bottom.txt'), 'deep');
  const storage = await createLocalStorage({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside' });
  let dirs = 0;
  let files = 0;
  let last = '';
  for await (const e of storage.walk(p('top'))) {
    if (e.type === 'directory') dirs++; else { files++; last = e.relative; }
  }
  assert.equal(dirs, depth);
  assert.equal(files, 1);
  assert.equal(last.split('/').length, depth + 1);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(async () => { for await (const e of storage.walk(p('top'), { signal: ac.signal })) void e; }, (err: unknown) => (err as Error).name === 'AbortError');
});
