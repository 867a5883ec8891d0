/**
 * abortOnClose on a real ServerResponse: a client that goes away aborts the signal with the
 * given reason; a response that finished does not; dispose removes the listener.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { abortOnClose, isFerryError, type CloseSignal } from '../../../src/core/index.ts';

async function withServer(handle: (res: http.ServerResponse) => void, client: (port: number) => Promise<void>): Promise<void> {
  const server = http.createServer((_req, res) => { handle(res); });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  try {
    await client((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    server.close();
  }
}

test('a client that goes away aborts with the reason; the default is FERRY_ERR_CLIENT_ABORTED', async () => {
  let gone: CloseSignal | undefined;
  let wrote!: () => void;
  const seen = new Promise<void>((resolve) => { wrote = resolve; });
  await withServer((res) => {
    gone = abortOnClose(res);
    res.writeHead(200);
    res.write('x'); // never ended: only the client can close it
    wrote();
  }, async (port) => {
    const req = http.get({ host: '127.0.0.1', port });
    req.on('error', () => {});
    const [response] = await once(req, 'response') as [http.IncomingMessage];
    await seen;
    response.destroy();
    req.destroy();
    await once(gone!.signal, 'abort');
  });
  assert.ok(isFerryError(gone!.signal.reason));
  assert.equal((gone!.signal.reason as { code: string }).code, 'FERRY_ERR_CLIENT_ABORTED');
});

test('a finished response does not abort; dispose removes the listener', async () => {
  await withServer((res) => {
    const before = res.listenerCount('close');
    const gone = abortOnClose(res, () => new Error('unused'));
    assert.equal(res.listenerCount('close'), before + 1);
    res.on('close', () => { assert.equal(gone.signal.aborted, false); });
    res.end('done', () => { gone.dispose(); assert.equal(res.listenerCount('close'), before + 1); /* the assertion listener above */ });
  }, async (port) => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), 'done');
  });
});
