/**
 * ingestBody: bytes land at the writer's offset in order, observers see exactly what reached the
 * file, a body cut short keeps every byte that arrived, the limit stops before writing past
 * it, checkpoints report increasing durable prefixes and settle before the result.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { FerryError } from '../../../src/core/errors.ts';
import { ingestBody } from '../../../src/uploads/ingest-body.ts';
import { createLocalStorage, type StagedWriter } from '../../../src/storage/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

const tooLarge = (): FerryError => new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE');

/** A staged upload on local disk (`<staging>/data.part`) and its writer. */
async function withFile(t: TestContext): Promise<{ file: string; fh: StagedWriter }> {
  const tmp = await makeTempDir('ferry-ingest-');
  t.after(() => tmp.remove());
  const stagingDir = path.join(tmp.dir, 'staging');
  const storage = await createLocalStorage({ root: tmp.dir, dotfiles: 'deny', followSymlinks: 'inside', stagingDir });
  const fh = await storage.staging.open('data', undefined);
  t.after(() => fh.close());
  return { file: path.join(stagingDir, 'data.part'), fh };
}

test('a complete body at a position; observers see the same bytes in order; checkpoints increase', async (t) => {
  const { file, fh } = await withFile(t);
  await fh.write([Buffer.from('PREFIX')]);
  const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(100_000, i));
  const seen: Buffer[] = [];
  const checkpoints: number[] = [];
  const r = await ingestBody({
    writer: fh, maxBytes: 4_000_000, tooLarge, body: Readable.from(chunks), signal: new AbortController().signal,
    observe: (c) => { seen.push(Buffer.from(c)); },
    checkpoint: { everyBytes: 1_000_000, run: async (commit) => { checkpoints.push((await commit).offset - 6); await new Promise((res) => setTimeout(res, 5)); } },
  });
  assert.equal(r.complete, true);
  assert.equal(r.bytesWritten, 4_000_000);
  const body = Buffer.concat(chunks);
  assert.ok(Buffer.concat(seen).equals(body));
  assert.ok((await readFile(file)).equals(Buffer.concat([Buffer.from('PREFIX'), body])));
  assert.ok(checkpoints.length >= 1);
  assert.deepEqual([...checkpoints].sort((a, b) => a - b), checkpoints, 'increasing');
  assert.ok(checkpoints.every((n) => n <= 4_000_000));
});

test('over maxBytes: FERRY_ERR_UPLOAD_TOO_LARGE, never a byte past the limit', async (t) => {
  const { file, fh } = await withFile(t);
  const r = await ingestBody({
    writer: fh, maxBytes: 250_000, tooLarge, body: Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(100_000, 1))),
    signal: new AbortController().signal, observe: () => undefined,
  });
  assert.equal(r.complete, false);
  assert.ok(r.error instanceof FerryError && r.error.code === 'FERRY_ERR_UPLOAD_TOO_LARGE');
  assert.ok(r.bytesWritten <= 250_000);
  assert.ok((await readFile(file)).length <= 250_000);
});

test('aborted mid-body: everything that arrived is written and counted; the body is not destroyed', async (t) => {
  const { file, fh } = await withFile(t);
  const body = new PassThrough();
  const ac = new AbortController();
  const pending = ingestBody({ writer: fh, maxBytes: Infinity, tooLarge, body, signal: ac.signal, observe: () => undefined });
  body.write(Buffer.alloc(300_000, 7)); // less than one gathered write: still in memory
  await new Promise((r) => setImmediate(r));
  ac.abort(new Error('taken over'));
  const r = await pending;
  assert.equal(r.complete, false);
  assert.equal((r.error as Error).message, 'taken over');
  assert.equal(r.bytesWritten, 300_000);
  assert.equal((await readFile(file)).length, 300_000);
  assert.equal(body.destroyed, false, 'the route can still answer on the connection');
});
