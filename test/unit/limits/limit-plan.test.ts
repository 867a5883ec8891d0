import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planLimits, clientKeyOf, limitClassOf, sliceBytesFor, burstFor, type TrafficOptions } from '../../../src/limits/index.ts';
import type { Identity } from '../../../src/core/index.ts';

const base: TrafficOptions = {
  limitRate: 1000, limitRateClient: 2000, limitRateGlobal: 10_000, limitConnClient: 2, limitConnGlobal: 10, limitReqClient: 5,
  queueTimeout: 10_000, queueSize: 100,
  roles: { admin: { limitRate: 50_000, limitRateClient: 100_000, limitConnClient: 16 }, anonymous: { limitRateAfter: 4096 } },
};
const anon: Identity = { kind: 'anonymous', name: '198.51.100.1', role: 'read' };
const admin: Identity = { kind: 'token', name: 'ops', role: 'admin' };
const reader: Identity = { kind: 'jwt', name: 'alice', role: 'read' };
const link: Identity = { kind: 'link', name: '198.51.100.1', role: 'read', maxRateBytesPerSec: 300 };

test('the client key is the credential when there is one, else the address', () => {
  assert.equal(clientKeyOf({ identity: admin, clientAddress: '10.0.0.1' }), 'token:ops');
  assert.equal(clientKeyOf({ identity: reader, clientAddress: '10.0.0.1' }), 'jwt:alice');
  assert.equal(clientKeyOf({ identity: anon, clientAddress: '10.0.0.1' }), 'ip:10.0.0.1');
  assert.equal(clientKeyOf({ identity: link, clientAddress: '10.0.0.2' }), 'ip:10.0.0.2');
  assert.equal(clientKeyOf({ identity: undefined, clientAddress: '::1' }), 'ip:::1');
});

test('limit classes: credentials give their role; anonymous and link holders are "anonymous"', () => {
  assert.equal(limitClassOf(admin), 'admin');
  assert.equal(limitClassOf(reader), 'read');
  assert.equal(limitClassOf(anon), 'anonymous');
  assert.equal(limitClassOf(link), 'anonymous');
  assert.equal(limitClassOf(undefined), 'anonymous');
});

test('role overrides win over the server-wide values; global values are shared by all', () => {
  const a = planLimits(base, { identity: admin, clientAddress: 'x' });
  assert.deepEqual([a.transferRate, a.clientRate, a.connClient, a.reqClient, a.globalRate, a.connGlobal, a.priority], [50_000, 100_000, 16, 5, 10_000, 10, 3]);
  const r = planLimits(base, { identity: reader, clientAddress: 'x' });
  assert.deepEqual([r.transferRate, r.clientRate, r.connClient, r.rateAfterBytes, r.priority], [1000, 2000, 2, 0, 1]);
  const n = planLimits(base, { identity: anon, clientAddress: 'x' });
  assert.deepEqual([n.rateAfterBytes, n.priority, n.linkRate], [4096, 0, undefined]);
  assert.equal(planLimits(base, { identity: link, clientAddress: 'x' }).linkRate, 300);
  const none = planLimits({ queueTimeout: 1, queueSize: 1 }, { identity: admin, clientAddress: 'x' });
  assert.deepEqual([none.transferRate, none.clientRate, none.globalRate, none.connClient, none.connGlobal, none.reqClient], [undefined, undefined, undefined, undefined, undefined, undefined]);
});

test('slices are ~1/32 s of the slowest rate within [4 KiB, 256 KiB]; bursts default to one second, at least 50 ms', () => {
  assert.equal(sliceBytesFor(1024 * 1024), 32 * 1024);
  assert.equal(sliceBytesFor(1000), 4096);
  assert.equal(sliceBytesFor(1e12), 256 * 1024);
  assert.equal(burstFor(1_000_000, undefined, 4096), 1_000_000);
  assert.equal(burstFor(1_000_000, 65536, 4096), 65536);
  assert.equal(burstFor(10_000, 100, 4096), 4096, 'never below one slice');
  assert.equal(burstFor(100_000_000, 65536, 262_144), 5_000_000, 'never below 50 ms of the rate');
});
