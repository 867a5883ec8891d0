// Interruptions and changes on a 512 MiB file: kill -9 at a random point then the same
// command again; the file replaced on the server mid-download; the output disk full. Each
// ends byte-identical to one version of the file, never a mix, with the progress kept.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { startOrigin } from '../helpers/origin-server.ts';
import { runFerry, spawnFerry } from '../helpers/spawn-client.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { parseResumeState } from '../../src/download/index.ts';
import { skipOrFail } from '../helpers/skip.ts';

const run = promisify(execFile);
const MIB = 1024 * 1024;
const SIZE = 512 * MIB;
let dir: string;
let src: string;
let sha: string;
let removeTmp: () => Promise<void> = async () => {};

before(async () => {
  const tmp = await makeTempDir('ferry-get-resume-');
  removeTmp = tmp.remove;
  dir = tmp.dir;
  src = path.join(dir, 'source.bin');
  sha = await writeSeededFile(src, SIZE, 31);
});
after(() => removeTmp());

async function readState(file: string): Promise<ReturnType<typeof parseResumeState>> {
  return parseResumeState(JSON.parse(await readFile(file, 'utf8')));
}

test('kill -9 at a random point, then the same command: completes, identical, little fetched twice', { timeout: 120_000 }, async (t) => {
  // Server-side pacing (slower than the client can take) keeps the bytes parked in socket
  // buffers small, so the server's byte counter measures what the client fetched twice.
  const origin = await startOrigin({ file: src, rateBytesPerSec: 4 * MIB });
  t.after(() => origin.close());
  const out = path.join(dir, 'killed.bin');
  t.after(() => rm(out, { force: true }));
  const args = ['get', origin.fileUrl, '-o', out, '-s', '8'];
  const first = spawnFerry(args);
  t.after(() => first.kill('SIGKILL'));
  await first.waitForEvent((e) => e.type === 'progress' && (e.doneBytes as number) > 0);
  const delayMs = Math.round(Math.random() * 1500);
  await new Promise((r) => setTimeout(r, delayMs));
  first.kill('SIGKILL');
  const { signal } = await first.exited;
  assert.equal(signal, 'SIGKILL', 'killed mid-download');
  const sentBeforeKill = origin.stats.bodyBytes;
  const state = await readState(`${out}.part.json`);
  assert.ok(state.ok, 'a valid state survives kill -9');

  origin.options.rateBytesPerSec = 12 * MIB;
  const second = await runFerry(args);
  assert.equal(second.code, 0, second.lines.join('\n'));
  assert.equal(await sha256File(out), sha, 'identical');
  const resume = second.events.find((e) => e.type === 'resume');
  assert.ok(resume !== undefined && (resume.verifiedBytes as number) > 0, 'resumed from the verified pieces');
  assert.equal(resume.discardedBytes, 0);
  const refetched = origin.stats.bodyBytes - SIZE;
  t.diagnostic(`killed ${delayMs} ms after the first progress event, ${(sentBeforeKill / MIB).toFixed(1)} MiB sent by then; `
    + `resumed with ${((resume.verifiedBytes as number) / MIB).toFixed(1)} MiB verified; fetched twice: ${(refetched / MIB).toFixed(2)} MiB`);
  // The bound: one checkpoint interval (4 MiB) + each segment's unwritten batch + a little in flight.
  assert.ok(refetched <= 16 * MIB, `re-downloaded ${(refetched / MIB).toFixed(2)} MiB`);
});

