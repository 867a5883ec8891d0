/**
 * When things go wrong while an archive streams (issue 3, "Failure while streaming"):
 * - a member that grows, shrinks or vanishes after the body started: the connection is cut
 *   (no end record), so the client sees a truncated download, never a well-formed wrong zip;
 * - a client that goes away: every member handle is closed within a second;
 * - a slow client on a multi-GiB archive: the server reads only as fast as the client takes
 *   (backpressure), so its memory stays flat.
 * If the route kept streaming after a member changed, the client would receive Content-Length
 * bytes and the first test would fail; if it read ahead of the socket, the last one would.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { appendFile, mkdir, open, readFile, truncate, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startZipServer, openFdCount, waitFor, type ZipTestServer } from '../unit/zip/zip-server-kit.ts';

let s: ZipTestServer;
before(async () => { s = await startZipServer(); });
after(async () => { await s?.close(); });

async function sparse(file: string, size: number): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  try { await fh.truncate(size); } finally { await fh.close(); }
}

/** Starts a GET and returns the response paused after its first chunk. */
async function startPaused(url: string): Promise<{ req: http.ClientRequest; res: http.IncomingMessage; received: () => number }> {
  const req = http.get(url);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  let received = 0;
  res.on('data', (c: Buffer) => { received += c.length; });
  await once(res, 'data');
  res.pause();
  return { req, res, received: () => received };
}

/** Reads the rest; resolves with how it ended. */
function drain(res: http.IncomingMessage): Promise<'complete' | 'cut'> {
  return new Promise((resolve) => {
    res.on('error', () => { resolve('cut'); });
    res.on('aborted', () => { resolve('cut'); });
    res.on('end', () => { resolve(res.complete ? 'complete' : 'cut'); });
    res.resume();
  });
}

for (const change of ['grows', 'shrinks', 'vanishes'] as const) {
  test(`a member that ${change} after the body started: connection cut, truncated download, logged`, async () => {
    const dir = `change-${change}`;
    await sparse(path.join(s.root, dir, 'a-first.bin'), 256 * 1024 * 1024); // far more than socket buffers hold
    await writeFile(path.join(s.root, dir, 'b-victim.bin'), randomBytes(1024 * 1024));
    const fdsBefore = await openFdCount();
    const { res, received } = await startPaused(`${s.url}/zip/${dir}`);
    const length = Number(res.headers['content-length']);
    const victim = path.join(s.root, dir, 'b-victim.bin');
    if (change === 'grows') await appendFile(victim, 'x');
    if (change === 'shrinks') await truncate(victim, 1000);
    if (change === 'vanishes') await unlink(victim);
    const how = await drain(res);
    assert.equal(how, 'cut');
    assert.ok(received() < length, `received ${received()} of ${length}`);
    await waitFor(async () => (await openFdCount()) <= fdsBefore, 1000, 'file handles back to baseline');
    await waitFor(() => s.logs.some((l) => l.event === 'zip' && l.selection === `/${dir}` && l.outcome === 'failed'), 1000, 'the failure log line');
    assert.ok(s.logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('zip failed after the response started')));
  });
}

test('a client that aborts mid-archive: member handles closed within a second, logged as aborted', async () => {
  await sparse(path.join(s.root, 'abort/big.bin'), 512 * 1024 * 1024);
  const fdsBefore = await openFdCount();
  const { req, received } = await startPaused(`${s.url}/zip/abort`);
  assert.ok(received() > 0);
  assert.ok((await openFdCount()) > fdsBefore, 'a connection and a member handle are open');
  req.destroy();
  await waitFor(async () => (await openFdCount()) <= fdsBefore, 1000, 'file handles back to baseline');
  await waitFor(() => s.logs.some((l) => l.event === 'zip' && l.selection === '/abort' && l.outcome === 'aborted'), 1000, 'the aborted log line');
});

async function readIoChars(): Promise<number> {
  const io = await readFile('/proc/self/io', 'utf8');
  return Number(/rchar:\s*(\d+)/.exec(io)![1]);
}

test('a slow client on a multi-GiB archive: the server reads no further ahead than the socket takes, memory flat', async () => {
  await sparse(path.join(s.root, 'slow/huge.bin'), 3 * 1024 ** 3);
  await sparse(path.join(s.root, 'slow/other.bin'), 1024 ** 3);
  const rssBefore = process.memoryUsage().rss;
  const rcharBefore = await readIoChars();
  const req = http.get(`${s.url}/zip/slow`);
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  assert.ok(Number(res.headers['content-length']) > 4 * 1024 ** 3);
  let got = 0;
  let maxRss = 0;
  // ~2.5 s of a client that takes what is buffered every 60 ms (no 'data' listener: paused mode).
  for (let i = 0; i < 40; i++) {
    let chunk = res.read() as Buffer | null;
    if (chunk === null) {
      await once(res, 'readable');
      chunk = res.read() as Buffer | null;
    }
    got += chunk?.length ?? 0;
    await new Promise((r) => setTimeout(r, 60));
    maxRss = Math.max(maxRss, process.memoryUsage().rss);
  }
  // rchar counts every read(): the client's socket reads (≈ what it received) plus the server's file reads.
  const serverRead = (await readIoChars()) - rcharBefore - got;
  if (process.env.ZIP_DEBUG) console.log({ got, serverRead, rssGrowthMiB: (maxRss - rssBefore) / 2 ** 20 });
  req.destroy();
  assert.ok(serverRead < got + 32 * 1024 * 1024, `server read ${serverRead} bytes for ${got} sent: no read-ahead beyond socket buffers`);
  assert.ok(maxRss - rssBefore < 64 * 1024 * 1024, `RSS grew ${(maxRss - rssBefore) / 2 ** 20} MiB`);
});
