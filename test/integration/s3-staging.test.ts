/**
 * The S3 write half beyond the shared conformance suite (test/conformance/storage-writes.test.ts),
 * on a real S3-compatible server on loopback (s3rver, test/helpers/s3-server.ts):
 * the reserved staging folder with --dotfiles allow (through a real Ferry and curl too), the
 * conditional write that closes the race between the HEAD and the copy, a checkpoint's tail
 * kept until the next-but-one commit (and `details.durable` once it is gone), memory bounded by
 * one part while 17 MiB go up in 5 MiB parts, and orphaned multipart uploads listed and aborted.
 *
 * On the code before the write half (16bb26a) every case fails: S3Storage's write methods
 * answered 503 "this backend does not accept writes yet".
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { buffer } from 'node:stream/consumers';
import { GetObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { S3Storage, type StagedCheckpoint } from '../../src/storage/index.ts';
import { FerryError, parseSafePath, type SafePath } from '../../src/core/index.ts';
import { isConditionFailure, multipartCopy } from '../../src/storage/s3/s3-write-kit.ts';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startChildServer } from '../helpers/start-server.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const PART = 5 * MiB;
const p = (s: string): SafePath => parseSafePath(s);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const code = (c: string) => (err: unknown): boolean => err instanceof FerryError && err.code === c;

let s3: S3TestServer;
let counter = 0;
const open: S3Storage[] = [];

before(async () => { s3 = await startS3Server(); });
after(async () => {
  for (const s of open) await s.close();
  await s3?.close();
});

async function storage(prefix: string, dotfiles: 'allow' | 'deny' = 'deny'): Promise<S3Storage> {
  const s = await S3Storage.create({
    bucket: s3.bucket, prefix, endpoint: s3.endpoint, region: 'us-east-1', forcePathStyle: true, maxSockets: 8, dotfiles, credentials: s3.credentials, partSize: PART,
  });
  open.push(s);
  return s;
}

async function stage(s: S3Storage, id: string, body: Buffer): Promise<StagedCheckpoint> {
  const w = await s.staging.open(id, undefined);
  await w.write([body]);
  const cp = await w.commit();
  await w.close();
  return cp;
}

async function readAll(s: S3Storage, rel: string): Promise<Buffer> {
  const h = await s.open(p(rel));
  try {
    return await buffer(h.openRead());
  } finally {
    await h.close();
  }
}

test('the staging folder is reserved even with --dotfiles allow: never listed, stat\'ed, walked, served or written through a client path', async () => {
  const prefix = `res${++counter}`;
  const s = await storage(prefix, 'allow');
  await s.publish({ id: 'vis', checkpoint: await stage(s, 'vis', Buffer.from('visible')) }, p('.hidden-ok.txt'), 'reject');
  // A staged upload with a tail object and one with a sealed object: both live under .ferry-staging/.
  const cp = await stage(s, 'pending-1', Buffer.from('staged bytes'));
  await buffer(await s.staging.read({ id: 'pending-2', checkpoint: await stage(s, 'pending-2', Buffer.from('sealed')) }));
  const keys = (await s3.client().send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/.ferry-staging/` }))).Contents ?? [];
  assert.ok(keys.length >= 2, 'the staging objects exist in the bucket');
  const tail = keys.map((k) => k.Key!.slice(`${prefix}/`.length)).find((k) => k.includes('.tail-'))!;

  assert.deepEqual((await s.list(p(''), { limit: 100 })).entries.map((e) => e.name), ['.hidden-ok.txt'], 'dotfiles are listed, the staging folder is not');
  const walked = [];
  for await (const e of s.walk(p(''))) walked.push(e.relative);
  assert.deepEqual(walked, ['.hidden-ok.txt']);
  for (const rel of ['.ferry-staging', tail, '.ferry-staging/pending-2']) {
    await assert.rejects(s.stat(p(rel)), code('FERRY_ERR_PATH_NOT_FOUND'), rel);
    await assert.rejects(s.open(p(rel)), code('FERRY_ERR_PATH_NOT_FOUND'), rel);
  }
  await assert.rejects(s.list(p('.ferry-staging'), { limit: 10 }), code('FERRY_ERR_PATH_NOT_FOUND'));
  await assert.rejects(s.publish({ id: 'pending-1', checkpoint: cp }, p('.ferry-staging/pending-2'), 'overwrite'), code('FERRY_ERR_PATH_NOT_FOUND'));
  assert.equal(await s.remove(p('.ferry-staging/pending-2')), false);
  assert.equal(await s.entryType(p('.ferry-staging')), 'other', 'an upload precheck never takes the name');
  assert.equal((await readAll(s, '.hidden-ok.txt')).toString(), 'visible');

  // The same through a real Ferry and curl.
  const ferry = await startChildServer(['--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--s3-path-style', '--s3-prefix', prefix, '--dotfiles', 'allow'], { env: s3.env });
  try {
    const status = async (url: string): Promise<string> => (await run('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', url])).stdout;
    assert.equal(await status(`${ferry.url}/files/.hidden-ok.txt`), '200');
    assert.equal(await status(`${ferry.url}/files/${tail}`), '404');
    assert.equal(await status(`${ferry.url}/files/.ferry-staging/pending-2`), '404');
    assert.equal(await status(`${ferry.url}/zip/.ferry-staging`), '404');
    const listing = JSON.parse((await run('curl', ['-s', `${ferry.url}/api/list`])).stdout) as { entries: { name: string }[] };
    assert.deepEqual(listing.entries.map((e) => e.name), ['.hidden-ok.txt']);
  } finally {
    await ferry[Symbol.asyncDispose]();
  }
});

test('publish: a file created between the HEAD and the copy is never replaced (the copy is a conditional write)', async () => {
  const prefix = `race${++counter}`;
  const s = await storage(prefix);
  const fixtures = s3.client();
  // The competitor writes the name right after Ferry checked it was free, before the copy.
  const competitor = (rel: string) => async (name: string): Promise<void> => {
    const dir = rel.includes('/') ? `${rel.slice(0, rel.lastIndexOf('/'))}/` : '';
    if (name === rel.slice(dir.length)) await fixtures.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `${prefix}/${dir}${name}`, Body: 'competitor' }));
  };
  const cp1 = await stage(s, 'r1', Buffer.from('mine-1'));
  await assert.rejects(s.publish({ id: 'r1', checkpoint: cp1 }, p('a/x.txt'), 'reject', { beforeAttempt: competitor('a/x.txt') }), code('FERRY_ERR_UPLOAD_CONFLICT'));
  assert.equal((await readAll(s, 'a/x.txt')).toString(), 'competitor');
  const cp2 = await stage(s, 'r2', Buffer.from('mine-2'));
  await assert.rejects(s.publish({ id: 'r2', checkpoint: cp2 }, p('a/y.txt'), 'no-clobber', { beforeAttempt: competitor('a/y.txt') }), code('FERRY_ERR_PRECONDITION_FAILED'));
  assert.equal((await readAll(s, 'a/y.txt')).toString(), 'competitor');
  const tried: string[] = [];
  const res = await s.publish({ id: 'r2', checkpoint: cp2 }, p('a/z.txt'), 'rename', { beforeAttempt: async (n) => { tried.push(n); await competitor('a/z.txt')(n); } });
  assert.deepEqual(tried, ['z.txt', 'z (1).txt']);
  assert.equal(res.name, 'z (1).txt');
  assert.equal((await readAll(s, 'a/z.txt')).toString(), 'competitor');
  assert.equal((await readAll(s, 'a/z (1).txt')).toString(), 'mine-2');
  assert.equal(res.stat.size, 6);
  assert.ok(res.stat.etag !== undefined && res.stat.etag !== '', 'the published object\'s ETag is its validator');
  // An object where a folder of the target should be: refused, nothing written under it.
  const cp3 = await stage(s, 'r3', Buffer.from('under a file'));
  await assert.rejects(s.publish({ id: 'r3', checkpoint: cp3 }, p('a/x.txt/inner'), 'overwrite'), code('FERRY_ERR_UPLOAD_CONFLICT'));
});

test('a checkpoint\'s tail stays valid after the next commit and goes after the one after; then reopening says what is durable', async () => {
  const prefix = `tail${++counter}`;
  let s = await storage(prefix);
  const data = randomBytes(PART + 3 * MiB);
  const w = await s.staging.open('t1', undefined);
  await w.write([data.subarray(0, PART + MiB)]);
  const cp1 = await w.commit();
  await w.write([data.subarray(PART + MiB, PART + 2 * MiB)]);
  const cp2 = await w.commit();
  await w.close();
  assert.notEqual(cp1.state?.tail, cp2.state?.tail, 'each commit writes its own tail object');
  // The caller crashed before storing cp2: cp1 must still open, in a new instance.
  s = await storage(prefix);
  const again = await s.staging.open('t1', cp1);
  assert.equal(again.offset, PART + MiB);
  await again.write([data.subarray(PART + MiB, PART + 2 * MiB)]);
  const cp3 = await again.commit();
  await again.write([data.subarray(PART + 2 * MiB)]);
  const cp4 = await again.commit();
  await again.close();
  assert.equal(cp4.offset, data.length);
  // cp1's tail is two commits old now: gone, and the error names the durable offset (one part).
  await assert.rejects(s.staging.open('t1', cp1), (err: unknown) => {
    assert.ok(err instanceof FerryError && err.code === 'FERRY_ERR_UPLOAD_OFFSET_MISMATCH', String(err));
    assert.deepEqual(err.extra, { details: { durable: PART } });
    return true;
  });
  assert.equal(cp3.offset, PART + 2 * MiB);
  const res = await s.publish({ id: 't1', checkpoint: cp4 }, p('t.bin'), 'reject');
  assert.equal(sha(await readAll(s, 't.bin')), sha(data));
  assert.equal(res.stat.size, data.length);
  // A removed upload: its multipart upload is gone, which is an offset mismatch with nothing durable.
  await assert.rejects(s.staging.open('t1', cp4), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_UPLOAD_OFFSET_MISMATCH' && (err.extra as { details?: { durable?: number } }).details?.durable === 0);
});

test('17 MiB in 64 KiB writes go up as three 5 MiB parts and a tail, holding at most two parts in memory', async (t) => {
  const prefix = `mem${++counter}`;
  const s = await storage(prefix);
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const data = randomBytes(17 * MiB);
  gc();
  const w = await s.staging.open('m1', undefined);
  // `data` stays allocated throughout; each write hands over a fresh 64 KiB copy, as a socket
  // reader does, so what grows above `base` is what the writer keeps.
  const base = process.memoryUsage().arrayBuffers;
  let peak = 0;
  for (let i = 0, n = 0; i < data.length; i += 64 * 1024, n++) {
    await w.write([Buffer.from(data.subarray(i, i + 64 * 1024))]);
    // Socket reads arrive on macrotasks; the HTTP client lets go of a sent part on one too.
    await new Promise((resolve) => setImmediate(resolve));
    if (n % 16 === 0) { gc(); peak = Math.max(peak, process.memoryUsage().arrayBuffers - base); }
  }
  const cp = await w.commit();
  await w.close();
  t.diagnostic(`writer peak: ${(peak / MiB).toFixed(1)} MiB for 17 MiB written (part ${PART / MiB} MiB)`);
  // One part gathering, plus at most the part just sent, which the HTTP client lets go of a
  // moment after the store's answer (measured 4–10 MiB with 5 MiB parts): never the whole upload.
  assert.ok(peak < 2 * PART + MiB, `writer held ${(peak / MiB).toFixed(1)} MiB (one part is 5 MiB)`);
  assert.equal(cp.offset, data.length);
  assert.equal(cp.state?.parts, 3);
  assert.equal(cp.state?.tailSize, 2 * MiB);
  const parts = await s3.client().send(new ListPartsCommand({ Bucket: s3.bucket, Key: `${prefix}/.ferry-staging/m1`, UploadId: String(cp.state?.uploadId) }));
  assert.deepEqual(parts.Parts?.map((x) => x.Size), [PART, PART, PART]);
  await s.publish({ id: 'm1', checkpoint: cp }, p('m.bin'), 'reject');
  assert.equal(sha(await readAll(s, 'm.bin')), sha(data));
});

test('orphans: a multipart upload whose writer died before any commit is listed with its start time and aborted by remove', async () => {
  const prefix = `orph${++counter}`;
  const s = await storage(prefix);
  const started = Date.now();
  const w = await s.staging.open('lost-1', undefined);
  await w.write([randomBytes(PART + 10)]);
  // No commit, no close: the process "died". Another instance (after a restart) sweeps.
  const s2 = await storage(prefix);
  const listed = [];
  for await (const e of s2.staging.list()) listed.push(e);
  assert.deepEqual(listed.map((e) => e.id), ['lost-1']);
  assert.ok(listed[0]!.modifiedMs >= started - 2000 && listed[0]!.modifiedMs <= Date.now() + 2000, 'initiated time');
  const uploads = async (): Promise<number> => ((await s3.client().send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: `${prefix}/` }))).Uploads ?? []).length;
  assert.equal(await uploads(), 1);
  await s2.staging.remove('lost-1');
  assert.equal(await uploads(), 0, 'the multipart upload is aborted');
  const after = [];
  for await (const e of s2.staging.list()) after.push(e.id);
  assert.deepEqual(after, []);
});

test('the store goes down mid-upload: the write fails 503 and stays failed; after the store is back, rollback resumes from the last commit', async (t) => {
  const own = await startS3Server();
  t.after(() => own.close());
  const s = await S3Storage.create({
    bucket: own.bucket, prefix: 'down', endpoint: own.endpoint, region: 'us-east-1', forcePathStyle: true, maxSockets: 4, dotfiles: 'deny', credentials: own.credentials, partSize: PART,
  });
  t.after(() => s.close());
  const data = randomBytes(2 * PART + 100);
  const w = await s.staging.open('d1', undefined);
  await w.write([data.subarray(0, PART + 50)]);
  const cp = await w.commit();
  await own.kill();
  await assert.rejects(w.write([data.subarray(PART + 50, 2 * PART + 50)]), code('FERRY_ERR_STORAGE_UNAVAILABLE'));
  await assert.rejects(w.commit(), code('FERRY_ERR_STORAGE_UNAVAILABLE'), 'a failed part is not silently skipped');
  await own.restart();
  await w.rollback();
  assert.equal(w.offset, cp.offset);
  await w.write([data.subarray(PART + 50)]);
  const done = await w.commit();
  await w.close();
  await s.publish({ id: 'd1', checkpoint: done }, p('d.bin'), 'reject');
  assert.equal(sha(await readAll(s, 'd.bin')), sha(data));
});

test('a copy in parts (what publish uses above 5 GiB, here with 5 MiB ranges): byte-identical, conditional, and aborted when refused', async () => {
  const fixtures = s3.client();
  const ctx = { client: fixtures, bucket: s3.bucket, prefix: '', partSize: PART, headFile: () => Promise.reject(new Error('unused')) };
  const body = randomBytes(12 * MiB + 3);
  await fixtures.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'mpc/src', Body: body }));
  await multipartCopy(ctx, 'mpc/src', body.length, 'mpc/dst', true, undefined, PART);
  const got = await fixtures.send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'mpc/dst' }));
  assert.equal(sha(Buffer.from(await got.Body!.transformToByteArray())), sha(body));
  await assert.rejects(multipartCopy(ctx, 'mpc/src', body.length, 'mpc/dst', true, undefined, PART), (err: unknown) => isConditionFailure(err));
  const left = (await fixtures.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: 'mpc/' }))).Uploads ?? [];
  assert.deepEqual(left, [], 'the refused copy left no multipart upload behind');
});
