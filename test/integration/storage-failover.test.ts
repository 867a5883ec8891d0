/**
 * `ferry serve --storage s3 … --storage-backup local --backup-root DIR` against a real
 * S3-compatible server (s3rver, test/helpers/s3-server.ts), the same files in the bucket and
 * in the mirror. The S3 server is killed (SIGKILL by PID) while two downloads stream from it,
 * once each client has received a known number of bytes (it stops reading, so the kill lands
 * mid-stream): the file whose mirror holds the same version (same size, the mirror's mtime
 * the object's Last-Modified) continues from the mirror at the next byte and arrives
 * byte-identical; the file whose mirror holds another version is cut, holding bytes of the
 * primary only. Downloads keep succeeding from the mirror byte for byte, /readyz answers 200
 * degraded, the circuit metric shows open, `PUT` and tus creation answer 503 problem+json with
 * Retry-After and nothing reaches the mirror. The S3 server is started again on the same port
 * and data: after the cool-down the primary is probed (half-open) and taken back (closed). A
 * Ferry started while the S3 server is down starts degraded on the mirror and takes the
 * primary back the same way.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startChildServer, type ChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const TOKEN = 'writer-token-for-failover-test';
/** Long enough for the checks made while the breaker is open to finish before a probe is let through. */
const COOLDOWN_MS = 3000;

let s3: S3TestServer;
let ferry: ChildServer;
let tmp: { dir: string; remove: () => Promise<void> };
let ferryArgs: string[];
const movie = randomBytes(300_000);
const files: Record<string, Buffer> = { 'movie.bin': movie, 'docs/a.txt': Buffer.from('alpha\n') };
/**
 * Two files streaming when the primary dies, big enough that no buffering between the object
 * store and the client (socket buffers on both sides, a few MiB each) holds all of one.
 * `same.bin`: one version in the bucket and in the mirror (continued). `other.bin`: another
 * version of the same size in the mirror (cut: it must hold bucket bytes only).
 */
const INFLIGHT_BYTES = 32 * 1024 * 1024;
const same = randomBytes(INFLIGHT_BYTES);
const other = { bucket: randomBytes(INFLIGHT_BYTES), mirror: randomBytes(INFLIGHT_BYTES) };
/** What each client reads before the object store is killed. */
const KILL_AFTER_BYTES = 256 * 1024;
let mirrorDir: string;

before(async () => {
  tmp = await makeTempDir();
  s3 = await startS3Server();
  const client = s3.client();
  const mirror = path.join(tmp.dir, 'mirror');
  for (const [key, body] of Object.entries(files)) {
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: body }));
    await mkdir(path.dirname(path.join(mirror, key)), { recursive: true });
    await writeFile(path.join(mirror, key), body);
  }
  mirrorDir = mirror;
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'same.bin', Body: same }));
  await writeFile(path.join(mirror, 'same.bin'), same);
  // A mirror that keeps the object's Last-Modified as its mtime (as `aws s3 sync` does).
  const head = await client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: 'same.bin' }));
  assert.ok(head.LastModified !== undefined);
  const lastModifiedSec = Math.floor(head.LastModified.getTime() / 1000);
  await utimes(path.join(mirror, 'same.bin'), lastModifiedSec, lastModifiedSec);
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'other.bin', Body: other.bucket }));
  await writeFile(path.join(mirror, 'other.bin'), other.mirror);
  // The mirror's older version (synced an hour earlier, times kept).
  await utimes(path.join(mirror, 'other.bin'), lastModifiedSec - 3600, lastModifiedSec - 3600);
  const tokens = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokens, JSON.stringify([{ name: 'w', role: 'write', sha256: createHash('sha256').update(TOKEN).digest('hex') }]));
  ferryArgs = [
    '--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--s3-path-style',
    '--storage-backup', 'local', '--backup-root', mirror,
    '--storage-failure-threshold', '2', '--storage-failure-window', '10s', '--storage-cooldown', `${COOLDOWN_MS}ms`,
    '--tokens-file', tokens,
  ];
  ferry = await startChildServer(ferryArgs, { env: s3.env });
});

