/**
 * `ferry serve --storage s3 … --storage-backup local --backup-root DIR` against a real
 * S3-compatible server (s3rver, test/helpers/s3-server.ts), the same files in the bucket and
 * in the mirror. The S3 server is killed (SIGKILL by PID) while a download streams from it:
 * that stream is cut or finishes, never mixed with the mirror's other version of the file;
 * downloads keep succeeding from the mirror byte for byte, /readyz answers 200 degraded, the circuit metric shows open, uploads
 * answer 503. The S3 server is started again on the same port and data: after the cool-down the
 * primary is probed (half-open) and taken back (closed). A Ferry started while the S3 server
 * is down starts degraded on the mirror and takes the primary back the same way.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startChildServer, type ChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const TOKEN = 'writer-token-for-failover-test';
const COOLDOWN_MS = 1000;

let s3: S3TestServer;
let ferry: ChildServer;
let tmp: { dir: string; remove: () => Promise<void> };
let ferryArgs: string[];
const movie = randomBytes(300_000);
const files: Record<string, Buffer> = { 'movie.bin': movie, 'docs/a.txt': Buffer.from('alpha\n') };
/** Another version in the bucket than in the mirror: a stream cut mid-way must hold bucket bytes only. */
const inflight = { bucket: Buffer.alloc(24 * 1024 * 1024, 0x61), mirror: Buffer.alloc(24 * 1024 * 1024, 0x62) };

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
  await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'inflight.bin', Body: inflight.bucket }));
  await writeFile(path.join(mirror, 'inflight.bin'), inflight.mirror);
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

async function download(name: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`${ferry.url}/files/${name}`);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

async function circuitMetric(server: ChildServer = ferry): Promise<string | undefined> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  return /^ferry_storage_circuit_state\{backend="primary"\} (\d)$/m.exec(text)?.[1];
}

test('the primary dies: a stream in flight finishes or is cut (never mixed); reads move to the backup byte for byte, readiness degraded, uploads 503; the primary returns: half-open, then closed', async (t) => {
  // Primary healthy.
  for (const [name, body] of Object.entries(files)) {
    const got = await download(name);
    assert.equal(got.status, 200);
    assert.ok(got.body.equals(body), `${name} from the primary`);
  }
  assert.deepEqual(await (await fetch(`${ferry.url}/readyz`)).json(), { status: 'ready' });
  assert.equal(await circuitMetric(), '0');

  // A download in flight from the primary when the object store is killed (SIGKILL, by PID).
  const res = await fetch(`${ferry.url}/files/inflight.bin`);
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  const first = await reader.read();
  if (!first.done) chunks.push(first.value);
  await s3.kill();
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
  const got = Buffer.concat(chunks);
  t.diagnostic(`in-flight stream: ${cut ? 'cut' : 'finished'} after ${got.length} of ${inflight.bucket.length} bytes`);
  if (cut) assert.ok(got.length < inflight.bucket.length && got.equals(inflight.bucket.subarray(0, got.length)), 'a cut stream holds bytes of the primary only');
  else assert.ok(got.equals(inflight.bucket), 'a finished stream is the primary version, whole');

  for (let i = 0; i < 4; i++) {
    for (const [name, body] of Object.entries(files)) {
      const got = await download(name);
      assert.equal(got.status, 200, `${name} while the primary is down (round ${i})`);
      assert.ok(got.body.equals(body), `${name} byte-identical from the backup`);
    }
  }
  const opened = await waitForTransition('open', 5000);
  assert.equal(opened.level, 40, 'opening is a warning');
  assert.match(opened.reason ?? '', /failures/);
  const ready = await fetch(`${ferry.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.deepEqual(await ready.json(), { status: 'degraded', backend: 'primary' });
  assert.equal(await circuitMetric(), '2');
  const put = await fetch(`${ferry.url}/files/new.txt`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: 'x' });
  assert.equal(put.status, 503);
  await put.arrayBuffer();
  // A file only the primary holds is 404 while the backup serves (the mirror has no such file).
  assert.equal((await download('fresh.txt')).status, 404);

  // Same port, same data: the object store is back, with a file the mirror does not have.
  await s3.restart();
  await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: 'fresh.txt', Body: 'fresh\n' }));
  const closed = await probeAfterCooldown(ferry);
  assert.equal(closed.level, 30, 'closing is info');
  assert.deepEqual(transitions().map((t) => t.to), ['open', 'half-open', 'closed']);
  assert.equal(await circuitMetric(), '0');
  assert.deepEqual(await (await fetch(`${ferry.url}/readyz`)).json(), { status: 'ready' });
  const fresh = await download('fresh.txt');
  assert.equal(fresh.status, 200, 'served by the primary again');
  assert.equal(fresh.body.toString(), 'fresh\n');
  assert.ok((await download('movie.bin')).body.equals(movie));
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
