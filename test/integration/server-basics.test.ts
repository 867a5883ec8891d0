import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from '../helpers/start-server.ts';

test('health, readiness, metrics and problem+json 404 on a real server', async (t) => {
  const s = await startServer();
  t.after(() => s.close());

  const health = await fetch(`${s.url}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: 'ok' });

  const ready = await fetch(`${s.url}/readyz`);
  assert.equal(ready.status, 200);

  const missing = await fetch(`${s.url}/no/such/route`);
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const body = (await missing.json()) as Record<string, unknown>;
  assert.equal(body.status, 404);
  assert.equal(body.code, 'FERRY_ERR_NOT_FOUND');
  assert.ok(missing.headers.get('x-request-id'));

  const metrics = await fetch(`${s.url}/metrics`);
  assert.equal(metrics.status, 200);
  const text = await metrics.text();
  assert.match(text, /ferry_http_requests_total\{route="\/healthz",method="GET",status="200"\} 1/);
  assert.match(text, /ferry_process_open_fds/);
  assert.match(text, /ferry_nodejs_eventloop_lag_seconds/);

  const runtime = await fetch(`${s.url}/debug/runtime`);
  assert.equal(runtime.status, 200);
  const rt = (await runtime.json()) as { memory: { rss: number }; openFds: number };
  assert.ok(rt.memory.rss > 0);
  assert.ok(rt.openFds > 0);
});

test('readiness turns false while draining', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const closing = s.server.close(1000);
  assert.equal(s.server.draining, true);
  await closing;
});

test('a malformed percent-escape in the URL is a problem+json 400', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  for (const path of ['/files/%E0%A4%A', '/files/a%zz', '/api/list/%']) {
    const r = await fetch(`${s.url}${path}`);
    assert.equal(r.status, 400, path);
    assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/, path);
    const body = (await r.json()) as { code: string };
    assert.equal(body.code, 'FERRY_ERR_PATH_INVALID', path);
  }
});
