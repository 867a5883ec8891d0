import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { AdmissionQueue, MemoryLimitStore, type AdmissionRequest } from '../../../src/limits/index.ts';
import { CHANNEL_NAMES, FerryError, type LimitEvent } from '../../../src/core/index.ts';

function setup(timeoutMs = 5_000, maxWaiting = 100) {
  const store = new MemoryLimitStore();
  const queue = new AdmissionQueue({ store, timeoutMs, maxWaiting });
  const req = (client: string, priority = 0, clientLimit = 100, globalLimit = 1): AdmissionRequest => ({
    priority, clientSlotIndex: 0, slots: [{ key: `c:${client}`, limit: clientLimit }, { key: 'g', limit: globalLimit }],
  });
  return { store, queue, req };
}

const never = new AbortController().signal;

test('priority first (admin > write > read > anonymous), then arrival', async () => {
  const { queue, req } = setup();
  const first = await queue.admit(req('x', 0), never);
  const order: string[] = [];
  // Each grant records itself and releases at once, so the next waiter can go.
  const wait = (name: string, priority: number) => queue.admit(req(name, priority), never).then((release) => { order.push(name); release(); });
  const all = [wait('anon-early', 0), wait('reader', 1), wait('anon-late', 0), wait('writer', 2), wait('admin', 3)];
  assert.equal(queue.length, 5);
  first();
  await Promise.all(all);
  assert.deepEqual(order, ['admin', 'writer', 'reader', 'anon-early', 'anon-late']);
  assert.equal(queue.length, 0);
});

test('a waiter held back by its own client limit does not block other clients', async () => {
  const { queue, req } = setup();
  const a1 = await queue.admit(req('a', 0, 1, 10), never);
  const a2 = queue.admit(req('a', 0, 1, 10), never);
  const b1 = await queue.admit(req('b', 0, 1, 10), never);
  assert.equal(queue.length, 1);
  a1();
  const a2release = await a2;
  a2release();
  b1();
});

test('past the timeout: 503 when the global limit held it, 429 for the client limit, with Retry-After', async () => {
  const events: LimitEvent[] = [];
  const onEvent = (m: unknown): void => { events.push(m as LimitEvent); };
  diagnosticsChannel.subscribe(CHANNEL_NAMES.limit, onEvent);
  try {
    const { queue, req } = setup(150);
    const held = await queue.admit(req('a', 0, 1, 1), never);
    const t0 = performance.now();
    await assert.rejects(queue.admit(req('b', 0, 5, 1), never), (err: unknown) => {
      assert.ok(err instanceof FerryError);
      assert.equal(err.code, 'FERRY_ERR_LIMIT_GLOBAL');
      assert.equal(err.statusCode, 503);
      assert.equal(err.headers['retry-after'], '1');
      return true;
    });
    assert.ok(performance.now() - t0 >= 140, 'it waited for the timeout');
    await assert.rejects(queue.admit(req('a', 0, 1, 5), never), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_LIMIT_CLIENT' && err.statusCode === 429 && err.headers['retry-after'] === '1');
    held();
    assert.equal(queue.length, 0);
  } finally {
    diagnosticsChannel.unsubscribe(CHANNEL_NAMES.limit, onEvent);
  }
  assert.deepEqual(events.filter((e) => e.kind === 'rejected').map((e) => e.reason), ['global-timeout', 'client-timeout']);
  assert.equal(events.filter((e) => e.kind === 'queued').length, 2);
});

test('a waiter whose client goes away leaves the queue and frees its place', async () => {
  const { queue, req, store } = setup(5_000, 1);
  const held = await queue.admit(req('a'), never);
  const ac = new AbortController();
  const gone = queue.admit(req('b'), ac.signal);
  // The queue holds one: a second waiter is refused at once.
  await assert.rejects(queue.admit(req('c'), never), (err: unknown) => err instanceof FerryError && err.code === 'FERRY_ERR_LIMIT_GLOBAL');
  ac.abort(new Error('client went away'));
  await assert.rejects(gone, /client went away/);
  assert.equal(queue.length, 0);
  const next = queue.admit(req('d'), never);
  assert.equal(queue.length, 1, 'the freed place is taken by the next one');
  held();
  const release = await next;
  assert.equal(store.held('g'), 1, 'the aborted waiter never took a slot');
  release();
  release();
  assert.equal(store.held('g'), 0, 'release is idempotent');
});

test('no slots configured: admitted at once; queueSize 0 / timeout 0: refused at once', async () => {
  const { queue } = setup();
  const r = await queue.admit({ priority: 0, slots: [], clientSlotIndex: -1 }, never);
  r();
  const { queue: q0, req } = setup(1000, 0);
  const held = await q0.admit(req('a'), never);
  await assert.rejects(q0.admit(req('b'), never), (err: unknown) => err instanceof FerryError && err.statusCode === 503);
  held();
  const ac = new AbortController();
  ac.abort(new Error('already gone'));
  await assert.rejects(q0.admit(req('c'), ac.signal), /already gone/);
});
