/**
 * Faults from the object store: real Ferry (`--storage s3`, a child process) → a fault proxy
 * (test/helpers/s3-fault-proxy.ts) → the S3 test server (s3rver). Each case arms faults on
 * the proxy, downloads with a real client (curl, or node:http where the test must know when
 * bytes reached the client) and checks what the proxy saw: which requests, which ranges, when.
 *
 * How these failed before the S3 read path retried and continued (commit 16bb26a, run without
 * the two timeout options, which did not exist): a body that reset before the first byte
 * gave a 200 header and a cut body (curl status 0 / exit 18); a reset after bytes reached the
 * client was never continued (the download was cut); a store that kept answering 500 or
 * SlowDown gave a 200 header and a cut body instead of a 502/503 problem+json. The first case
 * (500 and SlowDown once each) passed already: the SDK's default retries handled it; it stays
 * as the guard that the wiring keeps them (and the HEAD of `open` retried). A client that
 * left while the store hung kept the store request open for good (both abort cases).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.ts';
import { startS3FaultProxy, type ProxyRequest, type S3FaultProxy } from '../helpers/s3-fault-proxy.ts';
import { startChildServer, type ChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const run = promisify(execFile);
const SIZE = 300_000;
/** Short timeouts so stalls are found fast (the defaults are 5 s each). */
const IDLE_TIMEOUT_MS = 400;
const READ_TIMEOUT_MS = 800;

let s3: S3TestServer;
let proxy: S3FaultProxy;
let ferry: ChildServer;
let tmp: { dir: string; remove: () => Promise<void> };

/** Deterministic content per name (sha256 counter stream), so failures are reproducible. */
function contentOf(name: string, size = SIZE): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0, off = 0; off < size; i++) off += createHash('sha256').update(`${name}:${i}`).digest().copy(out, off);
  return out;
}

const NAMES = ['retry-5xx.bin', 'retry-early.bin', 'resume.bin', 'changed.bin', 'persistent.bin', 'abort.bin', 'abort-mid.bin'] as const;

before(async () => {
  tmp = await makeTempDir();
  s3 = await startS3Server();
  const client = s3.client();
  for (const name of NAMES) await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `media/${name}`, Body: contentOf(name) }));
  proxy = await startS3FaultProxy(s3.endpoint, s3.bucket);
  ferry = await startChildServer([
    '--storage', 's3', '--s3-bucket', s3.bucket, '--s3-endpoint', proxy.endpoint, '--s3-path-style', '--s3-prefix', 'media',
    '--s3-timeout', `${READ_TIMEOUT_MS}ms`, '--s3-idle-timeout', `${IDLE_TIMEOUT_MS}ms`,
  ], { env: s3.env });
});

after(async () => {
  await ferry?.[Symbol.asyncDispose]();
  await proxy?.close();
  await s3?.close();
  await tmp?.remove();
});

interface CurlResult { status: number; headers: Record<string, string>; body: Buffer; exitCode: number }

/** One curl GET; the exit code is kept (18 = the body was cut short). */
async function curl(url: string, args: string[] = []): Promise<CurlResult> {
  const out = path.join(tmp.dir, `body-${Math.random().toString(16).slice(2)}`);
  let stdout: string;
  let exitCode = 0;
  try {
    ({ stdout } = await run('curl', ['-sS', '-D', '-', '-o', out, ...args, url], { encoding: 'utf8' }));
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    exitCode = e.code ?? -1;
    stdout = e.stdout ?? '';
  }
  const lines = stdout.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines.slice(1)) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const body = await readFile(out).catch(() => Buffer.alloc(0));
  return { status: Number(lines[0]?.split(' ')[1] ?? 0), headers, body, exitCode };
}

/** GETs of `key` the proxy saw since `since`. */
function getsOf(key: string, since: number): ProxyRequest[] {
  return proxy.requests.filter((r) => r.seq > since && r.method === 'GET' && r.key === `media/${key}`);
}

const last = (): number => proxy.requests.length;

test('500 InternalError and 503 SlowDown before the first byte: retried with backoff, Retry-After honoured, byte-identical', async () => {
  const name = 'retry-5xx.bin';
  const since = last();
  proxy.inject({ method: 'HEAD', key: `media/${name}`, times: 1, fault: { kind: '500' } });
  proxy.inject({ method: 'GET', key: `media/${name}`, times: 1, fault: { kind: '500' } });
  proxy.inject({ method: 'GET', key: `media/${name}`, times: 1, fault: { kind: '503', retryAfter: '1' } });
  const r = await curl(`${ferry.url}/files/${name}`);
  assert.equal(r.status, 200);
  assert.equal(r.exitCode, 0);
  assert.ok(r.body.equals(contentOf(name)), 'byte-identical');
  const heads = proxy.requests.filter((q) => q.seq > since && q.method === 'HEAD');
  assert.deepEqual(heads.map((q) => q.fault), ['500', 'pass'], 'the HEAD (open) was retried too');
  const gets = getsOf(name, since);
  assert.deepEqual(gets.map((q) => q.fault), ['500', '503', 'pass']);
  assert.deepEqual(new Set(gets.map((q) => q.range)), new Set([`bytes=0-${SIZE - 1}`]), 'every attempt asks for the same range');
  // SlowDown said Retry-After: 1; the SDK waits at least that long (within its cap).
  assert.ok(gets[2]!.at - gets[1]!.at >= 950, `retry after ${Math.round(gets[2]!.at - gets[1]!.at)} ms`);
});

