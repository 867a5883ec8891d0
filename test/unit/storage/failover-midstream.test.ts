/**
 * A primary that dies mid-read: decideSameVersion's table, and FailoverStorage's handle over
 * two real LocalStorage folders whose primary handle starts failing (as an unreachable store
 * does) once a given number of bytes has been read — both by stream (`openRead`, the S3 path)
 * and by positional reads (`readAt`, the local-disk path). On the old code the handle only
 * counted the failure and the read failed: there was no continuation.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { FerryError } from '../../../src/core/errors.ts';
import { parseDecodedPath } from '../../../src/core/safe-path.ts';
import { FailoverStorage, LocalStorage, decideSameVersion, type FileHandleReader, type FileStat, type MidStreamFailover, type Storage } from '../../../src/storage/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

const file = (over: Partial<FileStat>): FileStat => ({ type: 'file', size: 10, mtimeMs: 1_700_000_000_000, mtimeNs: 1_700_000_000_000_000_000n, ino: 1n, dev: 1n, mode: 0o644, ...over });

test('decideSameVersion: proof or cut', () => {
  const s3 = (over: Partial<FileStat>): FileStat => file({ ino: 7n, dev: 0n, mode: 0, etag: 'abc', ...over });
  const cases: [string, FileStat, FileStat, boolean | RegExp][] = [
    ['two buckets, same size and ETag', s3({}), s3({ mtimeMs: 5 }), true],
    ['two buckets, ETags differ', s3({}), s3({ etag: 'abd' }), /ETags differ/],
    ['sizes differ', s3({}), s3({ size: 11 }), /sizes differ/],
    ['a folder', file({ type: 'directory' }), file({}), /not a file/],
    ['bucket vs mirror: same second, the mirror mtime a whole second', s3({ mtimeMs: 1_700_000_000_000 }), file({ mtimeNs: 1_700_000_000_000_000_000n }), true],
    ['bucket vs mirror, either way round', file({ mtimeNs: 1_700_000_000_000_000_000n }), s3({ mtimeMs: 1_700_000_000_000 }), true],
    ['bucket vs mirror: a mirror merely written in the same second (a fraction)', s3({}), file({ mtimeMs: 1_700_000_000_123, mtimeNs: 1_700_000_000_123_456_789n }), /modification times differ/],
    ['bucket vs mirror: another second', s3({}), file({ mtimeMs: 1_700_000_001_000, mtimeNs: 1_700_000_001_000_000_000n }), /modification times differ/],
    ['two disks, same ns', file({ mtimeNs: 1_700_000_000_123_456_789n }), file({ mtimeNs: 1_700_000_000_123_456_789n, ino: 9n }), true],
    ['two disks, 1 ns apart', file({ mtimeNs: 1_700_000_000_123_456_789n }), file({ mtimeNs: 1_700_000_000_123_456_790n }), /modification times differ/],
    ['no mtime', s3({ mtimeMs: 0 }), file({ mtimeMs: 0, mtimeNs: 0n }), /no modification time/],
  ];
  for (const [name, a, b, want] of cases) {
    const got = decideSameVersion(a, b);
    if (want === true) assert.equal(got.same, true, name);
    else assert.ok(!got.same && want instanceof RegExp && want.test(got.reason), `${name}: ${JSON.stringify(got)}`);
  }
});

/** Fails like an unreachable store once `budget` bytes have been read through it (all handles together). */
function failingAfter(inner: LocalStorage, budget: { left: number }, positional: boolean): Storage {
  const unavailable = (): FerryError => new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'injected: primary died');
  const wrap = (h: FileHandleReader): FileHandleReader => ({
    get stat() { return h.stat; },
    openRead(range, options) {
      const src = h.openRead(range, options);
      return Readable.from((async function* () {
        for await (const chunk of src as AsyncIterable<Buffer>) {
          if (budget.left <= 0) { src.destroy(); throw unavailable(); }
          const take = Math.min(chunk.length, budget.left);
          budget.left -= take;
          yield chunk.subarray(0, take);
          if (take < chunk.length) { src.destroy(); throw unavailable(); }
        }
      })());
    },
    ...(positional ? {
      async readAt(buf: Uint8Array, pos: number): Promise<number> {
        if (budget.left <= 0) throw unavailable();
        const n = await h.readAt!(buf.subarray(0, Math.min(buf.length, budget.left)), pos);
        budget.left -= n;
        return n;
      },
    } : {}),
    restat: () => h.restat(),
    close: () => h.close(),
    [Symbol.asyncDispose]: () => h.close(),
  });
  return {
    stat: (p) => inner.stat(p), list: (p, o) => inner.list(p, o), walk: (p, o) => inner.walk(p, o), check: () => inner.check(),
    open: async (p) => wrap(await inner.open(p)),
    staging: inner.staging, publish: (...a) => inner.publish(...a), remove: (...a) => inner.remove(...a), entryType: (...a) => inner.entryType(...a),
  };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }, positional: boolean) {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const same = randomBytes(300_000);
  const other = { primary: randomBytes(300_000), backup: randomBytes(300_000) };
  const when = new Date(1_700_000_000_000);
  for (const root of ['p', 'b']) {
    await mkdir(path.join(tmp.dir, root), { recursive: true });
    await writeFile(path.join(tmp.dir, root, 'same.bin'), same);
    await utimes(path.join(tmp.dir, root, 'same.bin'), when, when);
    await writeFile(path.join(tmp.dir, root, 'other.bin'), root === 'p' ? other.primary : other.backup);
  }
  await utimes(path.join(tmp.dir, 'b', 'other.bin'), when, when);
  const opts = { dotfiles: 'deny', followSymlinks: 'inside' } as const;
  const budget = { left: Infinity };
  const events: MidStreamFailover[] = [];
  const transitions: string[] = [];
  const storage = new FailoverStorage({
    primary: failingAfter(await LocalStorage.create({ root: path.join(tmp.dir, 'p'), ...opts }), budget, positional),
    backup: await LocalStorage.create({ root: path.join(tmp.dir, 'b'), ...opts }),
    failureThreshold: 1, failureWindowMs: 1000, cooldownMs: 60_000,
    onMidStream: (e) => { events.push(e); }, onTransition: (tr) => { transitions.push(tr.to); },
  });
  return { storage, budget, same, other, events, transitions };
}

