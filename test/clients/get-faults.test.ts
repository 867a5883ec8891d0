// `ferry get` against a misbehaving origin (test/helpers/origin-server.ts) on a 512 MiB file:
// dropped connections, 503 + Retry-After, no Range support, a redirect chain, no
// Content-Length. Each case must end with exit 0 and a byte-identical file; a client that
// stitched bytes at the wrong offset, gave up, or ignored Retry-After fails here.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { sha256File, writeSeededFile } from '../helpers/files.ts';
import { startOrigin } from '../helpers/origin-server.ts';
import { runFerry, type ClientEvent } from '../helpers/spawn-client.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const MIB = 1024 * 1024;
const SIZE = 512 * MIB;
let dir: string;
let src: string;
let sha: string;
let removeTmp: () => Promise<void> = async () => {};

before(async () => {
  const tmp = await makeTempDir('ferry-get-faults-');
  removeTmp = tmp.remove;
  dir = tmp.dir;
  src = path.join(dir, 'source.bin');
  sha = await writeSeededFile(src, SIZE, 11);
});
after(() => removeTmp());

async function getAndCheck(url: string, name: string, extra: string[] = []): Promise<ClientEvent[]> {
  const out = path.join(dir, name);
  try {
    const r = await runFerry(['get', url, '-o', out, ...extra]);
    assert.equal(r.code, 0, `exit code; stderr: ${r.lines.join('\n')} ${JSON.stringify(r.events.filter((e) => e.type === 'error'))}`);
    assert.equal((await stat(out)).size, SIZE);
    assert.equal(await sha256File(out), sha, 'byte-identical');
    await assert.rejects(stat(`${out}.part`), { code: 'ENOENT' });
    await assert.rejects(stat(`${out}.part.json`), { code: 'ENOENT' });
    return r.events;
  } finally {
    await rm(out, { force: true });
  }
}

test('8 segments over connections that drop every few MiB', { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin({ file: src, dropAfterBytes: () => Math.round((2 + Math.random() * 4) * MIB) });
  t.after(() => origin.close());
  const events = await getAndCheck(origin.fileUrl, 'flaky.bin', ['-s', '8', '--sha256', sha]);
  const retries = events.filter((e) => e.type === 'retry').length;
  t.diagnostic(`${retries} retries, ${origin.stats.requests} requests, ${(origin.stats.bodyBytes / MIB).toFixed(1)} MiB sent`);
  assert.ok(retries >= 20, `the connections really dropped (${retries} retries)`);
  // Dropped bytes are fetched again, but not much more than that.
  assert.ok(origin.stats.bodyBytes < SIZE * 1.3, `sent ${origin.stats.bodyBytes}`);
});

test('503 with Retry-After twice: waits as told, then completes', { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin({ file: src, failFirst: { count: 2, status: 503, retryAfter: '1' } });
  t.after(() => origin.close());
  const started = performance.now();
  const events = await getAndCheck(origin.fileUrl, 'busy.bin', ['-s', '8']);
  const retries = events.filter((e) => e.type === 'retry');
  assert.equal(retries.length, 2);
  for (const r of retries) {
    assert.ok((r.delayMs as number) >= 1000, `Retry-After honoured (${String(r.delayMs)} ms)`);
    assert.match(r.reason as string, /HTTP 503/);
  }
  assert.ok(performance.now() - started >= 2000);
  assert.deepEqual(origin.stats.statuses.slice(0, 2), [503, 503]);
});

test('a server without Range support: one stream', { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin({ file: src, ranges: false });
  t.after(() => origin.close());
  const events = await getAndCheck(origin.fileUrl, 'norange.bin', ['-s', '8', '--sha256', sha]);
  const start = events.find((e) => e.type === 'start');
  assert.equal(start?.mode, 'single');
  assert.ok(origin.stats.statuses.every((s) => s === 200));
  assert.equal(origin.stats.requests, 1, 'the probe answer became the stream');
});

test('a redirect chain (301/307, five hops)', { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin({ file: src });
  t.after(() => origin.close());
  const events = await getAndCheck(`${origin.url}/r/5`, 'redirected.bin', ['-s', '8']);
  const start = events.find((e) => e.type === 'start');
  assert.equal(start?.finalUrl, origin.fileUrl);
  assert.equal(start?.mode, 'segmented');
  assert.ok(origin.stats.statuses.filter((s) => s === 206).length >= 8);
});

