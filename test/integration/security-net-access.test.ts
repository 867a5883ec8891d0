/**
 * Security hardening, access side: who may take a heap snapshot (it holds the signed-link
 * key), what counts as "local", and --trust-proxy taking the right-most untrusted address of
 * X-Forwarded-For (and believing X-Forwarded-Proto/-Host only from a trusted peer).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startServer, CLI } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { hashToken } from '../../src/auth/index.ts';
import { loadConfig, OptionError } from '../../src/config/index.ts';

async function get(url: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; code: string | undefined; body: string; headers: Headers }> {
  const res = await fetch(url, { method, headers });
  const body = await res.text();
  let code: string | undefined;
  if ((res.headers.get('content-type') ?? '').includes('problem+json')) code = (JSON.parse(body) as { code?: string }).code;
  return { status: res.status, code, body, headers: res.headers };
}

async function tokensFile(t: { after: (fn: () => Promise<void>) => void }, entries: Array<{ name: string; role: string; token: string }>): Promise<string> {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const file = path.join(tmp.dir, 'tokens.json');
  await writeFile(file, JSON.stringify(entries.map((e) => ({ name: e.name, role: e.role, sha256: hashToken(e.token) }))));
  return file;
}

// Old code: `--anonymous none --link-keys K` without tokens answered /debug/heap from loopback
// with 200 and a snapshot containing K (hasCredentials ignored link keys).
test('with --link-keys, a heap snapshot is never served to anonymous loopback', async (t) => {
  const key = 'heap-leak-link-key-7f3a9c';
  const s = await startServer({ options: { anonymous: 'none', linkKeys: key } });
  t.after(() => s.close());
  const heap = await get(`${s.url}/debug/heap`);
  assert.equal(heap.status, 401);
  assert.equal(heap.code, 'FERRY_ERR_AUTH_REQUIRED');
  assert.ok(!heap.body.includes(key));
  // Link keys are credentials for every diagnostics route.
  assert.equal((await get(`${s.url}/debug/runtime`)).status, 401);
});

// Old code: with `--anonymous none` and no --link-keys, /debug/heap answered 200 from loopback
// although the snapshot holds the random per-start link key, which signs read links.
test('without --link-keys, the random link key closes the heap while anonymous cannot read', async (t) => {
  const s = await startServer({ options: { anonymous: 'none' } });
  t.after(() => s.close());
  const heap = await get(`${s.url}/debug/heap`);
  assert.equal(heap.status, 403);
  assert.equal(heap.code, 'FERRY_ERR_FORBIDDEN_SECRETS');
  // Nothing secret in the runtime summary: it stays open to loopback.
  const runtime = await get(`${s.url}/debug/runtime`);
  assert.equal(runtime.status, 200);
  assert.equal(typeof (JSON.parse(runtime.body) as { pid?: unknown }).pid, 'number');
});

// Old code: an admin-only heap was right with tokens, but Via/Forwarded/X-Real-IP did not make
// a request non-local without --trust-proxy (only X-Forwarded-For with it did).
test('anonymous read: the heap opens to loopback, never to anything that came through a proxy', async (t) => {
  const s = await startServer({ options: { anonymous: 'read' } });
  t.after(() => s.close());
  for (const [name, value] of [['via', '1.1 nginx'], ['forwarded', 'for=203.0.113.9'], ['x-real-ip', '203.0.113.9'], ['x-forwarded-for', '127.0.0.1'], ['x-forwarded-host', 'files.example.org']]) {
    const r = await get(`${s.url}/debug/heap`, { [name!]: value! });
    assert.equal(r.status, 403, `${name} makes the request remote`);
    assert.equal(r.code, 'FERRY_ERR_FORBIDDEN_ORIGIN');
    assert.equal((await get(`${s.url}/metrics`, { [name!]: value! })).status, 403, `${name}: /metrics`);
  }
  const heap = await fetch(`${s.url}/debug/heap`);
  assert.equal(heap.status, 200, 'a plain loopback request: the only secret is the random link key, which grants read, which anonymous has');
  await heap.body?.cancel();
});

test('with tokens, the heap needs an admin token even from loopback', async (t) => {
  const file = await tokensFile(t, [{ name: 'w', role: 'write', token: 'heap-write' }, { name: 'a', role: 'admin', token: 'heap-admin' }]);
  const s = await startServer({ options: { anonymous: 'read', tokensFile: file } });
  t.after(() => s.close());
  assert.equal((await get(`${s.url}/debug/heap`)).status, 401);
  assert.equal((await get(`${s.url}/debug/heap`, { authorization: 'Bearer heap-write' })).status, 403);
  assert.equal((await get(`${s.url}/debug/runtime`, { authorization: 'Bearer heap-admin' })).status, 200);
});

async function listStatuses(url: string, forwardedFor: (i: number) => string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await get(`${url}/api/list/`, { 'x-forwarded-for': forwardedFor(i) })).status);
  return statuses;
}

// Old code: `--trust-proxy` trusted every hop, so the client was the left-most X-Forwarded-For
// entry and 10 requests with varying left-most entries all got 200.
test('--trust-proxy: the client is the right-most untrusted address (the issue case)', async (t) => {
  const s = await startServer({ options: { trustProxy: true, limitReqClient: 2, queueTimeout: '0s' } });
  t.after(() => s.close());
  const statuses = await listStatuses(s.url, (i) => `10.9.9.${i}, 203.0.113.7`, 10);
  assert.deepEqual(statuses.slice(0, 2), [200, 200]);
  assert.ok(statuses.filter((x) => x === 429).length >= 7, `one client, over its rate: ${statuses.join(',')}`);
  // A different real client behind the same proxy has its own budget.
  assert.equal((await get(`${s.url}/api/list/`, { 'x-forwarded-for': '203.0.113.8' })).status, 200);
});

test('--trust-proxy N trusts N hops; a CIDR list trusts exactly those proxies', async (t) => {
  const hops = await startServer({ options: { trustProxy: 2, limitReqClient: 1, queueTimeout: '0s' } });
  t.after(() => hops.close());
  // Peer (hop 0) and 10.0.0.1 (hop 1) are trusted: the client is 203.0.113.7 whatever is left of it.
  const viaTwo = await listStatuses(hops.url, (i) => `198.51.100.${i}, 203.0.113.7, 10.0.0.1`, 3);
  assert.deepEqual(viaTwo, [200, 429, 429]);

  const cidr = await startServer({ options: { trustProxy: '127.0.0.0/8, 10.0.0.0/8', limitReqClient: 1, queueTimeout: '0s' } });
  t.after(() => cidr.close());
  // 10.1.2.3 is a trusted inner proxy; 203.0.113.7 is not, so it is the client.
  assert.deepEqual(await listStatuses(cidr.url, (i) => `198.51.100.${i}, 203.0.113.7, 10.1.2.3`, 3), [200, 429, 429]);
  // A spoofed 10.x entry to the left of an untrusted one changes nothing.
  assert.deepEqual(await listStatuses(cidr.url, (i) => `10.0.0.${i}, 203.0.113.50`, 2), [200, 429]);
});

test('the client address in the logs is the right-most untrusted one', async (t) => {
  const s = await startServer({ options: { trustProxy: 1 } });
  t.after(() => s.close());
  await writeFile(path.join(s.root, 'a.txt'), 'hello');
  const r = await get(`${s.url}/files/a.txt`, { 'x-forwarded-for': '192.0.2.1, 198.51.100.9' });
  assert.equal(r.status, 200);
  const line = s.logs.find((l) => l.event === 'transfer' && l.path === 'a.txt');
  assert.equal(line?.client, '198.51.100.9');
});

// Old code: with --trust-proxy (a boolean that trusted everyone) X-Forwarded-Host and -Proto
// from any client became the host and scheme of signed links and of upload Locations.
test('X-Forwarded-Host/-Proto count only from a trusted peer, and only their last value', async (t) => {
  const file = await tokensFile(t, [{ name: 'w', role: 'write', token: 'fwd-write' }]);
  const auth = { authorization: 'Bearer fwd-write' };
  const untrusted = await startServer({ options: { trustProxy: '10.0.0.0/8', tokensFile: file } });
  t.after(() => untrusted.close());
  await writeFile(path.join(untrusted.root, 'a.txt'), 'hello');
  const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https', 'x-forwarded-prefix': '/evil' };
  const link = await fetch(`${untrusted.url}/api/links`, { method: 'POST', headers: { ...auth, ...forged, 'content-type': 'application/json' }, body: JSON.stringify({ path: 'a.txt', expiresIn: 60 }) });
  assert.equal(link.status, 200);
  assert.ok(((await link.json()) as { url: string }).url.startsWith(`${untrusted.url}/files/a.txt?`));
  const created = await fetch(`${untrusted.url}/uploads`, { method: 'POST', headers: { ...auth, ...forged, 'tus-resumable': '1.0.0', 'upload-length': '5', 'upload-metadata': `filename ${Buffer.from('b.txt').toString('base64')}` } });
  assert.equal(created.status, 201);
  assert.ok(created.headers.get('location')!.startsWith(`${untrusted.url}/uploads/`), created.headers.get('location')!);

  // Through a trusted proxy (loopback here): the value the nearest proxy appended wins.
  const trusted = await startServer({ options: { trustProxy: true, tokensFile: file } });
  t.after(() => trusted.close());
  await writeFile(path.join(trusted.root, 'a.txt'), 'hello');
  const viaProxy = await fetch(`${trusted.url}/api/links`, { method: 'POST', headers: { ...auth, 'x-forwarded-host': 'evil.example, files.example.org', 'x-forwarded-proto': 'http, https', 'content-type': 'application/json' }, body: JSON.stringify({ path: 'a.txt', expiresIn: 60 }) });
  assert.ok(((await viaProxy.json()) as { url: string }).url.startsWith('https://files.example.org/files/a.txt?'));
});

test('--trust-proxy values: a bad CIDR stops start-up with exit 2 and one line', () => {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--trust-proxy', '10.0.0.0/33', '--port', '0'], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  assert.equal(r.status, 2);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^ferry: invalid value for option --trust-proxy: "10.0.0.0\/33"; expected true \(= loopback\), false, a hop count/);
  for (const bad of ['not-an-ip', '10.0.0.0/8,,fe80::/129', '::1/x']) {
    assert.throws(() => loadConfig({ argv: ['--trust-proxy', bad], env: {} }), (err: unknown) => err instanceof OptionError && err.message.includes('--trust-proxy') && !err.message.includes('\n'), bad);
  }
  const parsed = (argv: string[]): unknown => loadConfig({ argv, env: {} }).trustProxy;
  assert.equal(parsed(['--trust-proxy']), true);
  assert.equal(parsed(['--trust-proxy', '--port', '1']), true);
  assert.equal(parsed(['--trust-proxy', '3']), 3);
  assert.equal(parsed(['--trust-proxy=0']), false);
  assert.deepEqual(parsed(['--trust-proxy', 'loopback, 10.0.0.0/8,::1']), ['loopback', '10.0.0.0/8', '::1']);
  assert.equal(loadConfig({ argv: ['--no-trust-proxy'], env: { FERRY_TRUST_PROXY: 'uniquelocal' } }).trustProxy, false);
});

// Old code: a client's X-Request-Id of any length was copied into every log line and header.
test('a long or odd X-Request-Id is replaced by a generated one', async (t) => {
  const s = await startServer();
  t.after(() => s.close());
  const long = 'x'.repeat(4000);
  const r = await get(`${s.url}/healthz`, { 'x-request-id': long });
  assert.match(r.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  assert.equal((await get(`${s.url}/healthz`, { 'x-request-id': 'trace-42.a' })).headers.get('x-request-id'), 'trace-42.a');
});