for (const positional of [false, true]) {
  const how = positional ? 'readAt' : 'openRead';
  test(`${how}: the primary dies after 100,000 bytes — the same version continues from the backup at that byte; another version is cut`, async (t) => {
    const { storage, budget, same, events, transitions } = await setup(t, positional);
    const read = async (name: string): Promise<Buffer> => {
      const h = await storage.open(parseDecodedPath(name));
      try {
        if (!positional) return await buffer(h.openRead({ start: 1000, end: h.stat.size - 1 }, { highWaterMark: 16 * 1024 }));
        const out = Buffer.alloc(h.stat.size - 1000);
        let pos = 1000;
        while (pos < h.stat.size) {
          const n = await h.readAt!(out.subarray(pos - 1000, Math.min(pos - 1000 + 16 * 1024, out.length)), pos);
          assert.ok(n > 0);
          pos += n;
        }
        return out;
      } finally {
        await h.close();
      }
    };
    budget.left = 100_000;
    const got = await read('same.bin');
    assert.ok(got.equals(same.subarray(1000)), 'byte-identical across the switch');
    assert.deepEqual(events, [{ path: 'same.bin', offset: 101_000, outcome: 'continued', reason: 'same version on the backup (size+mtime)' }]);
    assert.deepEqual(transitions, ['open'], 'the failure counted against the breaker');

    // The breaker is open now: a new open goes to the backup. Reset it with a fresh store to test the cut.
    const fresh = await setup(t, positional);
    fresh.budget.left = 100_000;
    const h = await fresh.storage.open(parseDecodedPath('other.bin'));
    const chunks: Buffer[] = [];
    await assert.rejects(async () => {
      if (!positional) {
        for await (const c of h.openRead(undefined, { highWaterMark: 16 * 1024 }) as AsyncIterable<Buffer>) chunks.push(c);
      } else {
        for (let pos = 0; pos < h.stat.size;) {
          const b = Buffer.alloc(16 * 1024);
          const n = await h.readAt!(b, pos);
          chunks.push(b.subarray(0, n));
          pos += n;
        }
      }
    }, (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_STORAGE_UNAVAILABLE');
    await h.close();
    const partial = Buffer.concat(chunks);
    assert.equal(partial.length, 100_000);
    assert.ok(partial.equals(fresh.other.primary.subarray(0, 100_000)), 'primary bytes only');
    assert.equal(fresh.events[0]?.outcome, 'cut');
    assert.match(fresh.events[0]?.reason ?? '', /another version: modification times differ/);
  });
}

test('presigned URLs (--s3-redirect) come from the primary only while its breaker is closed with no failure in the window', async (t) => {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  await mkdir(path.join(tmp.dir, 'p'), { recursive: true });
  await mkdir(path.join(tmp.dir, 'b'), { recursive: true });
  await writeFile(path.join(tmp.dir, 'p', 'a.txt'), 'a');
  const opts = { dotfiles: 'deny', followSymlinks: 'inside' } as const;
  const local = await LocalStorage.create({ root: path.join(tmp.dir, 'p'), ...opts });
  let down = false;
  const primary: Storage = {
    stat: async (p) => { if (down) throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'injected'); return local.stat(p); },
    open: (p) => local.open(p), list: (p, o) => local.list(p, o), walk: (p, o) => local.walk(p, o), check: () => local.check(),
    staging: local.staging, publish: (...a) => local.publish(...a), remove: (...a) => local.remove(...a), entryType: (...a) => local.entryType(...a),
    presignGet: async (p) => `https://bucket.invalid/${p.relative}?X-Amz-Signature=x`,
  };
  let now = 0;
  const storage = new FailoverStorage({
    primary, backup: await LocalStorage.create({ root: path.join(tmp.dir, 'b'), ...opts }),
    failureThreshold: 2, failureWindowMs: 1000, cooldownMs: 500, now: () => now,
  });
  const a = parseDecodedPath('a.txt');
  assert.equal(await storage.presignGet(a, { expiresInSeconds: 60 }), 'https://bucket.invalid/a.txt?X-Amz-Signature=x');
  down = true;
  await assert.rejects(storage.stat(a)); // one failure: served by the (empty) backup, breaker still closed
  assert.equal(storage.state, 'closed');
  assert.equal(await storage.presignGet(a, { expiresInSeconds: 60 }), undefined, 'a failure in the window: served through Ferry');
  await assert.rejects(storage.stat(a));
  assert.equal(storage.state, 'open');
  assert.equal(await storage.presignGet(a, { expiresInSeconds: 60 }), undefined, 'open: served through Ferry');
  down = false;
  now += 2000;
  await storage.stat(a);
  assert.equal(storage.state, 'closed');
  assert.equal(await storage.presignGet(a, { expiresInSeconds: 60 }), 'https://bucket.invalid/a.txt?X-Amz-Signature=x', 'closed again, window clear');
});

test('prefetch (the first bytes, fetched before the answer\'s header): a primary that fails there hands the whole answer to the backup when it holds the same version, else the error stands', async (t) => {
  // On the merged code before this case, a prefetch failure only counted against the breaker:
  // the request failed 503 although the backup held the same bytes.
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const same = randomBytes(50_000);
  const when = new Date(1_700_000_000_000);
  for (const root of ['p', 'b']) {
    await mkdir(path.join(tmp.dir, root), { recursive: true });
    await writeFile(path.join(tmp.dir, root, 'same.bin'), same);
    await utimes(path.join(tmp.dir, root, 'same.bin'), when, when);
    await writeFile(path.join(tmp.dir, root, 'other.bin'), randomBytes(50_000));
    // Two writes within one timer tick can share an mtime: make the versions' times differ.
    const other = new Date(root === 'p' ? 1_700_000_005_000 : 1_700_000_009_000);
    await utimes(path.join(tmp.dir, root, 'other.bin'), other, other);
  }
  const opts = { dotfiles: 'deny', followSymlinks: 'inside' } as const;
  const local = await LocalStorage.create({ root: path.join(tmp.dir, 'p'), ...opts });
  const primary: Storage = {
    ...failingAfter(local, { left: Infinity }, false),
    open: async (p) => {
      const h = await local.open(p);
      return {
        get stat() { return h.stat; }, openRead: (r, o) => h.openRead(r, o), restat: () => h.restat(), close: () => h.close(), [Symbol.asyncDispose]: () => h.close(),
        prefetch: async () => { throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'injected: no first byte'); },
      };
    },
  };
  const events: MidStreamFailover[] = [];
  const storage = new FailoverStorage({
    primary, backup: await LocalStorage.create({ root: path.join(tmp.dir, 'b'), ...opts }),
    failureThreshold: 5, failureWindowMs: 1000, cooldownMs: 60_000, onMidStream: (e) => { events.push(e); },
  });
  const h = await storage.open(parseDecodedPath('same.bin'));
  await h.prefetch!({ start: 10, end: 49_999 });
  assert.ok((await buffer(h.openRead({ start: 10, end: 49_999 }))).equals(same.subarray(10)), 'the backup served the answer');
  await h.close();
  assert.equal(events[0]?.outcome, 'continued');
  assert.equal(events[0]?.offset, 10);
  const o = await storage.open(parseDecodedPath('other.bin'));
  await assert.rejects(o.prefetch!({ start: 0, end: 49_999 }), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_STORAGE_UNAVAILABLE');
  await o.close();
  assert.equal(events[1]?.outcome, 'cut');
});
