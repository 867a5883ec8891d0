/**
 * Security hardening, connection side: slow request bodies are cut, a refused request with a
 * body closes its connection, `100 Continue` is sent only after authentication, and open
 * connections are capped in total, per client address and by free file descriptors. Real
 * servers, real sockets, loopback only (several 127.0.0.x source addresses stand for
 * different clients).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import net from 'node:net';
import http from 'node:http';
import { spawn, execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { startServer, CLI, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { writeSeededFile, sha256File } from '../helpers/files.ts';
import { hashToken } from '../../src/auth/index.ts';

const run = promisify(execFile);

async function tokensFile(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const file = path.join(tmp.dir, 'tokens.json');
  await writeFile(file, JSON.stringify([{ name: 'writer', role: 'write', sha256: hashToken('conn-write') }]));
  return file;
}

function portOf(url: string): number {
  return Number(new URL(url).port);
}

/** A connected raw socket from `localAddress`; collects what the server sends. */
async function connect(port: number, localAddress = '127.0.0.1'): Promise<{ socket: net.Socket; received: () => string; closed: Promise<void> }> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  let text = '';
  socket.on('data', (d: Buffer) => { text += d.toString('latin1'); });
  socket.on('error', () => { /* a reset is one way the server may close */ });
  const closed = once(socket, 'close').then(() => undefined);
  await once(socket, 'connect');
  return { socket, received: () => text, closed };
}

/**
 * A counter's value, read from the in-process server's registry: what is under test is the
 * count, not /metrics over HTTP (an HTTP scrape right after a cut was reset once in a while
 * under heavy load; see the closing note of the security-hardening work).
 */
async function metric(s: TestServer, name: string): Promise<number> {
  const body = await s.server.metrics.registry.metrics();
  const m = new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(body);
  return m === null ? 0 : Number(m[1]);
}

// Old code: the socket idle timeout reset on every byte and requestTimeout was 0, so a body
// sent one byte at a time kept POST /api/links open for as long as the client liked.
test('a slow body on POST /api/links is cut after --body-timeout', { timeout: 20_000 }, async (t) => {
  const s = await startServer({ options: { bodyTimeout: '400ms' } });
  t.after(() => s.close());
  const c = await connect(portOf(s.url));
  c.socket.write('POST /api/links HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 200\r\n\r\n{');
  const started = performance.now();
  // The attack itself: one more byte every 50 ms, far too slow for 200 bytes in 400 ms.
  const drip = setInterval(() => { if (!c.socket.destroyed) c.socket.write(' '); }, 50);
  t.after(() => { clearInterval(drip); c.socket.destroy(); });
  await c.closed;
  clearInterval(drip);
  const elapsedMs = performance.now() - started;
  assert.ok(elapsedMs >= 350 && elapsedMs < 5000, `cut after ${Math.round(elapsedMs)} ms`);
  assert.equal(await metric(s, 'ferry_connections_cut_total{reason="slow-body"}'), 1);
  // A normal POST still works.
  await writeFile(path.join(s.root, 'a.txt'), 'x');
  const ok = await fetch(`${s.url}/api/links`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ path: 'a.txt', expiresIn: 60 }) });
  assert.equal(ok.status, 200);
});

// Old code: same as above for upload bodies (PUT /files): a trickle held the upload open.
test('an upload body slower than --min-upload-rate over a --send-timeout window is cut', { timeout: 20_000 }, async (t) => {
  const file = await tokensFile(t);
  const s = await startServer({ options: { tokensFile: file, minUploadRate: '64k', sendTimeout: '500ms' } });
  t.after(() => s.close());
  const c = await connect(portOf(s.url));
  c.socket.write('PUT /files/slow.bin HTTP/1.1\r\nhost: x\r\nauthorization: Bearer conn-write\r\ncontent-length: 1000000\r\n\r\n');
  const drip = setInterval(() => { if (!c.socket.destroyed) c.socket.write(Buffer.alloc(100)); }, 40);
  t.after(() => { clearInterval(drip); c.socket.destroy(); });
  await c.closed;
  clearInterval(drip);
  assert.equal(await metric(s, 'ferry_connections_cut_total{reason="slow-upload"}'), 1);
});

// Old code: a 401 to a request with a body kept the connection alive and drained the body
// (Node dumps it to reuse the connection), so a client that never finished held it open.
test('a refusal to a request with an unread body closes the connection', { timeout: 20_000 }, async (t) => {
  const file = await tokensFile(t);
  const s = await startServer({ options: { tokensFile: file, anonymous: 'none' } });
  t.after(() => s.close());
  const c = await connect(portOf(s.url));
  t.after(() => { c.socket.destroy(); });
  c.socket.write(`POST /api/links HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 50000000\r\n\r\n${' '.repeat(1000)}`);
  await c.closed;
  assert.match(c.received(), /^HTTP\/1\.1 401 /);
  assert.match(c.received(), /\r\nconnection: close\r\n/i);
});

