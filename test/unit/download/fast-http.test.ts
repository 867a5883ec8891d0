// The fast HTTP/1.1 range reader (src/download/fast-http.ts): strict head parsing (RFC 9112
// §4, §5, §6.3), keep-alive reuse, backpressure without losing or reordering a byte, and
// every way a body can end early.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { FastHttpPool, parseHead } from '../../../src/download/fast-http.ts';

test('parseHead: status line, fields, framing, keep-alive', () => {
  const h = parseHead('HTTP/1.1 206 Partial Content\r\nContent-Length: 10\r\nContent-Range: bytes 0-9/100\r\nX-A: 1\r\nx-a: 2');
  assert.equal(h.status, 206);
  assert.equal(h.contentLength, 10);
  assert.equal(h.headers['content-range'], 'bytes 0-9/100');
  assert.equal(h.headers['x-a'], '1, 2');
  assert.equal(h.keepAlive, true);
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1').keepAlive, false);
  assert.equal(parseHead('HTTP/1.0 200 OK\r\nContent-Length: 1').keepAlive, false);
  assert.equal(parseHead('HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1').keepAlive, true);
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked').contentLength, undefined);
  // §6.3: Transfer-Encoding overrides Content-Length.
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5').contentLength, undefined);
  assert.equal(parseHead('HTTP/1.1 204 No Content').contentLength, 0);
  assert.equal(parseHead('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5').contentLength, 5);
  assert.equal(parseHead('HTTP/1.1 200\r\nContent-Length: 5').status, 200);
});

test('parseHead refuses what RFC 9112 calls invalid', () => {
  for (const bad of [
    'HTTP/2 200 OK',
    'HTTP/1.1 20 OK',
    'ICY 200 OK',
    'HTTP/1.1 200 OK\r\n folded: value',
    'HTTP/1.1 200 OK\r\nbad name: x',
    'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6',
    'HTTP/1.1 200 OK\r\nContent-Length: -1',
  ]) assert.throws(() => parseHead(bad), /invalid HTTP response/, bad);
});

async function server(handler: http.RequestListener): Promise<{ url: URL; connections: () => number; close: () => Promise<void> }> {
  const s = http.createServer(handler);
  let connections = 0;
  s.on('connection', () => { connections++; });
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  return {
    url: new URL(`http://127.0.0.1:${(s.address() as AddressInfo).port}/f`),
    connections: () => connections,
    close: async () => { s.closeAllConnections(); await new Promise((r) => s.close(r)); },
  };
}

/** An offer() that takes at most `step` bytes and blocks every other call until a timer. */
function collector(step: number) {
  const parts: Buffer[] = [];
  let block = false;
  let waiting: Promise<void> = Promise.resolve();
  return {
    parts,
    offer(buf: Uint8Array, off: number, len: number) {
      if (block) {
        block = false;
        waiting = new Promise((r) => setTimeout(r, 1));
        return { taken: 0, state: 'blocked' as const };
      }
      block = true;
      const n = Math.min(step, len);
      parts.push(Buffer.from(buf.subarray(off, off + n)));
      return { taken: n, state: 'more' as const };
    },
    drained: () => waiting,
  };
}

test('bodies arrive whole and in order under backpressure; keep-alive reuses the connection', async (t) => {
  const body = randomBytes(3 * 1024 * 1024 + 17);
  const s = await server((_req, res) => { res.writeHead(206, { 'content-length': String(body.length) }); res.end(body); });
  t.after(() => s.close());
  const pool = new FastHttpPool({ connectTimeoutMs: 5000, idleTimeoutMs: 5000 });
  t.after(() => pool.close());
  for (let i = 0; i < 3; i++) {
    const res = await pool.get(s.url, { range: 'bytes=0-' }, new AbortController().signal);
    assert.equal(res.status, 206);
    const c = collector(70_000);
    assert.equal(await res.pipe(c.offer, c.drained), 'ended');
    assert.ok(Buffer.concat(c.parts).equals(body));
    assert.equal(res.bodyBytes, body.length);
  }
  assert.equal(s.connections(), 1, 'one connection for three requests');
});

test('the sink saying "done" stops the body and closes that connection', async (t) => {
  const body = randomBytes(8 * 1024 * 1024);
  const s = await server((_req, res) => { res.writeHead(206, { 'content-length': String(body.length) }); res.end(body); });
  t.after(() => s.close());
  const pool = new FastHttpPool({ connectTimeoutMs: 5000, idleTimeoutMs: 5000 });
  t.after(() => pool.close());
  const res = await pool.get(s.url, {}, new AbortController().signal);
  let got = 0;
  const outcome = await res.pipe((_b, _o, len) => {
    const n = Math.min(len, 1000 - got);
    got += n;
    return { taken: n, state: got >= 1000 ? 'done' : 'more' };
  }, () => Promise.resolve());
  assert.equal(outcome, 'stopped');
  assert.equal(got, 1000);
  const again = await pool.get(s.url, {}, new AbortController().signal);
  again.abandon();
  assert.equal(s.connections(), 2, 'the stopped connection was not reused');
});

test('a body cut short, an abort and a stall all reject', async (t) => {
  const s = await server((req, res) => {
    res.writeHead(206, { 'content-length': '1000000' });
    if (req.url === '/cut') { res.write(Buffer.alloc(1000)); setTimeout(() => res.socket?.destroy(), 20); return; }
    res.write(Buffer.alloc(10)); // then stall
  });
  t.after(() => s.close());
  const pool = new FastHttpPool({ connectTimeoutMs: 5000, idleTimeoutMs: 300 });
  t.after(() => pool.close());
  const sink = { offer: (_b: Uint8Array, _o: number, len: number) => ({ taken: len, state: 'more' as const }), drained: () => Promise.resolve() };

  const cut = await pool.get(new URL('/cut', s.url), {}, new AbortController().signal);
  await assert.rejects(cut.pipe(sink.offer, sink.drained), (err: { code?: string }) => err.code === 'FERRY_ERR_CLIENT_SHORT_BODY' || err.code === 'ECONNRESET');

  const stalled = await pool.get(s.url, {}, new AbortController().signal);
  await assert.rejects(stalled.pipe(sink.offer, sink.drained), { code: 'ETIMEDOUT' });

  const ac = new AbortController();
  const aborted = await pool.get(s.url, {}, ac.signal);
  const p = aborted.pipe(sink.offer, sink.drained);
  ac.abort(new Error('stop now'));
  await assert.rejects(p, /stop now/);

  await assert.rejects(pool.get(s.url, { 'x-bad': 'a\r\nb' }, new AbortController().signal), /invalid request header/);
});