after(async () => {
  await ferry?.[Symbol.asyncDispose]();
  await s3?.close();
  await tmp?.remove();
});

interface CircuitLine { event?: string; from?: string; to?: string; reason?: string; level?: number; time?: string }

/** Circuit transitions logged so far. */
function transitions(server: ChildServer = ferry): CircuitLine[] {
  return server.lines.flatMap((l) => {
    try {
      const rec = JSON.parse(l) as CircuitLine;
      return rec.event === 'storage-circuit' ? [rec] : [];
    } catch { return []; }
  });
}

/** Resolves when a transition to `to` has been logged (checks the lines as they arrive). */
function waitForTransition(to: string, timeoutMs: number, server: ChildServer = ferry): Promise<CircuitLine> {
  const found = (): CircuitLine | undefined => transitions(server).find((t) => t.to === to);
  return new Promise((resolve, reject) => {
    const hit = found();
    if (hit) { resolve(hit); return; }
    const onData = (): void => {
      // readline in the helper appends after 'data'; look on the next turn.
      setImmediate(() => { const h = found(); if (h) { cleanup(); resolve(h); } });
    };
    const timer = setTimeout(() => { cleanup(); reject(new Error(`no transition to ${to} within ${timeoutMs} ms; saw ${JSON.stringify(transitions())}`)); }, timeoutMs);
    const cleanup = (): void => { clearTimeout(timer); server.child.stdout!.off('data', onData); };
    server.child.stdout!.on('data', onData);
  });
}

/**
 * The cool-down is the behaviour under test: once it has passed since the breaker opened (the
 * open line's own time), the next request is the half-open probe; a healthy primary then
 * closes the breaker, which the log says.
 */
async function probeAfterCooldown(server: ChildServer): Promise<CircuitLine> {
  const opened = transitions(server).findLast((t) => t.to === 'open');
  assert.ok(opened?.time !== undefined, 'the breaker opened, and said when');
  const left = Date.parse(opened.time) + COOLDOWN_MS - Date.now();
  if (left > 0) await delay(left + 10);
  await (await fetch(`${server.url}/readyz`)).arrayBuffer();
  return waitForTransition('closed', 5000, server);
}

interface StreamLine { event?: string; path?: string; offset?: number; outcome?: string; reason?: string; level?: number }

/** Mid-stream failover decisions logged so far. */
function streamLines(): StreamLine[] {
  return ferry.lines.flatMap((l) => {
    try {
      const rec = JSON.parse(l) as StreamLine;
      return rec.event === 'storage-failover-stream' ? [rec] : [];
    } catch { return []; }
  });
}

/**
 * Starts a download and reads until at least KILL_AFTER_BYTES have arrived, then stops
 * reading (the server's writes back up); `rest()` reads the remainder and says whether the
 * connection was cut.
 */