// Old code: checkContinue wrote `100 Continue` before the handler, so an unauthenticated PUT
// was invited to send its body and only then refused with 401.
test('100 Continue is sent only after authentication', { timeout: 30_000 }, async (t) => {
  const file = await tokensFile(t);
  const s = await startServer({ options: { tokensFile: file } });
  t.after(() => s.close());
  const c = await connect(portOf(s.url));
  t.after(() => { c.socket.destroy(); });
  c.socket.write('PUT /files/big.bin HTTP/1.1\r\nhost: x\r\ncontent-length: 104857600\r\nexpect: 100-continue\r\n\r\n');
  await c.closed;
  assert.match(c.received(), /^HTTP\/1\.1 401 /, 'the first thing the server says is the refusal');
  assert.ok(!c.received().includes('100 Continue'));

  // With credentials, curl is invited (it would wait 30 s for the 100 otherwise) and uploads.
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const src = path.join(tmp.dir, 'up.bin');
  const digest = await writeSeededFile(src, 2 * 1024 * 1024 + 5);
  const started = performance.now();
  const { stdout, stderr } = await run('curl', ['-sS', '-v', '--expect100-timeout', '30', '-o', '/dev/null', '-w', '%{http_code}', '-T', src, '-H', 'Expect: 100-continue', '-H', 'authorization: Bearer conn-write', `${s.url}/files/up.bin`]);
  assert.equal(stdout, '201');
  assert.match(stderr, /< HTTP\/1\.1 100 Continue/);
  assert.ok(performance.now() - started < 20_000);
  assert.equal(await sha256File(path.join(s.root, 'up.bin')), digest);
});

interface Flood {
  sockets: net.Socket[];
  /** Sockets the server closed so far (counted in the 'close' listener itself). */
  closedCount: () => number;
  /** Resolves once `check()` holds, re-checking on every close. */
  until: (check: () => boolean) => Promise<void>;
  destroy: () => void;
}

/** Opens `n` sockets from `localAddress`. */
async function flood(port: number, n: number, localAddress: string): Promise<Flood> {
  const events = new EventEmitter();
  let closed = 0;
  const sockets = await Promise.all(Array.from({ length: n }, async () => {
    const socket = net.connect({ host: '127.0.0.1', port, localAddress });
    socket.on('error', () => { /* a reset is one way the server may close */ });
    socket.on('close', () => { closed++; events.emit('closed'); });
    await once(socket, 'connect');
    return socket;
  }));
  return {
    sockets,
    closedCount: () => closed,
    async until(check) { while (!check()) await once(events, 'closed'); },
    destroy: () => { for (const socket of sockets) socket.destroy(); },
  };
}

function requestFrom(url: string, localAddress: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http.get(`${url}/healthz`, { localAddress, agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => { resolve(res.statusCode ?? 0); });
    }).on('error', reject);
  });
}

test('--max-connections and --max-connections-client close excess sockets at accept', { timeout: 30_000 }, async (t) => {
  const s: TestServer = await startServer({ options: { maxConnections: 30, maxConnectionsClient: 10 } });
  t.after(() => s.close());
  const port = portOf(s.url);
  const counter = async (name: string, reason: string): Promise<number> => {
    const m = (await s.server.metrics.registry.getMetricsAsJSON()).find((x) => x.name === name);
    return (m?.values.find((v) => v.labels.reason === reason)?.value as number | undefined) ?? 0;
  };
  const a = await flood(port, 25, '127.0.0.1');
  t.after(a.destroy);
  await a.until(() => a.closedCount() >= 15);
  const b = await flood(port, 10, '127.0.0.3');
  t.after(b.destroy);
  // 20 open; one client is at its cap, others still get in.
  assert.equal(await requestFrom(s.url, '127.0.0.2'), 200);
  const c = await flood(port, 10, '127.0.0.4');
  t.after(c.destroy);
  // 10 + 10 + 10 = 30 open: any new connection is refused now.
  const d = await flood(port, 1, '127.0.0.5');
  t.after(d.destroy);
  await d.until(() => d.closedCount() === 1);
  assert.equal(a.closedCount(), 15);
  assert.equal(b.closedCount() + c.closedCount(), 0);
  assert.equal(await counter('ferry_connections_refused_total', 'max-connections-client'), 15);
  assert.equal(await counter('ferry_connections_refused_total', 'max-connections'), 1);
  const logged = s.logs.filter((l) => l.event === 'connection-refused');
  assert.ok(logged.length >= 1 && logged.length <= 3, `one line per burst, not per socket: ${logged.length}`);
});

// Old code: with `ulimit -n 256`, a flood of idle connections used up every descriptor, and
// a client already connected got an error instead of its file (EMFILE on open).
test('near the fd limit new connections are refused, so connected clients still get their files', { timeout: 60_000 }, async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const root = path.join(tmp.dir, 'files');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(root, { recursive: true });
  const digest = await writeSeededFile(path.join(root, 'f.bin'), 512 * 1024);
  const child = spawn('bash', ['-c', `ulimit -n 256; exec "${process.execPath}" "${CLI}" serve --port 0 --host 127.0.0.1 --root "${root}" --state-dir "${path.join(tmp.dir, 'state')}" --max-connections 1000 --max-connections-client 1000`], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '' } });
  const exited = once(child, 'exit');
  t.after(async () => { if (child.exitCode === null) { child.kill('SIGKILL'); await exited; } });
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try { const rec = JSON.parse(line) as { url?: string }; if (typeof rec.url === 'string') resolve(rec.url); } catch { /* not JSON */ }
    });
    void exited.then(() => { reject(new Error('server exited')); });
  });
  const port = portOf(url);
  const early = await connect(port, '127.0.0.2');
  t.after(() => { early.socket.destroy(); });
  const f = await flood(port, 300, '127.0.0.1');
  t.after(f.destroy);
  await f.until(() => f.closedCount() >= 60);
  // The client that was already connected asks for a file now.
  early.socket.write('GET /files/f.bin HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
  await early.closed;
  const response = Buffer.from(early.received(), 'latin1');
  const headerEnd = response.indexOf('\r\n\r\n');
  assert.match(response.subarray(0, headerEnd).toString('latin1'), /^HTTP\/1\.1 200 /);
  const { createHash } = await import('node:crypto');
  assert.equal(createHash('sha256').update(response.subarray(headerEnd + 4)).digest('hex'), digest);
});
