/**
 * Memory stays flat while 200 throttled transfers run (issue 5): pacing delays reads instead
 * of buffering, so the server's memory is a fixed cost per connection that does not grow
 * while the transfers go on. The server runs as a child process so that only its memory is
 * measured (/debug/runtime, loopback, no credentials configured).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { open, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startChildServer } from '../helpers/start-server.ts';

const KiB = 1024;
const MiB = 1024 * 1024;
const TRANSFERS = 200;

interface Runtime { memory: { rss: number; heapUsed: number; external: number; arrayBuffers: number } }

async function runtime(url: string): Promise<Runtime> {
  return (await (await fetch(`${url}/debug/runtime`)).json()) as Runtime;
}

/**
 * Live memory: taking a heap snapshot runs a full garbage collection first, so the figures
 * read right after it are what is really held, not garbage awaiting collection (a stream of
 * fresh read buffers makes the raw figures a sawtooth). The snapshot is read and dropped.
 */
async function liveRuntime(url: string): Promise<Runtime> {
  const snap = await fetch(`${url}/debug/heap`);
  assert.equal(snap.status, 200);
  // Read to the end: the snapshot (and the collection before it) is then finished.
  for await (const chunk of snap.body ?? []) void chunk;
  return runtime(url);
}

test('200 throttled transfers: server memory does not grow while they run', async (t) => {
  const server = await startChildServer(['--limit-rate', '64k', '--limit-burst', '16k']);
  t.after(() => server[Symbol.asyncDispose]());
  await mkdir(server.root, { recursive: true });
  const fh = await open(path.join(server.root, 'f.bin'), 'w');
  await fh.truncate(4 * MiB);
  await fh.close();

  const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
  t.after(() => agent.destroy());
  let received = 0;
  const requests: http.ClientRequest[] = [];
  // Warm-up ends when every transfer has had its burst: each connection has then allocated
  // its fixed cost (buffers, pacing state), and what follows is steady state.
  const burstDone: Array<Promise<void>> = [];
  const started = await Promise.all(Array.from({ length: TRANSFERS }, () => new Promise<number>((resolve, reject) => {
    const req = http.get(`${server.url}/files/f.bin`, { agent }, (res) => {
      let mine = 0;
      let burst!: () => void;
      burstDone.push(new Promise((r) => { burst = r; }));
      res.on('data', (c: Buffer) => {
        received += c.length;
        mine += c.length;
        if (mine >= 16 * 1024) burst();
      });
      res.on('error', () => {});
      resolve(res.statusCode ?? 0);
    });
    req.on('error', (err) => { if (!req.destroyed) reject(err); });
    requests.push(req);
  })));
  t.after(() => { for (const r of requests) r.destroy(); });
  assert.ok(started.every((s) => s === 200), 'all 200 transfers started');

  await Promise.all(burstDone);
  const first = await liveRuntime(server.url);
  const receivedAtFirst = received;
  const t0 = performance.now();
  let maxRss = first.memory.rss;
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    maxRss = Math.max(maxRss, (await runtime(server.url)).memory.rss);
  }
  // The rate is measured between the snapshots (each one pauses the server).
  const seconds = (performance.now() - t0) / 1000;
  const rate = (received - receivedAtFirst) / seconds;
  const last = await liveRuntime(server.url);
  const mib = (n: number): string => (n / MiB).toFixed(1);
  t.diagnostic(`aggregate ${mib(rate)} MiB/s over ${seconds.toFixed(1)} s; live heap ${mib(first.memory.heapUsed)} → ${mib(last.memory.heapUsed)} MiB; live buffers ${mib(first.memory.arrayBuffers)} → ${mib(last.memory.arrayBuffers)} MiB (${(last.memory.arrayBuffers / TRANSFERS / KiB).toFixed(0)} KiB per transfer); rss ${mib(first.memory.rss)} → max ${mib(maxRss)} MiB`);

  // The transfers really were throttled and running: 200 × 64 KiB/s.
  assert.ok(rate > TRANSFERS * 64 * KiB * 0.8 && rate < TRANSFERS * 64 * KiB * 1.15, `aggregate rate ${mib(rate)} MiB/s`);
  // Flat: ≈ 60 MiB went out meanwhile; what is held did not grow with it.
  assert.ok(last.memory.arrayBuffers - first.memory.arrayBuffers < 8 * MiB, `live buffers grew by ${mib(last.memory.arrayBuffers - first.memory.arrayBuffers)} MiB`);
  assert.ok(last.memory.heapUsed - first.memory.heapUsed < 8 * MiB, `live heap grew by ${mib(last.memory.heapUsed - first.memory.heapUsed)} MiB`);
  // And the fixed cost per throttled connection is bounded. The pump pays the pacer before it
  // reads, so a waiting transfer holds no read buffer: ≈ 120 KiB here, of which ≈ 75 KiB is the
  // idle server's own buffers spread over 200 (≈ 300 KiB when pacing wrapped the body in streams).
  assert.ok(last.memory.arrayBuffers / TRANSFERS < 256 * KiB, `${(last.memory.arrayBuffers / TRANSFERS / KiB).toFixed(0)} KiB of buffers per transfer`);
});