test('a reset or a stall of the body before any byte reached the client: a fresh ranged GET, byte-identical', async () => {
  const name = 'retry-early.bin';
  const since = last();
  proxy.inject({ method: 'GET', key: `media/${name}`, times: 1, fault: { kind: 'reset', afterBytes: 0 } });
  proxy.inject({ method: 'GET', key: `media/${name}`, times: 1, fault: { kind: 'stall', afterBytes: 0 } });
  const r = await curl(`${ferry.url}/files/${name}`);
  assert.equal(r.status, 200);
  assert.equal(r.exitCode, 0);
  assert.ok(r.body.equals(contentOf(name)), 'byte-identical');
  const gets = getsOf(name, since);
  assert.deepEqual(gets.map((q) => q.fault), ['reset', 'stall', 'pass']);
  assert.deepEqual(gets.map((q) => q.range), gets.map(() => `bytes=0-${SIZE - 1}`));
  const detectedMs = gets[2]!.at - gets[1]!.at;
  assert.ok(detectedMs >= IDLE_TIMEOUT_MS - 50 && detectedMs < IDLE_TIMEOUT_MS + 2500, `stall found after ${Math.round(detectedMs)} ms`);
});

/** A GET with node:http that records when the first body bytes arrived at the client. */
function download(url: string): Promise<{ status: number; body: Buffer; firstByteAt: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      const chunks: Buffer[] = [];
      let firstByteAt = Number.NaN;
      res.on('data', (c: Buffer) => { if (chunks.length === 0) firstByteAt = performance.now(); chunks.push(c); });
      const done = (): void => { resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), firstByteAt, complete: res.complete }); };
      res.on('end', done);
      res.on('error', done);
      res.on('aborted', done);
    });
    req.on('error', reject);
  });
}

test('a reset, then a stall, after bytes reached the client: continued from the exact offset (If-Match), byte-identical', async () => {
  const name = 'resume.bin';
  const since = last();
  proxy.inject({ method: 'GET', key: `media/${name}`, range: /^bytes=0-/, times: 1, fault: { kind: 'reset', afterBytes: 100_000 } });
  proxy.inject({ method: 'GET', key: `media/${name}`, range: /^bytes=100000-/, times: 1, fault: { kind: 'stall', afterBytes: 50_000 } });
  const r = await download(`${ferry.url}/files/${name}`);
  assert.equal(r.status, 200);
  assert.ok(r.complete);
  assert.ok(r.body.equals(contentOf(name)), 'byte-identical');
  const gets = getsOf(name, since);
  assert.deepEqual(gets.map((q) => `${q.fault} ${q.range}`), [
    `reset bytes=0-${SIZE - 1}`, `stall bytes=100000-${SIZE - 1}`, `pass bytes=150000-${SIZE - 1}`,
  ]);
  assert.ok(r.firstByteAt < gets[1]!.at, 'the client had bytes before the first continuation was asked for');
});

test('the object changes between two attempts: the response is cut, never mixed', async () => {
  const name = 'changed.bin';
  const old = contentOf(name);
  const replacement = contentOf('another version');
  const since = last();
  proxy.inject({ method: 'GET', key: `media/${name}`, range: /^bytes=0-/, times: 1, fault: { kind: 'reset', afterBytes: 100_000 } });
  // The continuation is held until the object was replaced (same size, other bytes).
  proxy.inject({
    method: 'GET', key: `media/${name}`, range: /^bytes=100000-/, times: 1,
    fault: { kind: 'forward', before: async () => { await s3.client().send(new PutObjectCommand({ Bucket: s3.bucket, Key: `media/${name}`, Body: replacement })); } },
  });
  const r = await download(`${ferry.url}/files/${name}`);
  assert.equal(r.status, 200);
  assert.equal(r.complete, false, 'cut');
  assert.ok(r.body.length > 0 && r.body.length <= 100_000, `got ${r.body.length} bytes`);
  assert.ok(r.body.equals(old.subarray(0, r.body.length)), 'only bytes of the version the answer started with');
  assert.deepEqual(getsOf(name, since).map((q) => q.fault), ['reset', 'forward'], 'no further attempt on a changed object');
  await ferry.waitForLine((l) => l.includes('download failed after the response started') && l.includes('FERRY_ERR_STORAGE_CHANGED'));
});

