/**
 * The write half's conformance suite (issue 9, tus's store-suite pattern): every case runs
 * against each entry of `backends` — local disk, a FailoverStorage over a healthy local
 * primary, and S3 on a real S3-compatible server on loopback (5 MiB parts, the store's
 * minimum, so tails and part boundaries are exercised with small files).
 *
 * Staged writes, tails kept across commits, rollback, reopening at a checkpoint in a fresh
 * backend instance (a restart), publishing under each conflict policy, concatenation,
 * hostile keys, empty objects, and listing 10,000 keys in pages while keys come and go.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { createLocalStorage, FailoverStorage, S3Storage, type StagedCheckpoint, type Storage } from '../../src/storage/index.ts';
import { parseSafePath, FerryError, type SafePath } from '../../src/core/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { createPrng, fuzzSeed } from '../helpers/jail-kit.ts';

const MiB = 1024 * 1024;
const PART = 5 * MiB;
const p = (s: string): SafePath => parseSafePath(s);
const code = (c: string) => (err: unknown): boolean => err instanceof FerryError && err.code === c;

interface Built {
  readonly storage: Storage;
  /** A new instance on the same backing store (what a restart sees). */
  reopen(): Promise<Storage>;
  /** Writes files straight into the backing store (fixtures, not through the write half). */
  seed(files: Readonly<Record<string, string | Uint8Array>>): Promise<void>;
  /** Longest key the store accepts, in bytes, or undefined for none below the path limits. */
  readonly keyLimit?: number;
}

interface Backend {
  readonly name: string;
  build(t: { after: (fn: () => Promise<void>) => void }): Promise<Built>;
}

async function localBuilt(t: { after: (fn: () => Promise<void>) => void }): Promise<Built> {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const root = path.join(tmp.dir, 'root');
  const stagingDir = path.join(tmp.dir, 'state', 'uploads');
  await mkdir(root, { recursive: true });
  // Staged uploads live in the state dir, as uploads did before (`<state>/uploads`).
  const staging = { stagingDir };
  const make = (): Promise<Storage> => createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside', ...staging });
  return {
    storage: await make(),
    reopen: make,
    async seed(files) {
      for (const [rel, body] of Object.entries(files)) {
        const full = path.join(root, rel);
        await mkdir(path.dirname(full), { recursive: true });
        await writeFile(full, body);
      }
    },
  };
}

let s3: S3TestServer | undefined;
let prefixCounter = 0;
before(async () => { s3 = await startS3Server(); });
after(async () => { await s3?.close(); });

const backends: readonly Backend[] = [
  { name: 'local', build: localBuilt },
  {
    name: 'failover',
    async build(t) {
      const primary = await localBuilt(t);
      const backup = await localBuilt(t);
      const wrap = (s: Storage): Storage => new FailoverStorage({ primary: s, backup: backup.storage, failureThreshold: 1, failureWindowMs: 1000, cooldownMs: 1000 });
      return { storage: wrap(primary.storage), reopen: async () => wrap(await primary.reopen()), seed: primary.seed };
    },
  },
  {
    name: 's3',
    async build(t) {
      const server = s3!;
      const prefix = `w${++prefixCounter}/`;
      const instances: S3Storage[] = [];
      const parts = { partSize: PART };
      const make = async (): Promise<Storage> => {
        const storage = await S3Storage.create({ bucket: server.bucket, prefix, endpoint: server.endpoint, region: 'us-east-1', forcePathStyle: true, maxSockets: 16, dotfiles: 'deny', credentials: server.credentials, ...parts });
        instances.push(storage);
        return storage;
      };
      t.after(async () => { for (const s of instances) await s.close(); });
      return {
        storage: await make(),
        reopen: make,
        seed: (files) => server.seedObjects(Object.fromEntries(Object.entries(files).map(([k, v]) => [prefix + k, v]))),
        keyLimit: 1024 - prefix.length,
      };
    },
  },
];

