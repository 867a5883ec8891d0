/** The pure network decisions of src/server: client address behind proxies, connection caps, slow bodies. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileProxyTrust, resolveClientAddress } from '../../../src/server/proxy-trust.ts';
import { decideConnection, planConnectionLimits } from '../../../src/server/connection-guard.ts';
import { judgeBodyProgress } from '../../../src/server/body-guard.ts';

test('client address: right-most untrusted hop of X-Forwarded-For + peer', () => {
  const cases: Array<[string, string | undefined, Parameters<typeof compileProxyTrust>[0], string]> = [
    ['127.0.0.1', '10.9.9.1, 203.0.113.7', true, '203.0.113.7'],
    ['127.0.0.1', undefined, true, '127.0.0.1'],
    ['198.51.100.1', '203.0.113.7', true, '198.51.100.1'],
    ['127.0.0.1', '203.0.113.7', false, '127.0.0.1'],
    ['::ffff:127.0.0.1', '203.0.113.7', true, '203.0.113.7'],
    ['127.0.0.1', '1.1.1.1, 203.0.113.7, 10.0.0.1', 2, '203.0.113.7'],
    ['127.0.0.1', '1.1.1.1, 203.0.113.7, 10.0.0.1', 1, '10.0.0.1'],
    ['127.0.0.1', '10.0.0.9, 10.0.0.1', ['loopback', '10.0.0.0/8'], '10.0.0.9'],
    ['127.0.0.1', 'garbage, 203.0.113.7', true, '203.0.113.7'],
    ['::1', '2001:db8::1', ['::1'], '2001:db8::1'],
    ['127.0.0.1', '192.168.1.5, 172.16.0.1', ['loopback', 'uniquelocal'], '192.168.1.5'],
  ];
  for (const [peer, xff, trust, expected] of cases) {
    assert.equal(resolveClientAddress(peer, xff, compileProxyTrust(trust)), expected, `${peer} ${xff} ${JSON.stringify(trust)}`);
  }
});

test('connection caps derive from the fd soft limit', () => {
  assert.deepEqual(planConnectionLimits({ fdLimit: 1024, maxConnections: undefined, maxConnectionsClient: undefined }), { fdCeiling: 896, maxConnections: 448, maxConnectionsClient: 112 });
  assert.deepEqual(planConnectionLimits({ fdLimit: 256, maxConnections: undefined, maxConnectionsClient: undefined }), { fdCeiling: 192, maxConnections: 96, maxConnectionsClient: 24 });
  assert.deepEqual(planConnectionLimits({ fdLimit: 1024, maxConnections: 10, maxConnectionsClient: undefined }), { fdCeiling: 896, maxConnections: 10, maxConnectionsClient: 16 });
  assert.deepEqual(planConnectionLimits({ fdLimit: undefined, maxConnections: undefined, maxConnectionsClient: undefined }), { fdCeiling: undefined, maxConnections: undefined, maxConnectionsClient: undefined });
  const limits = { maxConnections: 10, maxConnectionsClient: 2, fdCeiling: 100 };
  assert.equal(decideConnection({ open: 10, openFromClient: 0, fdsInUse: 5, exempt: false }, limits), 'max-connections');
  assert.equal(decideConnection({ open: 3, openFromClient: 2, fdsInUse: 5, exempt: false }, limits), 'max-connections-client');
  assert.equal(decideConnection({ open: 3, openFromClient: 2, fdsInUse: 5, exempt: true }, limits), undefined);
  assert.equal(decideConnection({ open: 3, openFromClient: 0, fdsInUse: 100, exempt: false }, limits), 'fd-headroom');
});

test('slow bodies: a deadline for buffered bodies, a windowed rate for streamed ones', () => {
  const limits = { bodyTimeoutMs: 1000, minUploadRateBytesPerSec: 1024, uploadWindowMs: 10_000 };
  const p = { mode: 'buffered' as const, waitedMs: 999, bytes: 0, windowWaitedMs: 0, windowBytes: 0 };
  assert.deepEqual(judgeBodyProgress(p, limits), { kind: 'ok' });
  assert.deepEqual(judgeBodyProgress({ ...p, waitedMs: 1001 }, limits), { kind: 'cut', reason: 'slow-body' });
  const u = { ...p, mode: 'streamed' as const };
  assert.deepEqual(judgeBodyProgress({ ...u, waitedMs: 9999 }, limits), { kind: 'ok' });
  assert.deepEqual(judgeBodyProgress({ ...u, waitedMs: 10_000, bytes: 10_239 }, limits), { kind: 'cut', reason: 'slow-upload' });
  assert.deepEqual(judgeBodyProgress({ ...u, waitedMs: 10_000, bytes: 10_240 }, limits), { kind: 'next-window' });
  assert.deepEqual(judgeBodyProgress({ ...u, waitedMs: 20_000, bytes: 10_300, windowWaitedMs: 10_000, windowBytes: 10_240 }, limits), { kind: 'cut', reason: 'slow-upload' });
  assert.deepEqual(judgeBodyProgress({ ...u, waitedMs: 99_000 }, { ...limits, minUploadRateBytesPerSec: 0 }), { kind: 'ok' });
});