test('a persistent fault before the answer started: a clear 502 or 503 problem+json, after the retries', async () => {
  const name = 'persistent.bin';
  const url = `${ferry.url}/files/${name}`;
  const cases = [
    { fault: { kind: '500' }, times: 3, status: 502, code: 'FERRY_ERR_STORAGE_BAD_GATEWAY', detail: /answered 500 InternalError/, retryAfter: undefined },
    { fault: { kind: '503', retryAfter: '2' }, times: 3, status: 503, code: 'FERRY_ERR_STORAGE_UNAVAILABLE', detail: /answered 503 SlowDown/, retryAfter: '2' },
    { fault: { kind: 'stall', afterBytes: 0 }, times: 4, status: 503, code: 'FERRY_ERR_STORAGE_UNAVAILABLE', detail: /sent nothing for 400 ms/, retryAfter: '1' },
    { fault: { kind: 'hang' }, times: 3, status: 503, code: 'FERRY_ERR_STORAGE_UNAVAILABLE', detail: /did not answer in time/, retryAfter: '1' },
  ] as const;
  for (const c of cases) {
    const since = last();
    proxy.inject({ method: 'GET', key: `media/${name}`, times: c.times, fault: c.fault });
    const r = await curl(url);
    assert.equal(r.status, c.status, `${c.fault.kind}: ${r.body.toString()}`);
    assert.match(r.headers['content-type'] ?? '', /^application\/problem\+json/);
    const problem = JSON.parse(r.body.toString()) as { code: string; detail: string };
    assert.equal(problem.code, c.code);
    assert.match(problem.detail, c.detail);
    assert.equal(r.headers['retry-after'], c.retryAfter);
    assert.deepEqual(getsOf(name, since).map((q) => q.fault), Array.from({ length: c.times }, () => c.fault.kind), `${c.fault.kind}: every attempt, then no more`);
  }
  // The store is healthy again: the same file downloads whole.
  const ok = await curl(url);
  assert.equal(ok.status, 200);
  assert.ok(ok.body.equals(contentOf(name)));
});

test('a client that goes away aborts the store request at once (before the store answered)', async () => {
  // Failed before: the GET that hung was never aborted (the reader's stream waited for its
  // generator, which waited for the GET; there was no request timeout), so the store request
  // stayed open for good after the client left (the test timed out).
  const name = 'abort.bin';
  const since = last();
  proxy.inject({ method: 'GET', key: `media/${name}`, times: 1, fault: { kind: 'hang' } });
  const ac = new AbortController();
  const req = http.get(`${ferry.url}/files/${name}`, { signal: ac.signal });
  req.on('error', () => { /* the abort */ });
  const hung = await proxy.waitFor((r) => r.method === 'GET' && r.key === `media/${name}`, since);
  const abortedAt = performance.now();
  ac.abort();
  const closedAt = await proxy.waitClosed(hung.seq);
  assert.ok(closedAt - abortedAt < READ_TIMEOUT_MS / 2, `the store request closed ${Math.round(closedAt - abortedAt)} ms after the client left`);
});

test('a client that goes away mid-body aborts the store request in flight at once (a continuation that hangs)', async () => {
  // Failed before: the stream's destroy waited for the hung GET (Readable.from waits for its
  // generator), so the store request stayed open until the store answered or timed out.
  const name = 'abort-mid.bin';
  const since = last();
  proxy.inject({ method: 'GET', key: `media/${name}`, range: /^bytes=0-/, times: 1, fault: { kind: 'reset', afterBytes: 100_000 } });
  proxy.inject({ method: 'GET', key: `media/${name}`, range: /^bytes=100000-/, times: 1, fault: { kind: 'hang' } });
  const ac = new AbortController();
  let received = 0;
  const req = http.get(`${ferry.url}/files/${name}`, { signal: ac.signal }, (res) => { res.on('data', (c: Buffer) => { received += c.length; }); res.on('error', () => { /* the abort */ }); });
  req.on('error', () => { /* the abort */ });
  const hung = await proxy.waitFor((r) => r.method === 'GET' && r.key === `media/${name}` && r.fault === 'hang', since);
  const abortedAt = performance.now();
  ac.abort();
  const closedAt = await proxy.waitClosed(hung.seq);
  assert.ok(received > 0, 'the client had bytes');
  assert.ok(closedAt - abortedAt < READ_TIMEOUT_MS / 2, `the store request closed ${Math.round(closedAt - abortedAt)} ms after the client left`);
});
