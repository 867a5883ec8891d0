/**
 * The one-writer lock: a second acquirer asks the holder to let go and waits a bounded time;
 * never two holders; 423 when the holder does not let go; waiters served in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FerryError } from '../../../src/core/errors.ts';
import { createInProcessUploadLocker } from '../../../src/uploads/upload-lock.ts';

test('a second acquire asks the holder to release and gets the lock when it does', async () => {
  const locker = createInProcessUploadLocker();
  let asked = 0;
  const first = await locker.acquire('u', { waitMs: 1000, onReleaseRequested: () => { asked++; void first.release(); } });
  const second = await locker.acquire('u', { waitMs: 1000 });
  assert.equal(asked, 1);
  assert.equal(locker.isLocked('u'), true);
  await second.release();
  await second.release(); // idempotent
  assert.equal(locker.isLocked('u'), false);
});

test('a holder that does not let go → 423 after waitMs; the holder keeps it', async () => {
  const locker = createInProcessUploadLocker();
  let asked = false;
  const holder = await locker.acquire('u', { waitMs: 0, onReleaseRequested: () => { asked = true; } });
  const t0 = Date.now();
  await assert.rejects(locker.acquire('u', { waitMs: 100 }), (e: unknown) => e instanceof FerryError && e.statusCode === 423 && e.code === 'FERRY_ERR_UPLOAD_LOCKED');
  assert.ok(Date.now() - t0 >= 90);
  assert.equal(asked, true);
  // Still exclusively held: a third acquirer waits for the real release.
  const third = locker.acquire('u', { waitMs: 1000 });
  await holder.release();
  const lock3 = await third;
  assert.equal(lock3.key, 'u');
  await lock3.release();
});

test('polite acquire with waitMs 0 never disturbs the holder (expiry sweeper)', async () => {
  const locker = createInProcessUploadLocker();
  let asked = false;
  const holder = await locker.acquire('u', { waitMs: 0, onReleaseRequested: () => { asked = true; } });
  await assert.rejects(locker.acquire('u', { waitMs: 0, polite: true }), /being written/);
  assert.equal(asked, false);
  await holder.release();
});

test('waiters are served in order, one at a time; an aborted waiter leaves the queue', async () => {
  const locker = createInProcessUploadLocker();
  const order: string[] = [];
  let inside = 0;
  const holder = await locker.acquire('u', { waitMs: 0 });
  const ac = new AbortController();
  const aborted = locker.acquire('u', { waitMs: 5000, signal: ac.signal });
  const workers = ['a', 'b', 'c'].map(async (name) => {
    const lock = await locker.acquire('u', { waitMs: 5000 });
    inside++;
    assert.equal(inside, 1, 'never two holders');
    order.push(name);
    await new Promise((r) => setImmediate(r));
    inside--;
    await lock.release();
  });
  ac.abort(new Error('client gone'));
  await assert.rejects(aborted, /client gone/);
  await holder.release();
  await Promise.all(workers);
  assert.deepEqual(order, ['a', 'b', 'c']);
  assert.equal(locker.isLocked('u'), false);
});

test('different keys do not contend', async () => {
  const locker = createInProcessUploadLocker();
  const a = await locker.acquire('a', { waitMs: 0 });
  const b = await locker.acquire('b', { waitMs: 0 });
  await a.release();
  await b.release();
});
