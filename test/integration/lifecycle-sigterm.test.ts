/**
 * SIGTERM while a download is in flight (SPEC §1): the server stops accepting, the transfer
 * completes byte for byte, and the process exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { startChildServer } from '../helpers/start-server.ts';
import { writeSeededFile } from '../helpers/files.ts';

const SIZE = 48 * 1024 * 1024;

async function waitForLine(lines: string[], re: RegExp, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!lines.some((l) => re.test(l))) {
    if (Date.now() > deadline) throw new Error(`no log line matching ${re}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('SIGTERM during a download: it completes intact, new connections are refused, exit 0', { timeout: 120_000 }, async (t) => {
  const server = await startChildServer(['--shutdown-grace', '60s']);
  t.after(() => server[Symbol.asyncDispose]());
  await mkdir(server.root, { recursive: true });
  const expected = await writeSeededFile(path.join(server.root, 'big.bin'), SIZE, 7);

  const { hostname, port } = new URL(server.url);
  const sock = net.connect(Number(port), hostname);
  await once(sock, 'connect');
  sock.write(`GET /files/big.bin HTTP/1.1\r\nHost: ${hostname}\r\nConnection: close\r\n\r\n`);
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  await once(sock, 'data');
  sock.pause(); // the download is now in flight and held back by this client

  server.kill('SIGTERM');
  await waitForLine(server.lines, /shutting down/, 10_000);

  // Stop accepting: a new connection is refused (or answered 503 while the listener closes).
  const fresh = await fetch(`${server.url}/readyz`).then((r) => r.status, () => 'refused');
  assert.ok(fresh === 'refused' || fresh === 503, `new request after SIGTERM: ${fresh}`);

  sock.resume();
  await once(sock, 'close');
  const raw = Buffer.concat(chunks);
  const headerEnd = raw.indexOf('\r\n\r\n');
  const head = raw.subarray(0, headerEnd).toString('latin1');
  assert.match(head, /^HTTP\/1\.1 200 /);
  assert.match(head, new RegExp(`content-length: ${SIZE}\\r?$`, 'im'));
  const body = raw.subarray(headerEnd + 4);
  assert.equal(body.length, SIZE);
  assert.equal(createHash('sha256').update(body).digest('hex'), expected, 'byte-identical');

  assert.equal(await server.exited, 0);
  const logs = server.lines.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } });
  assert.ok(logs.some((l) => l.event === 'transfer' && l.outcome === 'completed' && l.bytes === SIZE));
});
