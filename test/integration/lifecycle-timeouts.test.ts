/**
 * Timeouts against slow clients (SPEC §2.1, issue 2 §6): --send-timeout closes a transfer
 * that makes no progress, never one that moves; headers trickled byte by byte (slowloris)
 * are cut by the headers timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { open, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startServer, type TestServer } from '../helpers/start-server.ts';

const BIG = 1024 * 1024 * 1024;

async function serverWithBigFile(options: Record<string, unknown>): Promise<TestServer> {
  const s = await startServer({ options });
  await mkdir(s.root, { recursive: true });
  const fh = await open(path.join(s.root, 'big.bin'), 'w');
  await fh.truncate(BIG);
  await fh.close();
  return s;
}

function connect(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  const sock = net.connect(Number(port), hostname);
  sock.on('error', () => {});
  return once(sock, 'connect').then(() => sock);
}

test('send-timeout closes a stalled reader but not a slow one that keeps reading', { timeout: 60_000 }, async (t) => {
  const s = await serverWithBigFile({ sendTimeout: '1500ms' });
  t.after(() => s.close());

  // The server's side of each connection, to see when the server closes it (a paused client
  // socket does not notice until it reads).
  const serverSockets: net.Socket[] = [];
  s.server.app.server.on('connection', (sock: net.Socket) => { serverSockets.push(sock); });

  const stalled = await connect(s.url);
  stalled.pause();
  stalled.write('GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  const moving = await connect(s.url);
  moving.pause();
  moving.write('GET /files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
  let received = 0;
  // ~1.25 MB/s: slow next to loopback, but progress the kernel reports to the server within
  // the timeout (a socket turns writable again only after a third of its send buffer drains).
  const reader = setInterval(() => {
    let chunk: Buffer | null;
    let budget = 64 * 1024;
    while (budget > 0 && (chunk = moving.read() as Buffer | null) !== null) { received += chunk.length; budget -= chunk.length; }
  }, 50);
  t.after(() => { clearInterval(reader); moving.destroy(); stalled.destroy(); });
  while (serverSockets.length < 2) await once(s.server.app.server, 'connection');
  const [stalledOnServer, movingOnServer] = serverSockets as [net.Socket, net.Socket];
  let movingClosed = false;
  movingOnServer.once('close', () => { movingClosed = true; });

  const t0 = Date.now();
  await once(stalledOnServer, 'close');
  const stalledAfterMs = Date.now() - t0;
  t.diagnostic(`stalled reader closed by the server after ${stalledAfterMs} ms`);
  assert.ok(stalledAfterMs >= 1000, 'not before the timeout');
  assert.ok(stalledAfterMs < 20_000, 'closed by the send timeout');

  // Keep the slow reader going for several timeouts more.
  const before = received;
  await new Promise((r) => setTimeout(r, 5000));
  assert.equal(movingClosed, false, 'a slow but moving reader is never cut');
  assert.ok(received > before + 1024 * 1024, `it kept receiving (${received - before} bytes)`);

  const lines = s.logs.filter((l) => l.event === 'transfer' && l.outcome === 'aborted');
  assert.equal(lines.length, 1, 'the stalled one is logged as aborted');
  assert.ok(s.logs.some((l) => l.event === 'send-timeout'));
});

test('slowloris: headers trickled byte by byte are cut by the headers timeout', { timeout: 30_000 }, async (t) => {
  const s = await serverWithBigFile({ headersTimeout: '1s' });
  t.after(() => s.close());
  const sock = await connect(s.url);
  t.after(() => sock.destroy());
  const request = 'GET /files/big.bin HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n';
  let i = 0;
  const trickle = setInterval(() => { if (i < request.length && !sock.destroyed) sock.write(request[i++]!); }, 100);
  t.after(() => clearInterval(trickle));
  let response = '';
  sock.on('data', (d: Buffer) => { response += d.toString('latin1'); });
  const t0 = Date.now();
  await once(sock, 'close');
  const afterMs = Date.now() - t0;
  t.diagnostic(`closed after ${afterMs} ms (${i} bytes trickled); response: ${JSON.stringify(response.split('\r\n')[0])}`);
  assert.ok(afterMs < 8000, 'cut well before the headers were complete');
  assert.ok(i < request.length, 'the request never completed');
  assert.ok(response === '' || response.startsWith('HTTP/1.1 408'), 'no file bytes, at most a 408');
  assert.equal(s.logs.filter((l) => l.event === 'transfer').length, 0, 'never reached the route');
});
