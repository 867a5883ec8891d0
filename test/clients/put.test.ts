// `ferry put` against Ferry's tus server on a 512 MiB file: parallel parts joined by
// concatenation, and kill -9 mid-upload then the same command again. The server must end up
// with a file whose sha-256 equals the local one (it also verifies the sha256 metadata).
import { before, after, test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { CHANNEL_NAMES } from '../../src/core/channels.ts';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { runFerry, spawnFerry, type ClientEvent } from '../helpers/spawn-client.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { startUploadServer, WRITE_TOKEN } from '../integration/uploads-kit.ts';

const MIB = 1024 * 1024;
const SIZE = 512 * MIB;
let dir: string;
let src: string;
let sha: string;
let removeTmp: () => Promise<void> = async () => {};

/** Bytes the in-process server wrote for uploads (its diagnostics channel). */
let received = 0;
const onBytes = (m: unknown): void => { received += (m as { bytes: number }).bytes; };

before(async () => {
  const tmp = await makeTempDir('ferry-put-');
  removeTmp = tmp.remove;
  dir = tmp.dir;
  src = path.join(dir, 'big.bin');
  sha = await writeSeededFile(src, SIZE, 61);
  diagnosticsChannel.subscribe(CHANNEL_NAMES.uploadBytes, onBytes);
});
after(async () => {
  diagnosticsChannel.unsubscribe(CHANNEL_NAMES.uploadBytes, onBytes);
  await removeTmp();
});

const auth = ['-H', `Authorization: Bearer ${WRITE_TOKEN}`];

function publishedPath(root: string, events: ClientEvent[]): string {
  const done = events.find((e) => e.type === 'done');
  assert.ok(done !== undefined, 'a done event');
  const url = new URL(String(done.output));
  assert.match(url.pathname, /^\/files\//);
  return path.join(root, ...url.pathname.slice('/files/'.length).split('/').map(decodeURIComponent));
}

test('parallel parts joined by concatenation: sha-256 equal on the server', { timeout: 120_000 }, async (t) => {
  const server = await startUploadServer(t);
  const state = path.join(dir, 'state-parallel');
  const r = await runFerry(['put', src, `${server.url}/uploads/`, '--path', 'backups', '--parallel', '4', '--state-dir', state, ...auth]);
  assert.equal(r.code, 0, `${r.lines.join('\n')}${JSON.stringify(r.events.filter((e) => e.type !== 'progress'))}`);
  const start = r.events.find((e) => e.type === 'start');
  assert.equal(start?.segments, 4);
  const stored = publishedPath(server.root, r.events);
  assert.equal(path.relative(server.root, stored), path.join('backups', 'big.bin'));
  assert.equal(await sha256File(stored), sha);
  assert.deepEqual(await readdir(state), [], 'the resume state is removed when done');
});

test('kill -9 mid-upload, then the same command: resumes where the server is', { timeout: 120_000 }, async (t) => {
  const server = await startUploadServer(t);
  const state = path.join(dir, 'state-resume');
  const args = ['put', src, `${server.url}/uploads/`, '--path', 'resumed', '--parallel', '2', '--chunk-size', '4M', '--state-dir', state, ...auth];
  received = 0;
  const first = spawnFerry([...args, '--limit-rate', '48M']);
  t.after(() => first.kill('SIGKILL'));
  await first.waitForEvent((e) => e.type === 'progress' && (e.doneBytes as number) > 48 * MIB);
  await new Promise((r) => setTimeout(r, Math.round(Math.random() * 1000)));
  first.kill('SIGKILL');
  assert.equal((await first.exited).signal, 'SIGKILL');
  const beforeResume = received;
  assert.ok((await readdir(state)).length === 1, 'a resume state was saved');

  const second = await runFerry(args);
  assert.equal(second.code, 0, second.lines.join('\n'));
  const resume = second.events.find((e) => e.type === 'resume');
  assert.ok(resume !== undefined && (resume.verifiedBytes as number) > 32 * MIB, `continued (${String(resume?.verifiedBytes)})`);
  // What the server took in before the kill but did not keep must be sent again: at most the
  // PATCH in flight per part (with a checksum, a PATCH is all or nothing).
  const kept = resume.verifiedBytes as number;
  const sentTwice = beforeResume - kept;
  t.diagnostic(`${(beforeResume / MIB).toFixed(1)} MiB received before the kill, ${(kept / MIB).toFixed(1)} MiB kept; sent twice: ${(sentTwice / MIB).toFixed(1)} MiB`);
  assert.ok(sentTwice >= 0 && sentTwice <= 2 * 4 * MIB, `re-sent ${sentTwice} bytes`);
  assert.equal(await sha256File(publishedPath(server.root, second.events)), sha);
});

test('a server that is not tus: exit 8', { timeout: 60_000 }, async (t) => {
  const server = await startUploadServer(t);
  const r = await runFerry(['put', src, `${server.url}/files/`, '--state-dir', path.join(dir, 'state-x'), ...auth]);
  assert.equal(r.code, 8, r.lines.join('\n'));
});