test('too many redirects is a protocol error (exit 8)', { timeout: 60_000 }, async (t) => {
  const origin = await startOrigin({ file: src });
  t.after(() => origin.close());
  const out = path.join(dir, 'loop.bin');
  const r = await runFerry(['get', `${origin.url}/r/5`, '-o', out, '--max-redirects', '3']);
  assert.equal(r.code, 8);
  assert.match(String(r.events.find((e) => e.type === 'error')?.message), /too many redirects/);
  await assert.rejects(stat(out), { code: 'ENOENT' });
});

test('no Content-Length (chunked, no ranges)', { timeout: 120_000 }, async (t) => {
  const origin = await startOrigin({ file: src, contentLength: false, ranges: false });
  t.after(() => origin.close());
  const events = await getAndCheck(origin.fileUrl, 'chunked.bin', ['--sha256', sha]);
  const start = events.find((e) => e.type === 'start');
  assert.equal(start?.sizeBytes, null);
  assert.equal(events.find((e) => e.type === 'done')?.sizeBytes, SIZE);
});

test('a final 4xx is not retried and has its own exit code (3)', { timeout: 60_000 }, async (t) => {
  const origin = await startOrigin({ file: src });
  t.after(() => origin.close());
  const r = await runFerry(['get', `${origin.url}/nope`, '-o', path.join(dir, 'nope.bin')]);
  assert.equal(r.code, 3);
  assert.equal(origin.stats.requests, 1);
  assert.match(String(r.events.find((e) => e.type === 'error')?.message), /HTTP 404/);
});

test('credentials never follow a redirect to another origin', { timeout: 60_000 }, async (t) => {
  const small = path.join(dir, 'small.bin');
  const smallSha = await writeSeededFile(small, 3 * MIB + 5, 12);
  const a = await startOrigin({ file: small });
  t.after(() => a.close());
  const b = await startOrigin({ file: small });
  t.after(() => b.close());
  const out = path.join(dir, 'cross.bin');
  t.after(() => rm(out, { force: true }));
  const target = `${a.url}/goto?u=${encodeURIComponent(b.fileUrl)}`;
  const withUser = target.replace('http://', 'http://user:secret@');
  const r = await runFerry(['get', withUser, '-o', out, '-s', '2', '-H', 'Authorization: Bearer s3cret', '-H', 'Cookie: c=1', '-H', 'X-Trace: 7']);
  assert.equal(r.code, 0, r.lines.join('\n'));
  assert.equal(await sha256File(out), smallSha);
  assert.ok(a.stats.headers.length > 0 && a.stats.headers.every((h) => h.authorization === 'Bearer s3cret' && h.cookie === 'c=1'), 'sent to the origin named');
  assert.ok(b.stats.headers.length > 0);
  for (const h of b.stats.headers) {
    assert.equal(h.authorization, undefined, 'no Authorization to another origin');
    assert.equal(h.cookie, undefined, 'no Cookie to another origin');
    assert.equal(h['x-trace'], '7', 'other headers still go along');
    assert.equal(h['accept-encoding'], 'identity');
  }
});

test("the server's Repr-Digest (RFC 9530) is verified when --sha256 is not given", { timeout: 60_000 }, async (t) => {
  const small = path.join(dir, 'digest.bin');
  const smallSha = await writeSeededFile(small, 5 * MIB + 3, 13);
  const good = await startOrigin({ file: small, reprDigest: `sha-256=:${Buffer.from(smallSha, 'hex').toString('base64')}:` });
  t.after(() => good.close());
  const out = path.join(dir, 'digest-out.bin');
  t.after(() => rm(out, { force: true }));
  const ok = await runFerry(['get', good.fileUrl, '-o', out, '-s', '4']);
  assert.equal(ok.code, 0, ok.lines.join('\n'));
  assert.deepEqual(ok.events.find((e) => e.type === 'verify'), { ...ok.events.find((e) => e.type === 'verify'), algorithm: 'sha-256', source: 'repr-digest', ok: true });
  await rm(out, { force: true });

  const bad = await startOrigin({ file: small, reprDigest: `sha-256=:${Buffer.alloc(32, 7).toString('base64')}:` });
  t.after(() => bad.close());
  const mismatch = await runFerry(['get', bad.fileUrl, '-o', out, '-s', '4']);
  assert.equal(mismatch.code, 5);
  await assert.rejects(stat(out), { code: 'ENOENT' });
});
