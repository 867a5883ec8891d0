/**
 * The local write half where a crash falls between its own steps (the conformance suite covers
 * the rest): a publish interrupted between link(2) and the removal of the staged file, and a
 * concatenation interrupted after a part was taken in, both finish when called again, without
 * a second copy and without losing bytes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { createLocalStorage, type Storage } from '../../../src/storage/index.ts';
import { parseSafePath } from '../../../src/core/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ storage: Storage; root: string; stagingDir: string }> {
  const tmp = await makeTempDir('ferry-local-writes-');
  t.after(tmp.remove);
  const root = path.join(tmp.dir, 'root');
  const stagingDir = path.join(tmp.dir, 'state', 'uploads');
  await mkdir(root, { recursive: true });
  const storage = await createLocalStorage({ root, dotfiles: 'deny', followSymlinks: 'inside', stagingDir });
  return { storage, root, stagingDir };
}

async function stage(storage: Storage, id: string, body: string): Promise<{ id: string; checkpoint: { offset: number } }> {
  const w = await storage.staging.open(id, undefined);
  await w.write([Buffer.from(body)]);
  const checkpoint = await w.commit();
  await w.close();
  return { id, checkpoint };
}

// On the code before issue 9 there was no Storage.publish (the recovery lived in the tus service).
test('a publish interrupted after link(2) finishes at the linked name: no "name (1)" copy, the staged file gone', async (t) => {
  const { storage, root, stagingDir } = await setup(t);
  await mkdir(path.join(root, 'docs'));
  const ref = await stage(storage, 'crash-1', 'hello');
  // The crash: the staged file was linked under its name, then the process died.
  await link(path.join(stagingDir, 'crash-1.part'), path.join(root, 'docs', 'a.txt'));
  const res = await storage.publish(ref, parseSafePath('docs/a.txt'), 'rename');
  assert.equal(res.name, 'a.txt');
  assert.equal(res.stat.size, 5);
  assert.deepEqual(await readdir(path.join(root, 'docs')), ['a.txt']);
  assert.deepEqual(await readdir(stagingDir), []);
});

test('a concatenation interrupted after a part was taken in finishes when called again', async (t) => {
  const { storage, stagingDir } = await setup(t);
  const p0 = await stage(storage, 'p0', 'abc');
  const p1 = await stage(storage, 'p1', 'defg');
  const first = await storage.staging.concat('fin', [p0]);
  assert.equal(first.offset, 3);
  const second = await storage.staging.concat('fin', [{ id: 'fin', checkpoint: first }, p1]);
  assert.equal(second.offset, 7);
  // The crash: the caller never recorded the second step, and repeats it (p1 is gone by now).
  const again = await storage.staging.concat('fin', [{ id: 'fin', checkpoint: first }, p1]);
  assert.equal(again.offset, 7);
  assert.equal(await readFile(path.join(stagingDir, 'fin.part'), 'utf8'), 'abcdefg');
  // And the first step repeated after the rename (p0 moved already) keeps what is there.
  await rename(path.join(stagingDir, 'fin.part'), path.join(stagingDir, 'fin2.part'));
  const r = await storage.staging.concat('fin2', [p0]);
  assert.equal(r.offset, 3);
  assert.equal(await readFile(path.join(stagingDir, 'fin2.part'), 'utf8'), 'abc');
});
