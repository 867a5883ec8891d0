/** The MetaStore conformance suite: every backend (embedded SQLite now, Redis later) passes it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEmbeddedMeta, type MetaStore } from '../../src/meta/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const BACKENDS: Array<{ name: string; open: (dir: string) => Promise<MetaStore> }> = [
  { name: 'embedded sqlite', open: (dir) => createEmbeddedMeta(dir) },
];

for (const backend of BACKENDS) {
  test(`${backend.name}: get/set/delete, JSON values, namespaces are separate`, async (t) => {
    const tmp = await makeTempDir();
    t.after(tmp.remove);
    const meta = await backend.open(tmp.dir);
    t.after(() => meta.close());
    assert.equal(await meta.get('a', 'k'), undefined);
    await meta.set('a', 'k', { n: 1, s: '季度' });
    await meta.set('b', 'k', 2);
    assert.deepEqual(await meta.get('a', 'k'), { n: 1, s: '季度' });
    assert.equal(await meta.get('b', 'k'), 2);
    await meta.set('a', 'k', 3);
    assert.equal(await meta.get('a', 'k'), 3);
    assert.equal(await meta.delete('a', 'k'), true);
    assert.equal(await meta.delete('a', 'k'), false);
    assert.equal(await meta.get('a', 'k'), undefined);
  });

  test(`${backend.name}: expiry and setIfAbsent`, async (t) => {
    const tmp = await makeTempDir();
    t.after(tmp.remove);
    const meta = await backend.open(tmp.dir);
    t.after(() => meta.close());
    await meta.set('x', 'short', 1, { ttlMs: 30 });
    assert.equal(await meta.get('x', 'short'), 1);
    await new Promise((r) => setTimeout(r, 60)); // waiting for wall-clock expiry is the behaviour under test
    assert.equal(await meta.get('x', 'short'), undefined);
    assert.equal(await meta.setIfAbsent('x', 'short', 2), true, 'an expired key counts as absent');
    assert.equal(await meta.setIfAbsent('x', 'short', 3), false);
    assert.equal(await meta.get('x', 'short'), 2);
  });

  test(`${backend.name}: list is ordered and pages with after`, async (t) => {
    const tmp = await makeTempDir();
    t.after(tmp.remove);
    const meta = await backend.open(tmp.dir);
    t.after(() => meta.close());
    for (const k of ['c', 'a', 'e', 'b', 'd']) await meta.set('ns', k, k.toUpperCase());
    const first = await meta.list<string>('ns', { limit: 2 });
    assert.deepEqual(first.map((r) => r.key), ['a', 'b']);
    const rest = await meta.list<string>('ns', { after: 'b' });
    assert.deepEqual(rest.map((r) => [r.key, r.value]), [['c', 'C'], ['d', 'D'], ['e', 'E']]);
  });

  test(`${backend.name}: count counts the live keys of one namespace only`, async (t) => {
    const tmp = await makeTempDir();
    t.after(tmp.remove);
    const meta = await backend.open(tmp.dir);
    t.after(() => meta.close());
    assert.equal(await meta.count('c'), 0);
    for (const k of ['a', 'b', 'c']) await meta.set('c', k, k);
    await meta.set('c', 'a', 'again'); // overwriting does not add
    await meta.set('c-other', 'a', 1);
    await meta.set('c', 'short', 1, { ttlMs: 30 });
    assert.equal(await meta.count('c'), 4);
    assert.equal(await meta.count('c-other'), 1);
    await new Promise((r) => setTimeout(r, 60)); // waiting for wall-clock expiry is the behaviour under test
    assert.equal(await meta.count('c'), 3, 'an expired key is not counted');
    await meta.delete('c', 'b');
    assert.equal(await meta.count('c'), 2);
  });

  test(`${backend.name}: values survive close and reopen`, async (t) => {
    const tmp = await makeTempDir();
    t.after(tmp.remove);
    const a = await backend.open(tmp.dir);
    await a.set('p', 'k', [1, 2, 3]);
    await a.close();
    await a.close(); // idempotent
    const b = await backend.open(tmp.dir);
    t.after(() => b.close());
    assert.deepEqual(await b.get('p', 'k'), [1, 2, 3]);
  });
}