test('the file is replaced on the server mid-download: never a mixed file', { timeout: 120_000 }, async (t) => {
  const served = path.join(dir, 'served.bin');
  const next = path.join(dir, 'next.bin');
  const shaA = await writeSeededFile(served, SIZE, 41);
  const shaB = await writeSeededFile(next, SIZE, 42);
  t.after(() => Promise.all([rm(served, { force: true }), rm(next, { force: true })]));
  // Connections drop every ~8 MiB, so segments keep asking again (Range + If-Range) after the
  // swap; a segment that merely finishes its old response reads the old inode to the end.
  const origin = await startOrigin({ file: served, rateBytesPerSec: 24 * MIB, dropAfterBytes: () => 8 * MIB });
  t.after(() => origin.close());
  const out = path.join(dir, 'replaced.bin');
  t.after(() => Promise.all([rm(out, { force: true }), rm(`${out}.part`, { force: true }), rm(`${out}.part.json`, { force: true })]));

  // --no-restart: the change is detected, the command fails with exit 6, nothing at the final name.
  const strict = spawnFerry(['get', origin.fileUrl, '-o', out, '-s', '8', '--no-restart']);
  t.after(() => strict.kill('SIGKILL'));
  await strict.waitForEvent((e) => e.type === 'progress' && (e.doneBytes as number) > 32 * MIB);
  await rename(next, served); // same size, new content, new ETag
  const strictEnd = await strict.exited;
  assert.equal(strictEnd.code, 6, strict.lines.join('\n'));
  assert.match(String(strict.events.find((e) => e.type === 'error')?.message), /changed/);
  await assert.rejects(stat(out), { code: 'ENOENT' });

  // The same command without --no-restart: it notices the change against its state and starts
  // again from zero, with a clear message; the result is wholly the new version.
  origin.options.rateBytesPerSec = undefined;
  origin.options.dropAfterBytes = undefined;
  const again = await runFerry(['get', origin.fileUrl, '-o', out, '-s', '8']);
  assert.equal(again.code, 0, again.lines.join('\n'));
  const restart = again.events.find((e) => e.type === 'restart');
  assert.match(String(restart?.reason), /changed on the server.*starting again from zero/);
  const got = await sha256File(out);
  assert.notEqual(got, shaA);
  assert.equal(got, shaB);
});

test('replaced while running (default): restarts from zero within the same run', { timeout: 120_000 }, async (t) => {
  const served = path.join(dir, 'served2.bin');
  const next = path.join(dir, 'next2.bin');
  await writeSeededFile(served, SIZE, 51);
  const shaB = await writeSeededFile(next, SIZE, 52);
  t.after(() => Promise.all([rm(served, { force: true }), rm(next, { force: true })]));
  const origin = await startOrigin({ file: served, rateBytesPerSec: 32 * MIB, dropAfterBytes: () => 8 * MIB });
  t.after(() => origin.close());
  const out = path.join(dir, 'replaced2.bin');
  t.after(() => rm(out, { force: true }));
  const c = spawnFerry(['get', origin.fileUrl, '-o', out, '-s', '8']);
  t.after(() => c.kill('SIGKILL'));
  await c.waitForEvent((e) => e.type === 'progress' && (e.doneBytes as number) > 32 * MIB);
  await rename(next, served);
  origin.options.rateBytesPerSec = undefined;
  origin.options.dropAfterBytes = undefined;
  const end = await c.exited;
  assert.equal(end.code, 0, c.lines.join('\n'));
  assert.ok(c.events.some((e) => e.type === 'restart'), 'a restart was announced');
  assert.equal(await sha256File(out), shaB, 'wholly the new version');
});

test('disk full on the output: clear error, state kept, resumes when space returns', { timeout: 120_000 }, async (t) => {
  if (process.getuid?.() !== 0) { skipOrFail(t, 'needs root to mount a tmpfs'); return; }
  const mnt = path.join(dir, 'small-disk');
  await mkdir(mnt);
  let mounted = false;
  t.after(async () => { if (mounted) await run('umount', [mnt]).catch(() => run('umount', ['-l', mnt])); });
  try {
    await run('mount', ['-t', 'tmpfs', '-o', 'size=64m', 'tmpfs', mnt]);
    mounted = true;
  } catch (err) {
    skipOrFail(t, `cannot mount a tmpfs: ${(err as Error).message}`);
    return;
  }
  const origin = await startOrigin({ file: src });
  t.after(() => origin.close());
  const out = path.join(mnt, 'big.bin');
  const full = await runFerry(['get', origin.fileUrl, '-o', out, '-s', '8']);
  assert.equal(full.code, 7, full.lines.join('\n'));
  const error = full.events.find((e) => e.type === 'error');
  assert.match(String(error?.message), /no space left on device \(ENOSPC\).*run the same command again/);
  const state = await readState(`${out}.part.json`);
  assert.ok(state.ok, 'the resume state is kept and valid');
  const kept = state.state.pieces.filter((p) => p !== null).length;

  await run('mount', ['-o', 'remount,size=600m', mnt]);
  const again = await runFerry(['get', origin.fileUrl, '-o', out, '-s', '8']);
  assert.equal(again.code, 0, again.lines.join('\n'));
  const resume = again.events.find((e) => e.type === 'resume');
  t.diagnostic(`${kept} pieces kept through ENOSPC; ${String(resume?.verifiedBytes)} bytes verified on resume`);
  assert.ok(kept > 0 && (resume?.verifiedBytes as number) > 0, 'continued, did not start over');
  assert.equal(await sha256File(out), sha);
  await rm(out, { force: true });
});
