/**
 * PlanFlights (src/zip/plan-flight.ts): single flight per key with reference counting, a
 * concurrency limit with a bounded FIFO wait, and an entry budget over all plans. Before it,
 * every request walked its selection itself, with no limit, and went on after its client left
 * (16 concurrent HEADs on a 100,000-file folder: 38 s, 1.2 GB RSS).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PlanFlights, type EntryBudget, type PlanFlightEvent } from '../../../src/zip/index.ts';
import { isFerryError } from '../../../src/core/index.ts';

/** A plan that runs until the test settles it, honouring its signal. */
function controllable(): { fn: (signal: AbortSignal, budget: EntryBudget) => Promise<string>; started: Promise<{ signal: AbortSignal; budget: EntryBudget }>; finish: (v: string) => void; calls: () => number } {
  let calls = 0;
  let onStart!: (s: { signal: AbortSignal; budget: EntryBudget }) => void;
  const started = new Promise<{ signal: AbortSignal; budget: EntryBudget }>((r) => { onStart = r; });
  let finish!: (v: string) => void;
  const result = new Promise<string>((r) => { finish = r; });
  const fn = (signal: AbortSignal, budget: EntryBudget): Promise<string> => {
    calls++;
    onStart({ signal, budget });
    return new Promise<string>((resolve, reject) => {
      signal.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
      void result.then(resolve);
    });
  };
  return { fn, started, finish, calls: () => calls };
}

function flights(o: { concurrency?: number; maxEntries?: number; queueTimeoutMs?: number } = {}): { f: PlanFlights<string>; events: PlanFlightEvent[] } {
  const events: PlanFlightEvent[] = [];
  const f = new PlanFlights<string>({ concurrency: o.concurrency ?? 2, maxEntries: o.maxEntries ?? 1000, queueTimeoutMs: o.queueTimeoutMs ?? 10_000, onEvent: (e) => events.push(e) });
  return { f, events };
}

test('concurrent requests for one key share one plan; all get the same value', async () => {
  const { f, events } = flights();
  const p = controllable();
  const leases = Array.from({ length: 16 }, () => f.acquire('k', new AbortController().signal, p.fn));
  await p.started;
  p.finish('plan');
  const got = await Promise.all(leases);
  assert.equal(p.calls(), 1);
  assert.deepEqual(got.map((l) => l.value), Array(16).fill('plan'));
  assert.equal(got.filter((l) => l.leader).length, 1);
  assert.deepEqual(events.map((e) => e.kind).sort(), ['finished', 'started', ...Array(15).fill('joined')].sort());
  for (const l of got) l.release();
  // After it settled, the next request plans afresh (a finished plan is not a cache).
  const q = controllable();
  const next = f.acquire('k', new AbortController().signal, q.fn);
  q.finish('again');
  assert.equal((await next).value, 'again');
});

test('the plan is aborted only when every waiter has left', async () => {
  const { f, events } = flights();
  const p = controllable();
  const a = new AbortController();
  const b = new AbortController();
  const la = f.acquire('k', a.signal, p.fn);
  const lb = f.acquire('k', b.signal, p.fn);
  const { signal } = await p.started;
  a.abort(new Error('a left'));
  await assert.rejects(la, /a left/);
  assert.equal(signal.aborted, false, 'b still waits');
  b.abort(new Error('b left'));
  await assert.rejects(lb, /b left/);
  assert.equal(signal.aborted, true);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.ok(events.some((e) => e.kind === 'aborted'));
  // A new request does not join the aborted plan.
  const q = controllable();
  const next = f.acquire('k', new AbortController().signal, q.fn);
  q.finish('fresh');
  assert.equal((await next).value, 'fresh');
});

test('at most `concurrency` plans run; the next waits its turn, or 503 after the queue timeout', async () => {
  const { f } = flights({ concurrency: 1, queueTimeoutMs: 50 });
  const p1 = controllable();
  const p2 = controllable();
  const l1 = f.acquire('one', new AbortController().signal, p1.fn);
  await p1.started;
  const l2 = f.acquire('two', new AbortController().signal, p2.fn);
  assert.equal(f.running, 1);
  assert.equal(f.queued, 1);
  await assert.rejects(l2, (err: unknown) => isFerryError(err) && err.code === 'FERRY_ERR_LIMIT_GLOBAL' && err.headers['retry-after'] === '1' && /zip-plan-concurrency/.test(err.message));
  assert.equal(p2.calls(), 0, 'never started');
  // Turns are handed on when a plan ends.
  const p3 = controllable();
  const l3 = f.acquire('three', new AbortController().signal, p3.fn);
  assert.equal(p3.calls(), 0);
  p1.finish('1');
  (await l1).release();
  await p3.started;
  p3.finish('3');
  assert.equal((await l3).value, '3');
  assert.equal(f.running, 0);
});

test('a queued plan whose waiters all left leaves the queue', async () => {
  const { f } = flights({ concurrency: 1 });
  const p1 = controllable();
  const l1 = f.acquire('one', new AbortController().signal, p1.fn);
  await p1.started;
  const gone = new AbortController();
  const l2 = f.acquire('two', gone.signal, controllable().fn);
  assert.equal(f.queued, 1);
  gone.abort(new Error('left'));
  await assert.rejects(l2, /left/);
  await new Promise<void>((resolve) => setImmediate(resolve));
  assert.equal(f.queued, 0);
  p1.finish('1');
  (await l1).release();
});

test('entry budget: shared by all plans until their last lease is released', async () => {
  const { f } = flights({ maxEntries: 100 });
  const sixty = async (_s: AbortSignal, budget: EntryBudget): Promise<string> => { for (let i = 0; i < 60; i++) budget.reserve(1); return 'ok'; };
  const first = await f.acquire('a', new AbortController().signal, sixty);
  assert.equal(f.reservedEntries, 60);
  // A second plan does not fit while the first is held (streaming): 503, retry later.
  await assert.rejects(f.acquire('b', new AbortController().signal, sixty),
    (err: unknown) => isFerryError(err) && err.code === 'FERRY_ERR_LIMIT_GLOBAL' && err.headers['retry-after'] !== undefined && err.extra.option === 'zip-plan-entries');
  assert.equal(f.reservedEntries, 60, 'the failed plan gave its entries back');
  first.release();
  first.release();
  assert.equal(f.reservedEntries, 0);
  const second = await f.acquire('b', new AbortController().signal, sixty);
  second.release();
  // A plan larger than the whole budget can never fit: 413, not "retry".
  const huge = async (_s: AbortSignal, budget: EntryBudget): Promise<string> => { budget.reserve(101); return 'no'; };
  await assert.rejects(f.acquire('c', new AbortController().signal, huge), (err: unknown) => isFerryError(err) && err.code === 'FERRY_ERR_ZIP_TOO_MANY_ENTRIES');
  assert.equal(f.reservedEntries, 0);
});