async function startReading(name: string): Promise<{ rest(): Promise<{ body: Buffer; cut: boolean }> }> {
  const res = await fetch(`${ferry.url}/files/${name}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('content-length'), String(INFLIGHT_BYTES));
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  let got = 0;
  while (got < KILL_AFTER_BYTES) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    got += value.length;
  }
  return {
    async rest() {
      let cut = false;
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          chunks.push(value);
        }
      } catch {
        cut = true;
      }
      return { body: Buffer.concat(chunks), cut };
    },
  };
}

/** Every file under `dir` with its size (what a write to the mirror would change). */
async function listTree(dir: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) { const full = path.join(e.parentPath, e.name); out[path.relative(dir, full)] = (await stat(full)).size; }
  }
  return out;
}

async function download(name: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${ferry.url}/files/${name}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function circuitMetric(server: ChildServer = ferry): Promise<string | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return /^ferry_storage_circuit_state\{backend="primary"\} (\d)$/m.exec(text)?.[1];
}

test('the primary dies mid-stream: the same version continues from the backup byte-identical, another version is cut (never mixed); reads move to the backup, readiness degraded, writes 503 with Retry-After and nothing on the backup; the primary returns: half-open, then closed', async (t) => {
  // Primary healthy.
  for (const [name, body] of Object.entries(files)) {
    const got = await download(name);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(body), `${name} from the primary`);
  }
  assert.deepEqual(await (await fetch(`${ferry.url}/readyz`)).json(), { status: 'ready' });
  assert.equal(await circuitMetric(), '0');

  // Two downloads in flight from the primary when the object store is killed (SIGKILL, by
  // PID), once each client holds KILL_AFTER_BYTES and has stopped reading.
  // On the old code the same-version stream was cut too (no continuation, no log line).
  const same1 = await startReading('same.bin');
  const other1 = await startReading('other.bin');
  await s3.kill();
  const [sameGot, otherGot] = await Promise.all([same1.rest(), other1.rest()]);
  t.diagnostic(`same.bin: ${sameGot.cut ? 'cut' : 'finished'} after ${sameGot.body.length} bytes; other.bin: ${otherGot.cut ? 'cut' : 'finished'} after ${otherGot.body.length} of ${INFLIGHT_BYTES} bytes`);
  assert.equal(sameGot.cut, false, 'the same version on the backup: the stream continues');
  assert.ok(sameGot.body.equals(same), 'and arrives byte-identical');
  assert.equal(otherGot.cut, true, 'another version on the backup: the stream is cut');
  assert.ok(otherGot.body.length < INFLIGHT_BYTES && otherGot.body.equals(other.bucket.subarray(0, otherGot.body.length)), 'a cut stream holds bytes of the primary only');
  const midStream = streamLines();
  const continued = midStream.find((l) => l.path === 'same.bin');
  assert.equal(continued?.outcome, 'continued', JSON.stringify(midStream));
  assert.ok(continued.offset !== undefined && continued.offset >= KILL_AFTER_BYTES && continued.offset < INFLIGHT_BYTES, `continued mid-stream, at byte ${continued.offset}`);
  assert.match(continued.reason ?? '', /same version.*size\+mtime/);
  const cutLine = midStream.find((l) => l.path === 'other.bin');
  assert.equal(cutLine?.outcome, 'cut');
  assert.equal(cutLine.level, 40, 'a cut is a warning');
  assert.match(cutLine.reason ?? '', /another version: modification times differ/);
  assert.ok(cutLine.offset !== undefined && cutLine.offset < INFLIGHT_BYTES);

  const opened = await waitForTransition('open', 5000);
  assert.equal(opened.level, 40, 'opening is a warning');
  assert.match(opened.reason ?? '', /failures/);
  const ready = await fetch(`${ferry.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'degraded', backend: 'primary' });
  assert.equal(await circuitMetric(), '2');

  // Writes while the breaker is open: 503 problem+json with Retry-After, before any byte is
  // read or staged, and nothing reaches the mirror. On the old code with an S3 primary, PUT
  // answered 503 without Retry-After ("does not accept uploads") and tus creation 201.
  const mirrorBefore = await listTree(mirrorDir);
  const refusals = [
    await fetch(`${ferry.url}/files/new.txt`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x' }),
    await fetch(`${ferry.url}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'tus-resumable': '1.0.0', 'upload-length': '5', 'upload-metadata': `filename ${Buffer.from('tus.txt').toString('base64')}` } }),
  ];
  for (const r of refusals) {
    assert.equal(r.status, 503, `${r.url}: refused while the primary is down`);
    const retryAfter = Number(r.headers.get('retry-after'));
    assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= COOLDOWN_MS / 1000, `Retry-After is the cool-down left: ${r.headers.get('retry-after')}`);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
    const problem = await r.json() as { code?: string; detail?: string };
    assert.equal(problem.code, 'FERRY_ERR_STORAGE_UNAVAILABLE');
    assert.match(problem.detail ?? '', /primary storage is unavailable/);
  }
  assert.deepEqual(await listTree(mirrorDir), mirrorBefore, 'nothing was written to the backup');

  for (let i = 0; i < 4; i++) {
    for (const [name, body] of Object.entries(files)) {
      const got = await download(name);
      assert.equal(got.status, 200, `${name} while the primary is down (round ${i})`);
      assert.ok(got.body.equals(body), `${name} byte-identical from the backup`);
    }
  }
  // A file only the primary holds is 404 while the backup serves (the mirror has no such file).
  assert.equal((await download('fresh.txt')).status, 404);

  // Same port, same data: the object store is back, with a file the mirror does not have.
  await s3.restart();
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'fresh.txt', Body: 'fresh\n' }));
  const closed = await probeAfterCooldown(ferry);
  assert.equal(closed.level, 30, 'closing is info');
  // A probe let through while the store was still down (a slow machine) failed and opened the
  // breaker again: legitimate, so allowed; the last probe closed it.
  assert.match(transitions().map((t) => t.to).join(','), /^open(,half-open,open)*,half-open,closed$/);
  assert.equal(await circuitMetric(), '0');
  assert.deepEqual(await (await fetch(`${ferry.url}/readyz`)).json(), { status: 'ready' });
  const fresh = await download('fresh.txt');
  assert.equal(fresh.status, 200, 'served by the primary again');
  assert.equal(fresh.body.toString(), 'fresh\n');
  assert.ok((await download('movie.bin')).body.equals(movie));

  // The primary is back: the breaker no longer refuses writes. An upload the S3 backend takes
  // lands in the bucket; a build whose S3 backend takes no uploads yet answers its own 503.
  const putAgain = await fetch(`${ferry.url}/files/new.txt`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x' });
  const tusAgain = await fetch(`${ferry.url}/uploads`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}`, 'tus-resumable': '1.0.0', 'upload-length': '5', 'upload-metadata': `filename ${Buffer.from('tus.txt').toString('base64')}` } });
  for (const r of [putAgain, tusAgain]) {
    const text = await r.text();
    t.diagnostic(`after recovery: ${r.url} ${r.status} ${text}`);
    assert.doesNotMatch(text, /primary storage is unavailable/, 'the breaker no longer refuses writes');
    if (!r.ok) assert.match(text, /does not accept (uploads|writes)/);
  }
  if (putAgain.ok) {
    const obj = await s3.client().send(new GetObjectCommand({ Bucket: s3.bucket, Key: 'new.txt' }));
    assert.equal(await obj.Body?.transformToString(), 'x', 'the upload went to the primary');
  }
  assert.deepEqual(await listTree(mirrorDir), mirrorBefore, 'and never to the backup');
});

test('a primary unreachable at start: Ferry starts degraded on the backup, then takes the primary back', async (t) => {
  await s3.kill();
  const late = await startChildServer(ferryArgs, { env: s3.env });
  t.after(() => late[Symbol.asyncDispose]());
  const opened = transitions(late).find((l) => l.to === 'open');
  assert.equal(opened?.level, 40);
  assert.match(opened?.reason ?? '', /unavailable at start/);
  const ready = await fetch(`${late.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'degraded', backend: 'primary' });
  assert.equal(await circuitMetric(late), '2');
  const got = await fetch(`${late.url}/files/movie.bin`);
  assert.equal(got.status, 200);
  assert.ok(Buffer.from(await got.arrayBuffer()).equals(movie), 'from the mirror');

  await s3.restart();
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'late.txt', Body: 'late\n' }));
  await probeAfterCooldown(late);
  assert.deepEqual(transitions(late).map((l) => l.to), ['open', 'half-open', 'closed']);
  assert.equal(await circuitMetric(late), '0');
  const fresh = await fetch(`${late.url}/files/late.txt`);
  assert.equal(fresh.status, 200, 'the primary serves again (the mirror has no late.txt)');
  assert.equal(await fresh.text(), 'late\n');
});
