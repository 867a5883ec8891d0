/**
 * --trust-proxy (SPEC §3): X-Forwarded-For decides the client for the limits only when the
 * operator says a proxy is in front; and a request that came through that proxy is not
 * "local", even though the proxy connects from loopback (else /metrics and /debug/* would be
 * open to the internet behind a same-host reverse proxy).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/start-server.ts';

async function status(url: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await fetch(url, { headers });
  await res.arrayBuffer();
  return res.status;
}

test('with --trust-proxy, X-Forwarded-For names the client for the request-rate limit', async (t) => {
  const s = await startServer({ options: { trustProxy: true, limitReqClient: 1, queueTimeout: '0s' } });
  t.after(() => s.close());
  const list = `${s.url}/api/list/`;
  assert.equal(await status(list, { 'x-forwarded-for': '198.51.100.7' }), 200);
  assert.equal(await status(list, { 'x-forwarded-for': '198.51.100.7' }), 429, 'the same client, over its rate');
  assert.equal(await status(list, { 'x-forwarded-for': '198.51.100.8' }), 200, 'another client behind the proxy');
});

test('without --trust-proxy, X-Forwarded-For is ignored: one client, whatever it claims', async (t) => {
  const s = await startServer({ options: { limitReqClient: 1, queueTimeout: '0s' } });
  t.after(() => s.close());
  const list = `${s.url}/api/list/`;
  assert.equal(await status(list, { 'x-forwarded-for': '198.51.100.7' }), 200);
  assert.equal(await status(list, { 'x-forwarded-for': '198.51.100.8' }), 429);
});

test('behind a trusted proxy, forwarded requests are not local: metrics and diagnostics stay closed', async (t) => {
  const s = await startServer({ options: { trustProxy: true } });
  t.after(() => s.close());
  assert.equal(await status(`${s.url}/metrics`), 200, 'a local request without the proxy');
  assert.equal(await status(`${s.url}/debug/runtime`), 200);
  assert.equal(await status(`${s.url}/metrics`, { 'x-forwarded-for': '203.0.113.5' }), 403);
  assert.equal(await status(`${s.url}/debug/runtime`, { 'x-forwarded-for': '127.0.0.1' }), 403, 'a forwarded request claiming loopback is still forwarded');
  // Without --trust-proxy the header never names the client, but it still says a proxy (or
  // something pretending to be one) is in the way: such a request is not local either.
  const plain = await startServer();
  t.after(() => plain.close());
  assert.equal(await status(`${plain.url}/metrics`, { 'x-forwarded-for': '203.0.113.5' }), 403);
  assert.equal(await status(`${plain.url}/metrics`), 200);
});

test('--metrics-public opens /metrics to everyone, not /debug/*', async (t) => {
  const s = await startServer({ options: { trustProxy: true, metricsPublic: true } });
  t.after(() => s.close());
  assert.equal(await status(`${s.url}/metrics`, { 'x-forwarded-for': '203.0.113.5' }), 200);
  assert.equal(await status(`${s.url}/debug/runtime`, { 'x-forwarded-for': '203.0.113.5' }), 403);
});