function sha(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

/** Writes `data` in pieces of `piece` bytes (socket-sized), as ingest does. */
async function writeIn(w: { write(b: readonly Buffer[]): Promise<void> }, data: Buffer, piece: number): Promise<void> {
  for (let i = 0; i < data.length; i += piece) await w.write([data.subarray(i, Math.min(data.length, i + piece))]);
}

async function readFile(storage: Storage, rel: string): Promise<Buffer> {
  const h = await storage.open(p(rel));
  try {
    return await buffer(h.openRead());
  } finally {
    await h.close();
  }
}

async function stagedIds(storage: Storage): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const e of storage.staging.list()) ids.add(e.id);
  return ids;
}

for (const backend of backends) {
  const name = backend.name;

  test(`[${name}] staged writes: parts and a short tail across commits, reopened at each checkpoint in a fresh instance, published byte-identical`, async (t) => {
    const b = await backend.build(t);
    const data = randomBytes(2 * PART + 3 * MiB + 17);
    let w = await b.storage.staging.open('up-1', undefined);
    assert.equal(w.offset, 0);
    // A commit in the middle of a part: the tail must survive a restart.
    const cut1 = PART + 123_457;
    await writeIn(w, data.subarray(0, cut1), 64 * 1024);
    assert.equal(w.offset, cut1);
    const cp1 = await w.commit();
    assert.equal(cp1.offset, cut1);
    await w.close();

    let storage = await b.reopen();
    w = await storage.staging.open('up-1', cp1);
    assert.equal(w.offset, cut1, 'reopened at the checkpoint');
    const cut2 = 2 * PART + 1;
    await writeIn(w, data.subarray(cut1, cut2), 1 * MiB + 7);
    const cp2 = await w.commit();
    assert.equal(cp2.offset, cut2);
    await w.close();

    storage = await b.reopen();
    w = await storage.staging.open('up-1', cp2);
    await writeIn(w, data.subarray(cut2), 300_001);
    const cp3 = await w.commit();
    assert.equal(cp3.offset, data.length);
    await w.close();

    const read = await buffer(await storage.staging.read({ id: 'up-1', checkpoint: cp3 }));
    assert.equal(read.length, data.length);
    assert.equal(sha(read), sha(data), 'staged bytes read back as written');
    const res = await storage.publish({ id: 'up-1', checkpoint: cp3 }, p('out/big.bin'), 'reject');
    assert.equal(res.name, 'big.bin');
    assert.equal(res.replaced, false);
    assert.equal(res.stat.size, data.length);
    assert.equal(sha(await readFile(storage, 'out/big.bin')), sha(data));
    assert.ok(!(await stagedIds(storage)).has('up-1'), 'the staged upload is gone after publishing');
  });

  test(`[${name}] rollback forgets what was written since the last commit (also across a part boundary); reopening drops uncommitted bytes`, async (t) => {
    const b = await backend.build(t);
    const a = randomBytes(MiB + 5);
    const lost = randomBytes(PART + MiB);
    const c = randomBytes(2 * MiB + 9);
    const w = await b.storage.staging.open('up-2', undefined);
    await writeIn(w, a, 256 * 1024);
    const cpA = await w.commit();
    await writeIn(w, lost, 512 * 1024);
    assert.equal(w.offset, a.length + lost.length);
    await w.rollback();
    assert.equal(w.offset, a.length, 'back at the commit');
    assert.deepEqual(w.committed, cpA);
    await writeIn(w, c, 256 * 1024);
    const cpC = await w.commit();
    // More bytes that are never committed, then a "crash": the next open ignores them.
    await writeIn(w, lost, MiB);
    await w.close();
    const storage = await b.reopen();
    const w2 = await storage.staging.open('up-2', cpC);
    assert.equal(w2.offset, a.length + c.length);
    const tail = Buffer.from('end');
    await w2.write([tail]);
    const cp = await w2.commit();
    await w2.close();
    await storage.publish({ id: 'up-2', checkpoint: cp }, p('r.bin'), 'overwrite');
    assert.equal(sha(await readFile(storage, 'r.bin')), sha(Buffer.concat([a, c, tail])));
  });

  test(`[${name}] a commit claims only what was written before it, even while later writes run`, async (t) => {
    const b = await backend.build(t);
    const first = randomBytes(PART + 11);
    const second = randomBytes(PART + 13);
    const w = await b.storage.staging.open('up-3', undefined);
    await writeIn(w, first, MiB);
    const pending = w.commit();
    const writing = writeIn(w, second, MiB);
    const [cp] = await Promise.all([pending, writing]);
    assert.equal(cp.offset, first.length);
    await w.close();
    const storage = await b.reopen();
    const again = await storage.staging.open('up-3', cp);
    assert.equal(again.offset, first.length);
    const done = await again.commit();
    await again.close();
    assert.equal(sha(await buffer(await storage.staging.read({ id: 'up-3', checkpoint: done }))), sha(first));
  });

  test(`[${name}] publish: reject → 409, no-clobber → 412, rename → "name (1)", overwrite replaces; never onto a folder; missing folders are created`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    await b.seed({ 'docs/report.txt': 'old', 'docs/sub/inner.txt': 'x' });
    const stage = async (id: string, body: string): Promise<StagedCheckpoint> => {
      const w = await s.staging.open(id, undefined);
      await w.write([Buffer.from(body)]);
      const cp = await w.commit();
      await w.close();
      return cp;
    };
    const cp1 = await stage('pub-1', 'new one');
    await assert.rejects(s.publish({ id: 'pub-1', checkpoint: cp1 }, p('docs/report.txt'), 'reject'), code('FERRY_ERR_UPLOAD_CONFLICT'));
    await assert.rejects(s.publish({ id: 'pub-1', checkpoint: cp1 }, p('docs/report.txt'), 'no-clobber'), code('FERRY_ERR_PRECONDITION_FAILED'));
    assert.equal((await readFile(s, 'docs/report.txt')).toString(), 'old', 'a refused publish changes nothing');
    const renamed = await s.publish({ id: 'pub-1', checkpoint: cp1 }, p('docs/report.txt'), 'rename');
    assert.equal(renamed.name, 'report (1).txt');
    assert.equal((await readFile(s, 'docs/report (1).txt')).toString(), 'new one');
    const cp2 = await stage('pub-2', 'second');
    assert.equal((await s.publish({ id: 'pub-2', checkpoint: cp2 }, p('docs/report.txt'), 'rename')).name, 'report (2).txt');
    const cp3 = await stage('pub-3', 'replaced');
    const over = await s.publish({ id: 'pub-3', checkpoint: cp3 }, p('docs/report.txt'), 'overwrite');
    assert.equal(over.replaced, true);
    assert.equal(over.stat.size, 'replaced'.length);
    assert.equal((await readFile(s, 'docs/report.txt')).toString(), 'replaced');
    assert.equal((await s.stat(p('docs/report.txt'))).size, over.stat.size);
    const cp4 = await stage('pub-4', 'onto a folder');
    await assert.rejects(s.publish({ id: 'pub-4', checkpoint: cp4 }, p('docs/sub'), 'overwrite'), code('FERRY_ERR_UPLOAD_CONFLICT'));
    assert.equal((await readFile(s, 'docs/sub/inner.txt')).toString(), 'x', 'the folder is untouched');
    const deep = await s.publish({ id: 'pub-4', checkpoint: cp4 }, p('new/a/b/c.txt'), 'reject');
    assert.equal(deep.name, 'c.txt');
    assert.equal((await s.stat(p('new/a/b'))).type, 'directory');
    assert.equal((await readFile(s, 'new/a/b/c.txt')).toString(), 'onto a folder');
  });

  test(`[${name}] empty objects: never committed, or committed at 0, publish as empty files`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    const w = await s.staging.open('empty-1', undefined);
    const cp = await w.commit();
    await w.close();
    assert.equal(cp.offset, 0);
    const r1 = await s.publish({ id: 'empty-1', checkpoint: cp }, p('e/zero.bin'), 'reject');
    assert.equal(r1.stat.size, 0);
    assert.equal((await readFile(s, 'e/zero.bin')).length, 0);
    const w2 = await s.staging.open('empty-2', undefined);
    await w2.close();
    const r2 = await s.publish({ id: 'empty-2', checkpoint: undefined }, p('e/none.bin'), 'reject');
    assert.equal(r2.stat.size, 0);
    assert.equal((await s.stat(p('e/none.bin'))).size, 0);
  });

  test(`[${name}] concat: parts (a full part, one byte, a part and a bit) become one staged upload; the parts are consumed`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    const bodies = [randomBytes(PART), Buffer.from('!'), randomBytes(PART + 2)];
    const refs = [];
    for (const [i, body] of bodies.entries()) {
      const w = await s.staging.open(`part-${i}`, undefined);
      await writeIn(w, body, MiB);
      refs.push({ id: `part-${i}`, checkpoint: await w.commit() });
      await w.close();
    }
    const cp = await s.staging.concat('final-1', refs);
    const whole = Buffer.concat(bodies);
    assert.equal(cp.offset, whole.length);
    await s.publish({ id: 'final-1', checkpoint: cp }, p('cat.bin'), 'reject');
    assert.equal(sha(await readFile(s, 'cat.bin')), sha(whole));
    const left = await stagedIds(s);
    for (const r of refs) assert.ok(!left.has(r.id), `${r.id} consumed`);
  });

  test(`[${name}] staging list and remove: an unfinished upload is listed until removed (the orphan sweep's tools); remove is idempotent`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    const w = await s.staging.open('orphan-1', undefined);
    await writeIn(w, randomBytes(PART + 1000), MiB);
    const cp = await w.commit();
    await w.close();
    const listed = [];
    for await (const e of s.staging.list()) listed.push(e);
    const entry = listed.find((e) => e.id === 'orphan-1');
    assert.ok(entry !== undefined, 'listed');
    assert.ok(Math.abs(entry.modifiedMs - Date.now()) < 5 * 60_000, 'with a plausible time');
    await s.staging.remove('orphan-1');
    await s.staging.remove('orphan-1');
    assert.ok(!(await stagedIds(s)).has('orphan-1'), 'gone');
    await assert.rejects(async () => { const again = await s.staging.open('orphan-1', cp); await again.close(); }, (err: unknown) => err instanceof FerryError, 'reopening a removed upload at its checkpoint fails clearly');
    // Staged uploads are never files: not listed, not served.
    const w2 = await s.staging.open('hidden-1', undefined);
    await w2.write([Buffer.from('x')]);
    await w2.commit();
    await w2.close();
    const root = await s.list(p(''), { limit: 1000 });
    assert.deepEqual(root.entries.map((e) => e.name), [], 'nothing staged shows in the tree');
  });

  test(`[${name}] hostile ids and keys: bad staged ids refused; "%2F", long and odd names stored verbatim or refused with a 400`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    for (const bad of ['', '..', 'a/b', 'a\\b', 'nul\0x', 'x'.repeat(65), 'é']) {
      await assert.rejects(s.staging.open(bad, undefined), (err: unknown) => err instanceof FerryError && err.statusCode === 400, `staged id ${JSON.stringify(bad)}`);
    }
    const stage = async (id: string): Promise<StagedCheckpoint> => {
      const w = await s.staging.open(id, undefined);
      await w.write([Buffer.from(id)]);
      const cp = await w.commit();
      await w.close();
      return cp;
    };
    // "%2F" is three characters of a name, not a slash.
    await s.publish({ id: 'k1', checkpoint: await stage('k1') }, p('odd/a%252Fb'), 'reject');
    const listed = await s.list(p('odd'), { limit: 10 });
    assert.deepEqual(listed.entries.map((e) => [e.name, e.type]), [['a%2Fb', 'file']]);
    assert.equal((await readFile(s, 'odd/a%252Fb')).toString(), 'k1');
    // 1,100 bytes of key in five segments: below Ferry's path limits; a store with a shorter key limit refuses it as 400.
    const long = Array.from({ length: 5 }, (_, i) => `${i}`.repeat(219)).join('/');
    assert.equal(Buffer.byteLength(long), 1099);
    const cpLong = await stage('k2');
    if (b.keyLimit !== undefined && Buffer.byteLength(long) > b.keyLimit) {
      await assert.rejects(s.publish({ id: 'k2', checkpoint: cpLong }, p(long), 'reject'), (err: unknown) => err instanceof FerryError && err.statusCode === 400);
    } else {
      await s.publish({ id: 'k2', checkpoint: cpLong }, p(long), 'reject');
      assert.equal((await readFile(s, long)).toString(), 'k2');
    }
    // Non-ASCII and characters that are special in URLs or XML round-trip.
    const odd = 'odd/ü & <x> ?#+ 🚀.txt';
    await s.publish({ id: 'k3', checkpoint: await stage('k3') }, p(odd), 'reject');
    assert.equal((await readFile(s, odd)).toString(), 'k3');
    // Not UTF-8: a lone surrogate never becomes a key.
    assert.throws(() => p('odd/\uD800.txt'), (err: unknown) => err instanceof FerryError && err.statusCode === 400);
  });

  test(`[${name}] remove: a file goes (true), then false; a folder is never removed; entryType says what stands there`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    await b.seed({ 'rm/a.txt': 'a', 'rm/sub/b.txt': 'b' });
    assert.equal(await s.entryType(p('rm/a.txt')), 'file');
    assert.equal(await s.entryType(p('rm/sub')), 'directory');
    assert.equal(await s.entryType(p('rm/none')), undefined);
    assert.equal(await s.remove(p('rm/a.txt')), true);
    assert.equal(await s.remove(p('rm/a.txt')), false);
    await assert.rejects(s.stat(p('rm/a.txt')), code('FERRY_ERR_PATH_NOT_FOUND'));
    await assert.rejects(async () => { if (await s.remove(p('rm/sub'))) throw new Error('removed a folder'); throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', 'refused'); }, (err: unknown) => err instanceof FerryError);
    assert.equal((await readFile(s, 'rm/sub/b.txt')).toString(), 'b');
  });

  test(`[${name}] list pages through 10,000 keys while keys come and go: each key present throughout exactly once, in order; removed keys never`, async (t) => {
    const b = await backend.build(t);
    const s = b.storage;
    const seed = fuzzSeed();
    t.diagnostic(`seed ${seed} (rerun with FERRY_FUZZ_SEED=${seed})`);
    const prng = createPrng(seed);
    const names = Array.from({ length: 10_000 }, (_, i) => `k${String(i).padStart(5, '0')}`);
    await b.seed(Object.fromEntries(names.map((n) => [`many/${n}`, n])));
    const removed = new Set<string>();
    const added = new Set<string>();
    const seen: string[] = [];
    let after: string | undefined;
    let page = 0;
    for (;;) {
      const res = await s.list(p('many'), { limit: 500, ...(after === undefined ? {} : { after }) });
      for (const e of res.entries) seen.push(e.name);
      page++;
      // Between pages: one key ahead of the cursor goes, one new key comes (through the write half).
      const last = res.entries.at(-1)?.name ?? '';
      const ahead = names.filter((n) => n > last && !removed.has(n));
      if (ahead.length > 0) {
        const victim = prng.pick(ahead);
        assert.equal(await s.remove(p(`many/${victim}`)), true);
        removed.add(victim);
      }
      const fresh = `k${String(prng.int(10_000)).padStart(5, '0')}-new${page}`;
      const w = await s.staging.open(`add-${page}`, undefined);
      await w.write([Buffer.from(fresh)]);
      await s.publish({ id: `add-${page}`, checkpoint: await w.commit() }, p(`many/${fresh}`), 'reject');
      await w.close();
      added.add(fresh);
      if (!res.more) break;
      after = last;
    }
    for (let i = 1; i < seen.length; i++) assert.ok(seen[i - 1]! < seen[i]!, `in order, each once: ${seen[i - 1]} then ${seen[i]}`);
    const got = new Set(seen);
    for (const n of names) {
      if (removed.has(n)) assert.ok(!got.has(n), `${n} was removed before the cursor reached it`);
      else assert.ok(got.has(n), `${n} was present throughout`);
    }
    for (const n of got) assert.ok(names.includes(n) || added.has(n), `${n} is a key that existed`);
    assert.ok(removed.size >= 15, `keys went while listing (${removed.size})`);
  });
}
