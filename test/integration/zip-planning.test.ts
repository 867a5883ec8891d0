/**
 * Zip planning is bounded work (security hardening: "/zip planning has no concurrency limit",
 * "quadratic work on deep folders, not cancelled"):
 * - concurrent requests for one selection share one walk (old code: N walks, N × the CRC cache
 *   lookups counted below — the first test failed);
 * - a client that leaves while its archive is planned stops the planning (old code: the walk and
 *   layout went on; no `aborted` plan event, no log line — the second test failed);
 * - HEAD takes a transfer slot like GET (old code: answered 200 at once past the limit);
 * - entries held by plans are budgeted (old code: 200);
 * - a tree deeper than the path caps is refused before the first byte (old code: 200).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import { once } from 'node:events';
import { mkdir, open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CHANNEL_NAMES } from '../../src/core/channels.ts';
import { startServer, type TestServer } from '../helpers/start-server.ts';
import { waitFor } from '../unit/zip/zip-server-kit.ts';

const ZIP_PLAN_CHANNEL = 'ferry:zip:plan';

interface PlanEvent { kind: string; entries?: number; waiters: number }

/** Records plan events and CRC cache lookups; unsubscribes after the test. */
function watch(t: { after: (fn: () => void) => void }): { plans: PlanEvent[]; crcLookups: () => number; next: (kind: string) => Promise<PlanEvent> } {
  const plans: PlanEvent[] = [];
  let lookups = 0;
  const waiters: Array<{ kind: string; resolve: (e: PlanEvent) => void }> = [];
  const onPlan = (m: unknown): void => {
    const e = m as PlanEvent;
    plans.push(e);
    for (const w of waiters.splice(0)) { if (w.kind === e.kind) w.resolve(e); else waiters.push(w); }
  };
  const onCrc = (): void => { lookups++; };
  diagnosticsChannel.subscribe(ZIP_PLAN_CHANNEL, onPlan);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.zipCrc, onCrc);
  t.after(() => {
    diagnosticsChannel.unsubscribe(ZIP_PLAN_CHANNEL, onPlan);
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.zipCrc, onCrc);
  });
  return { plans, crcLookups: () => lookups, next: (kind) => new Promise((resolve) => { waiters.push({ kind, resolve }); }) };
}

/** `count` small files spread over folders of `perFolder`. */
async function makeTree(dir: string, count: number, perFolder: number): Promise<void> {
  for (let f = 0; f * perFolder < count; f++) {
    const sub = path.join(dir, `f${String(f).padStart(4, '0')}`);
    await mkdir(sub, { recursive: true });
    const n = Math.min(perFolder, count - f * perFolder);
    await Promise.all(Array.from({ length: n }, (_, i) => writeFile(path.join(sub, `${i}.txt`), `${f}/${i}`)));
  }
}

async function sparse(file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try { await fh.truncate(size); } finally { await fh.close(); }
}

/** A GET paused after its first chunk: the server holds its plan while the body waits. */
async function startPaused(url: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage }> {
  const req = http.get(url, { agent: false });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  assert.equal(res.statusCode, 200);
  await once(res, 'data');
  res.pause();
  return { req, res };
}

async function started(t: { after: (fn: () => Promise<void>) => void }, options: Record<string, unknown> = {}): Promise<TestServer> {
  const s = await startServer({ options });
  t.after(() => s.close());
  return s;
}

test('16 concurrent HEAD /zip/many on 20,000 files: one walk, one layout pass, same ETag and length', async (t) => {
  const s = await started(t);
  await makeTree(path.join(s.root, 'many'), 20_000, 500);
  const w = watch(t);
  const answers = await Promise.all(Array.from({ length: 16 }, async () => {
    const r = await fetch(`${s.url}/zip/many`, { method: 'HEAD' });
    return { status: r.status, etag: r.headers.get('etag'), length: r.headers.get('content-length') };
  }));
  assert.ok(answers.every((a) => a.status === 200), JSON.stringify(answers[0]));
  assert.equal(new Set(answers.map((a) => `${a.etag} ${a.length}`)).size, 1, 'one ETag and length');
  // Every request of the old code walked and looked up all 20,000 CRCs itself.
  const starts = w.plans.filter((e) => e.kind === 'started').length;
  t.diagnostic(`plans started: ${starts}, joined: ${w.plans.filter((e) => e.kind === 'joined').length}, CRC lookups: ${w.crcLookups()}`);
  assert.ok(w.crcLookups() <= 20_000 * starts, `${w.crcLookups()} CRC lookups for ${starts} plan(s)`);
  assert.ok(starts <= 2, `${starts} walks for 16 concurrent requests`);
});

