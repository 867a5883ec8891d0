/**
 * A folder of 100,000 files (the figure): cursor paging returns every name exactly
 * once in order, a small page stays small, and nothing proportional to the folder is kept
 * (storage.list streams the directory with a bounded heap).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startServer } from '../helpers/start-server.ts';

// A real collection before each heap reading, so the figure is what stays reachable.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const COUNT = 100_000;

test('100,000 files: complete, ordered paging and small pages', { timeout: 300_000 }, async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const dir = path.join(s.root, 'huge');
  mkdirSync(dir, { recursive: true });
  const names: string[] = [];
  for (let i = 0; i < COUNT; i++) {
    // Not zero-padded, so code-unit order differs from numeric order (f-10 < f-9).
    const name = `f-${i}`;
    names.push(name);
    closeSync(openSync(path.join(dir, name), 'w'));
  }
  closeSync(openSync(path.join(dir, '.hidden-one'), 'w'));
  names.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

  // Paging at the maximum page size.
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const q: string = cursor === null ? '?limit=10000' : `?limit=10000&cursor=${cursor}`;
    const r = await fetch(`${s.url}/api/list/huge${q}`);
    assert.equal(r.status, 200);
    const body = (await r.json()) as { entries: Array<{ name: string }>; next: string | null };
    for (const e of body.entries) seen.push(e.name);
    cursor = body.next;
    pages++;
  } while (cursor !== null && pages < 20);
  assert.equal(pages, 10);
  assert.equal(seen.length, COUNT);
  assert.deepEqual(seen, names, 'every name once, sorted by code units, hidden name absent');

  // A small page from the middle of the huge folder: a small response, and nothing
  // proportional to the folder kept afterwards (no cache of the 100,000 names).
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const mid = Buffer.from(names[50_000]!, 'utf8').toString('base64url');
  const r = await fetch(`${s.url}/api/list/huge?limit=5&cursor=${mid}`);
  const text = await r.text();
  const body = JSON.parse(text) as { entries: Array<{ name: string }>; next: string | null };
  assert.deepEqual(body.entries.map((e) => e.name), names.slice(50_001, 50_006));
  assert.ok(text.length < 2000, `a 5-entry page is small (${text.length} bytes)`);
  gc();
  const retained = process.memoryUsage().heapUsed - heapBefore;
  // The 100,000 names alone would be several MB.
  assert.ok(retained < 2 * 1024 * 1024, `heap retained ${retained} bytes after a 5-entry page`);
});
