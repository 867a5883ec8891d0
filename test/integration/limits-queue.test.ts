/**
 * Concurrency limits and the wait queue on a real server (SPEC §2.4): downloads over the
 * global limit wait; an admin is served before an anonymous client that came earlier; a
 * waiting client that disconnects frees its place; past --queue-timeout the answer is 503
 * (global) or 429 (per client) with Retry-After; the API's request rate answers 429.
 * Downloads hold their slot by not reading (backpressure on a large sparse file) and release
 * it by aborting, so nothing here depends on timing except the timeouts under test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { hashToken } from '../../src/auth/index.ts';

const ADMIN = 'Bearer queue-admin';

async function sparse(file: string, sizeBytes: number): Promise<void> {
  const fh = await open(file, 'w');
  await fh.truncate(sizeBytes);
  await fh.close();
}

async function server(t: { after: (fn: () => Promise<void>) => void }, options: Record<string, unknown>): Promise<TestServer> {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'boss', role: 'admin', sha256: hashToken('queue-admin') }]));
  const s = await startServer({ options: { anonymous: 'read', tokensFile, ...options } });
  t.after(() => s.close());
  await mkdir(s.root, { recursive: true });
  await sparse(path.join(s.root, 'big.bin'), 1024 * 1024 * 1024);
  return s;
}

interface Download { name: string; ac: AbortController; response: Promise<Response>; settled: boolean }

function download(s: TestServer, name: string, authorization?: string): Download {
  const ac = new AbortController();
  const d: Download = {
    name, ac, settled: false,
    response: fetch(`${s.url}/files/big.bin`, { signal: ac.signal, headers: authorization === undefined ? {} : { authorization } }),
  };
  d.response.then(() => { d.settled = true; }, () => { d.settled = true; });
  return d;
}

async function queueLength(s: TestServer): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = /^ferry_limit_queue_length (\d+)/m.exec(text);
  return m === null ? 0 : Number(m[1]);
}

/** Polls the queue-length gauge until it reads `n` (bounded: 5 s). */
async function untilQueued(s: TestServer, n: number): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if ((await queueLength(s)) === n) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.fail(`queue length never reached ${n} (is ${await queueLength(s)})`);
}

test('global limit 2: the 3rd and 4th wait, admin first, a leaver frees its place, the queue is bounded', async (t) => {
  const s = await server(t, { limitConnGlobal: 2, queueSize: 3, queueTimeout: '20s' });
  const all: Download[] = [];
  t.after(() => { for (const d of all) d.ac.abort(); });
  const start = (name: string, auth?: string): Download => { const d = download(s, name, auth); all.push(d); return d; };

  const d1 = start('anon-1');
  const d2 = start('anon-2');
  assert.equal((await d1.response).status, 200);
  assert.equal((await d2.response).status, 200);

  const d3 = start('anon-3');
  await untilQueued(s, 1);
  const d4 = start('anon-4');
  await untilQueued(s, 2);
  const d5 = start('admin-5', ADMIN);
  await untilQueued(s, 3);
  assert.equal(d3.settled || d4.settled || d5.settled, false, 'the 3rd, 4th and 5th wait');

  // The queue holds 3: the next one is refused at once.
  const full = await fetch(`${s.url}/files/big.bin`);
  assert.equal(full.status, 503);
  assert.ok(Number(full.headers.get('retry-after')) >= 1);
  assert.equal(((await full.json()) as { code: string }).code, 'FERRY_ERR_LIMIT_GLOBAL');

  // A waiting client that goes away leaves the queue; its place goes to the next one.
  d4.ac.abort();
  await untilQueued(s, 2);
  const d6 = start('anon-6');
  await untilQueued(s, 3);

  // One slot frees: the admin, who came after anon-3, is served first.
  d1.ac.abort();
  assert.equal((await d5.response).status, 200);
  await untilQueued(s, 2);
  assert.equal(d3.settled, false, 'anon-3 still waits');

  // The next slot goes to the earlier anonymous client.
  d2.ac.abort();
  assert.equal((await d3.response).status, 200);
  await untilQueued(s, 1);
  assert.equal(d6.settled, false);
  d5.ac.abort();
  assert.equal((await d6.response).status, 200);
  await untilQueued(s, 0);
});

test('past the queue timeout: 503 for the global limit, 429 for the per-client limit, both with Retry-After', async (t) => {
  const g = await server(t, { limitConnGlobal: 1, queueTimeout: '400ms' });
  const holder = download(g, 'holder');
  t.after(() => holder.ac.abort());
  assert.equal((await holder.response).status, 200);
  const t0 = performance.now();
  const late = await fetch(`${g.url}/files/big.bin`);
  const waited = performance.now() - t0;
  assert.equal(late.status, 503);
  assert.equal(late.headers.get('retry-after'), '1');
  assert.match(late.headers.get('content-type') ?? '', /problem\+json/);
  assert.equal(((await late.json()) as { code: string }).code, 'FERRY_ERR_LIMIT_GLOBAL');
  assert.ok(waited >= 380, `answered after ${waited} ms, before the queue timeout`);
  // HEAD moves no body and needs no slot.
  assert.equal((await fetch(`${g.url}/files/big.bin`, { method: 'HEAD' })).status, 200);

  const c = await server(t, { limitConnClient: 1, queueTimeout: '300ms' });
  const mine = download(c, 'mine');
  t.after(() => mine.ac.abort());
  assert.equal((await mine.response).status, 200);
  const second = await fetch(`${c.url}/files/big.bin`);
  assert.equal(second.status, 429);
  assert.equal(second.headers.get('retry-after'), '1');
  assert.equal(((await second.json()) as { code: string }).code, 'FERRY_ERR_LIMIT_CLIENT');
  // Another client (an admin token is its own client) is not held back by this one's limit.
  const other = download(c, 'admin', ADMIN);
  t.after(() => other.ac.abort());
  assert.equal((await other.response).status, 200);
});

test('requests per second per client on the API: over the rate and the queue timeout → 429 with Retry-After', async (t) => {
  const s = await server(t, { limitReqClient: 3, queueTimeout: '0s' });
  const statuses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const res = await fetch(`${s.url}/api/list/`);
    statuses.push(res.status);
    if (res.status === 429) {
      assert.ok(Number(res.headers.get('retry-after')) >= 1);
      assert.equal(((await res.json()) as { code: string }).code, 'FERRY_ERR_LIMIT_RATE');
    } else {
      await res.arrayBuffer();
    }
  }
  assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
  // Downloads and health checks are not counted as API requests.
  assert.equal((await fetch(`${s.url}/healthz`)).status, 200);
  const head = await fetch(`${s.url}/files/big.bin`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  // The admin token is another client with its own budget.
  assert.equal((await fetch(`${s.url}/api/list/`, { headers: { authorization: ADMIN } })).status, 200);
});
