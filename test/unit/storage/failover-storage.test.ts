/**
 * FailoverStorage over two real LocalStorage folders. The primary sits behind a switch that
 * makes every call fail as an unavailable store would (fault injection: a local disk cannot
 * be made "unreachable" on demand). Clock injected.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { FerryError } from '../../../src/core/errors.ts';
import { parseDecodedPath, type SafePath } from '../../../src/core/safe-path.ts';
import { FailoverStorage, LocalStorage, type BreakerTransition, type Storage } from '../../../src/storage/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

/** A real local store that answers 503 like an unreachable one while `down` is set. */
function switchable(inner: LocalStorage): { storage: Storage; setDown(v: boolean): void; calls: () => number } {
  let down = false;
  let calls = 0;
  const fail = (): never => { throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'injected: primary down'); };
  const gate = (): void => { calls++; if (down) fail(); };
  const storage: Storage = {
    stat: async (p) => { gate(); return inner.stat(p); },
    open: async (p) => { gate(); return inner.open(p); },
    list: async (p, o) => { gate(); return inner.list(p, o); },
    walk: async function* (p, o) { gate(); yield* inner.walk(p, o); },
    check: async () => { gate(); await inner.check(); },
    staging: inner.staging,
    publish: async (src, p, mode, o) => { gate(); return inner.publish(src, p, mode, o); },
    remove: async (p, o) => { gate(); return inner.remove(p, o); },
    entryType: async (p, o) => { gate(); return inner.entryType(p, o); },
  };
  return { storage, setDown(v) { down = v; }, calls: () => calls };
}

async function setup(t: { after: (fn: () => Promise<void>) => void }) {
  const tmp = await makeTempDir();
  t.after(tmp.remove);
  const roots = { primary: path.join(tmp.dir, 'p'), backup: path.join(tmp.dir, 'b') };
  for (const [name, root] of Object.entries(roots)) {
    await mkdir(path.join(root, 'docs'), { recursive: true });
    await writeFile(path.join(root, 'docs', 'a.txt'), `${name}\n`);
  }
  await writeFile(path.join(roots.backup, 'only-in-backup.txt'), 'stale\n');
  const opts = { dotfiles: 'deny', followSymlinks: 'inside' } as const;
  const primary = switchable(await LocalStorage.create({ root: roots.primary, ...opts }));
  const backup = await LocalStorage.create({ root: roots.backup, ...opts });
  let now = 1_000;
  const transitions: string[] = [];
  const storage = new FailoverStorage({
    primary: primary.storage, backup, failureThreshold: 2, failureWindowMs: 1000, cooldownMs: 500,
    now: () => now, onTransition: (tr: BreakerTransition) => { transitions.push(`${tr.from}>${tr.to}`); },
  });
  return { storage, primary, transitions, advance: (ms: number) => { now += ms; } };
}

const P = (s: string): SafePath => parseDecodedPath(s);

async function readAll(storage: Storage, p: string): Promise<string> {
  const h = await storage.open(P(p));
  try {
    return await text(h.openRead());
  } finally {
    await h.close();
  }
}

test('reads go to the primary while it answers; a 404 there is a 404 (the backup is not asked)', async (t) => {
  const { storage, transitions } = await setup(t);
  assert.equal(await readAll(storage, 'docs/a.txt'), 'primary\n');
  await assert.rejects(storage.stat(P('only-in-backup.txt')), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_PATH_NOT_FOUND');
  await assert.rejects(storage.open(P('only-in-backup.txt')), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_PATH_NOT_FOUND');
  assert.equal(await storage.check(), undefined);
  assert.deepEqual(transitions, []);
});

test('an unavailable primary: the same read is retried on the backup; the breaker opens, writes answer 503, then the primary is taken back', async (t) => {
  const { storage, primary, transitions, advance } = await setup(t);
  primary.setDown(true);
  assert.equal(await readAll(storage, 'docs/a.txt'), 'backup\n', 'failed over within the same request');
  assert.equal(storage.state, 'closed');
  assert.equal((await storage.list(P('docs'), { limit: 10 })).entries[0]?.name, 'a.txt');
  assert.equal(storage.state, 'open');
  assert.deepEqual(transitions, ['closed>open']);

  // Open: straight to the backup (the primary is not called), readiness degraded, writes 503.
  const before = primary.calls();
  assert.equal((await storage.stat(P('docs/a.txt'))).type, 'file');
  const walked = [];
  for await (const e of storage.walk(P('docs'))) walked.push(e.relative);
  assert.deepEqual(walked, ['a.txt']);
  assert.equal(primary.calls(), before);
  assert.deepEqual(await storage.check(), { degraded: 'primary' });
  await assert.rejects(storage.entryType(P('docs')), (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_STORAGE_UNAVAILABLE' && e.headers['retry-after'] === '1');
  await assert.rejects(storage.remove(P('docs/x')), (e: unknown) => e instanceof FerryError && e.statusCode === 503);

  // Cool-down over while still down: the probe fails and the breaker opens again.
  advance(500);
  assert.equal(await readAll(storage, 'docs/a.txt'), 'backup\n');
  assert.deepEqual(transitions, ['closed>open', 'open>half-open', 'half-open>open']);

  // Primary back: after the cool-down the probe succeeds and the primary serves again.
  primary.setDown(false);
  advance(500);
  assert.equal(await readAll(storage, 'docs/a.txt'), 'primary\n');
  assert.deepEqual(transitions.slice(3), ['open>half-open', 'half-open>closed']);
  assert.equal(await storage.check(), undefined);
  assert.equal(await storage.entryType(P('docs')), 'directory');
});

test('a walk that fails before its first entry falls over; a 404 walk does not', async (t) => {
  const { storage, primary } = await setup(t);
  primary.setDown(true);
  const walked = [];
  for await (const e of storage.walk(P(''))) walked.push(e.relative);
  assert.ok(walked.includes('only-in-backup.txt'), 'served by the backup');
  primary.setDown(false);
  await assert.rejects(async () => { for await (const _ of storage.walk(P('missing'))) { /* nothing */ } }, (e: unknown) => e instanceof FerryError && e.code === 'FERRY_ERR_PATH_NOT_FOUND');
});