test('a client that leaves during planning stops it: plan aborted, logged', async (t) => {
  const s = await started(t);
  await makeTree(path.join(s.root, 'big'), 4000, 40);
  const w = watch(t);
  const begun = w.next('started');
  const aborted = w.next('aborted');
  const req = http.get(`${s.url}/zip/big`, { agent: false });
  req.on('error', () => {});
  await begun;
  req.destroy();
  const e = await aborted;
  t.diagnostic(`aborted after ${e.entries} entries, ${w.crcLookups()} CRC lookups`);
  assert.ok(e.entries! < 4000, `stopped before the walk ended (${e.entries} entries)`);
  assert.equal(w.plans.filter((p) => p.kind === 'finished').length, 0);
  assert.ok(s.logs.some((l) => l.event === 'zip-plan' && l.outcome === 'aborted'));
});

test('HEAD /zip takes a transfer slot like GET (--limit-conn-global)', async (t) => {
  const s = await started(t, { limitConnGlobal: 1, queueTimeout: '300ms' });
  await sparse(path.join(s.root, 'big', 'big.bin'), 256 * 1024 * 1024);
  await writeFile(path.join(s.root, 'small.txt'), 'x');
  const held = await startPaused(`${s.url}/zip/big`);
  t.after(() => { held.req.destroy(); });
  const head = await fetch(`${s.url}/zip?path=small.txt`, { method: 'HEAD' });
  assert.equal(head.status, 503);
  assert.ok(head.headers.get('retry-after') !== null);
  held.req.destroy();
  // The slot comes back when the held download ends.
  await waitFor(() => s.logs.some((l) => l.event === 'zip' && l.selection === '/big' && l.outcome === 'aborted'), 5000, 'the held download to end');
  await waitFor(async () => (await fetch(`${s.url}/zip?path=small.txt`, { method: 'HEAD' })).status === 200, 5000, 'HEAD admitted');
});

test('--zip-plan-entries: plans held by downloads count; 503 while full, 413 for a selection larger than the budget', async (t) => {
  const s = await started(t, { zipPlanEntries: 1000 });
  await sparse(path.join(s.root, 'a', 'big.bin'), 256 * 1024 * 1024);
  await makeTree(path.join(s.root, 'a', 'more'), 599, 600);
  await makeTree(path.join(s.root, 'b'), 600, 600);
  await makeTree(path.join(s.root, 'c'), 1200, 600);
  const held = await startPaused(`${s.url}/zip/a`);
  t.after(() => { held.req.destroy(); });
  const busy = await fetch(`${s.url}/zip/b`, { method: 'HEAD' });
  assert.equal(busy.status, 503);
  assert.ok(busy.headers.get('retry-after') !== null);
  const busyGet = await fetch(`${s.url}/zip/b`);
  const problem = (await busyGet.json()) as { code: string; option: string; limit: number };
  assert.deepEqual([busyGet.status, problem.code, problem.option, problem.limit], [503, 'FERRY_ERR_LIMIT_GLOBAL', 'zip-plan-entries', 1000]);
  held.req.destroy();
  await waitFor(() => s.logs.some((l) => l.event === 'zip' && l.selection === '/a' && l.outcome === 'aborted'), 5000, 'the held download to end');
  await waitFor(async () => (await fetch(`${s.url}/zip/b`, { method: 'HEAD' })).status === 200, 5000, 'the entries to come back');
  // Alone, a selection larger than the whole budget can never fit: 413, not "retry later".
  const tooBig = await fetch(`${s.url}/zip/c`);
  assert.equal(tooBig.status, 413);
  const big = (await tooBig.json()) as { code: string; option: string };
  assert.deepEqual([big.code, big.option], ['FERRY_ERR_ZIP_TOO_MANY_ENTRIES', 'zip-plan-entries']);
});

test('a folder tree deeper than the path caps: 413 FERRY_ERR_ZIP_TOO_DEEP before the first byte', async (t) => {
  const s = await started(t);
  const levels = Array.from({ length: 140 }, (_, i) => `l${i}`);
  await mkdir(path.join(s.root, 'deep', ...levels), { recursive: true });
  await writeFile(path.join(s.root, 'deep', ...levels, 'bottom.txt'), 'x');
  await writeFile(path.join(s.root, 'deep', 'top.txt'), 'x');
  for (const method of ['GET', 'HEAD']) {
    const r = await fetch(`${s.url}/zip/deep`, { method });
    assert.equal(r.status, 413, method);
    if (method === 'GET') {
      const p = (await r.json()) as { code: string; detail: string; maxSegments: number };
      assert.equal(p.code, 'FERRY_ERR_ZIP_TOO_DEEP');
      assert.match(p.detail, /128 segments/);
    }
  }
  // The shallow parts of the same tree are fine.
  assert.equal((await fetch(`${s.url}/zip?path=deep/top.txt&path=deep/l0/l1`, { method: 'HEAD' })).status, 413, 'l0/l1 holds the deep chain');
  assert.equal((await fetch(`${s.url}/zip?path=deep/top.txt`, { method: 'HEAD' })).status, 200);
});
