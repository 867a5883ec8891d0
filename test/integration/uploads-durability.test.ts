/**
 * Durability (issue 4 §2): a server killed with SIGKILL in the middle of a PATCH restarts on the
 * same state dir and reports an offset no larger than what it made durable, with those bytes
 * intact; the client resumes from there and the published file is byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { startChildServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { AUTH, TUS, b64, patchHeaders, rawRequest, writeTokensFile } from './uploads-kit.ts';

const MiB = 1024 * 1024;

async function* fileRange(file: string, start: number, end: number, gate?: Promise<unknown>): AsyncGenerator<Buffer> {
  if (end > start) for await (const c of createReadStream(file, { start, end: end - 1, highWaterMark: 256 * 1024 })) yield c as Buffer;
  if (gate !== undefined) await gate;
}

test('SIGKILL mid-PATCH, restart on the same state dir, resume: byte-identical', async (t) => {
  const tmp = await makeTempDir('ferry-kill-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const root = path.join(tmp.dir, 'files');
  const stateDir = path.join(tmp.dir, 'state');
  const source = path.join(tmp.dir, 'source.bin');
  const size = 40 * MiB;
  const sent = 28 * MiB; // what the client sends before it stalls
  const sourceSha = await writeSeededFile(source, size, 5);
  const args = ['--tokens-file', tokensFile, '--upload-checkpoint', '8M'];

  const first = await startChildServer(args, { root, stateDir });
  t.after(() => first[Symbol.asyncDispose]());
  const created = await rawRequest(`${first.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, 'upload-length': size, 'upload-metadata': `filename ${b64('survivor.bin')}` } });
  assert.equal(created.status, 201);
  const id = created.headers.location!.split('/').pop()!;

  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  t.after(() => { release(); });
  const patch = rawRequest(`${first.url}/uploads/${id}`, { method: 'PATCH', headers: patchHeaders(0, { 'content-length': size }), body: fileRange(source, 0, sent, gate) })
    .then((r) => r, (err: unknown) => err);
  // Wait until the server has made some of the body durable, then until all `sent` bytes
  // reached its data file (some of them not acknowledged yet). A checkpoint comes 8 MiB after
  // the previous one, which lands wherever its asynchronous fsync found the writer, so only two
  // checkpoints (≥ 16 MiB) are certain within 28 MiB; waiting for 24 MiB flaked when the second
  // landed above 20 MiB and the third would have needed more than was sent.
  const dataFile = path.join(stateDir, 'uploads', `${id}.part`);
  let acknowledged = 0;
  for (let i = 0; i < 600; i++) {
    const h = await rawRequest(`${first.url}/uploads/${id}`, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
    acknowledged = Number(h.headers['upload-offset']);
    const onDisk = await stat(dataFile).then((s) => s.size, () => 0);
    if (acknowledged >= 16 * MiB && onDisk >= sent) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  assert.ok(acknowledged >= 16 * MiB, `checkpointed ${acknowledged}`);
  first.kill('SIGKILL');
  assert.equal(await first.exited, null);
  assert.ok((await patch) instanceof Error, 'the killed server never answered');

  const second = await startChildServer(args, { root, stateDir });
  t.after(() => second[Symbol.asyncDispose]());
  const h = await rawRequest(`${second.url}/uploads/${id}`, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
  assert.equal(h.status, 200);
  const offset = Number(h.headers['upload-offset']);
  assert.ok(offset <= sent && offset >= acknowledged, `offset after restart ${offset}, acknowledged ${acknowledged}, sent ${sent}`);

  const resumed = await rawRequest(`${second.url}/uploads/${id}`, { method: 'PATCH', headers: patchHeaders(offset, { 'content-length': size - offset }), body: fileRange(source, offset, size) });
  assert.equal(resumed.status, 204, resumed.text);
  assert.equal(resumed.headers['upload-offset'], String(size));
  assert.equal(await sha256File(path.join(root, 'survivor.bin')), sourceSha);
  assert.ok(second.lines.some((l) => l.includes('"event":"resumed"')));
});
