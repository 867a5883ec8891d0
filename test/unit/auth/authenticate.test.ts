import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT } from 'jose';
import {
  authenticate, decideAccess, createStaticTokens, createJwtVerifier, hashToken, signedLinkPath, resolveAnonymousRole, isLoopbackHost,
  type Authenticator, type AuthInput,
} from '../../../src/auth/index.ts';
import type { Access, Identity } from '../../../src/core/index.ts';

const SECRET = 'jwt-secret-jwt-secret-jwt-secret-0123';
const KEY = Buffer.from('link-key');
const NOW = Date.UTC(2026, 5, 1);

const auth: Authenticator = {
  tokens: createStaticTokens([{ name: 'reader', role: 'read', sha256: hashToken('t-read') }, { name: 'boss', role: 'admin', sha256: hashToken('t-admin') }]),
  jwt: createJwtVerifier({ secret: SECRET, audience: 'ferry' }),
  linkKeys: [KEY],
  anonymousRole: undefined,
};

function input(over: Partial<AuthInput>): AuthInput {
  return { method: 'GET', url: '/files/a.bin', authorization: undefined, clientAddress: '203.0.113.9', linkAllowed: true, nowMs: NOW, ...over };
}

test('identity: anonymous, static token, JWT, signed link', async () => {
  assert.deepEqual(await authenticate(auth, input({})), { ok: true, identity: { kind: 'anonymous', name: '203.0.113.9', role: undefined } });
  assert.deepEqual(await authenticate({ ...auth, anonymousRole: 'read' }, input({})), { ok: true, identity: { kind: 'anonymous', name: '203.0.113.9', role: 'read' } });
  assert.deepEqual(await authenticate(auth, input({ authorization: 'Bearer t-admin' })), { ok: true, identity: { kind: 'token', name: 'boss', role: 'admin' } });
  assert.deepEqual(await authenticate(auth, input({ authorization: 'bearer   t-read' })), { ok: true, identity: { kind: 'token', name: 'reader', role: 'read' } });
  const jwt = await new SignJWT({ sub: 'alice', role: 'write', aud: 'ferry' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(Math.floor(NOW / 1000) + 60).sign(new TextEncoder().encode(SECRET));
  assert.deepEqual(await authenticate(auth, input({ authorization: `Bearer ${jwt}` })), { ok: true, identity: { kind: 'jwt', name: 'alice', role: 'write' } });
  const url = signedLinkPath({ method: 'GET', path: '/files/a.bin', expiresUnix: NOW / 1000 + 60, maxRateBytesPerSec: 5000 }, KEY);
  assert.deepEqual(await authenticate(auth, input({ url })), { ok: true, identity: { kind: 'link', name: '203.0.113.9', role: 'read', maxRateBytesPerSec: 5000 } });
});

test('refusals carry the code, the metric reason and an RFC 6750 challenge', async () => {
  const cases: Array<[string, Partial<AuthInput>, string, string, RegExp | undefined]> = [
    ['unknown token', { authorization: 'Bearer nope' }, 'FERRY_ERR_AUTH_INVALID', 'token-unknown', /^Bearer realm="ferry", error="invalid_token"/],
    ['basic auth', { authorization: 'Basic dXNlcjpwYXNz' }, 'FERRY_ERR_AUTH_INVALID', 'scheme', /error="invalid_request"/],
    ['empty bearer', { authorization: 'Bearer ' }, 'FERRY_ERR_AUTH_INVALID', 'malformed', /error="invalid_token"/],
    ['bad jwt', { authorization: 'Bearer aaa.bbb.ccc' }, 'FERRY_ERR_AUTH_INVALID', 'jwt-malformed', /error="invalid_token"/],
    ['link on a route without links', { url: '/api/list/?expires=1&sig=x', linkAllowed: false }, 'FERRY_ERR_LINK_INVALID', 'link-route', undefined],
    ['bad link', { url: '/files/a.bin?expires=99999999999&sig=AAAA' }, 'FERRY_ERR_LINK_INVALID', 'link-malformed', undefined],
  ];
  for (const [what, over, code, reason, challenge] of cases) {
    const r = await authenticate(auth, input(over));
    assert.equal(r.ok, false, what);
    if (r.ok) continue;
    assert.equal(r.code, code, what);
    assert.equal(r.reason, reason, what);
    if (challenge === undefined) assert.equal(r.headers['www-authenticate'], undefined, what);
    else assert.match(r.headers['www-authenticate'] ?? '', challenge, what);
  }
});

test('decideAccess: the SPEC §2.3 table', () => {
  const anon: Identity = { kind: 'anonymous', name: 'x', role: undefined };
  const anonRead: Identity = { kind: 'anonymous', name: 'x', role: 'read' };
  const read: Identity = { kind: 'token', name: 'r', role: 'read' };
  const write: Identity = { kind: 'jwt', name: 'w', role: 'write' };
  const admin: Identity = { kind: 'token', name: 'a', role: 'admin' };
  const link: Identity = { kind: 'link', name: 'x', role: 'read' };
  const remote = { loopback: false, credentialsConfigured: true, metricsPublic: false };
  const local = { loopback: true, credentialsConfigured: true, metricsPublic: false };
  const localNoCreds = { loopback: true, credentialsConfigured: false, metricsPublic: false };
  const remoteNoCreds = { loopback: false, credentialsConfigured: false, metricsPublic: false };
  const cases: Array<[Access, Identity, typeof remote, string]> = [
    ['public', anon, remote, 'ok'],
    ['read', anon, remote, 'FERRY_ERR_AUTH_REQUIRED'],
    ['read', anonRead, remote, 'ok'],
    ['read', read, remote, 'ok'],
    ['read', link, remote, 'ok'],
    ['write', anonRead, remote, 'FERRY_ERR_AUTH_REQUIRED'],
    ['write', read, remote, 'FERRY_ERR_AUTH_FORBIDDEN'],
    ['write', link, remote, 'FERRY_ERR_AUTH_FORBIDDEN'],
    ['write', write, remote, 'ok'],
    ['write', admin, remote, 'ok'],
    ['admin', write, remote, 'FERRY_ERR_AUTH_FORBIDDEN'],
    ['admin', admin, remote, 'ok'],
    ['metrics', anon, remote, 'FERRY_ERR_AUTH_REQUIRED'],
    ['metrics', anon, remoteNoCreds, 'FERRY_ERR_FORBIDDEN_ORIGIN'],
    ['metrics', write, remote, 'FERRY_ERR_AUTH_FORBIDDEN'],
    ['metrics', anon, local, 'ok'],
    ['metrics', admin, remote, 'ok'],
    ['metrics', anon, { ...remote, metricsPublic: true }, 'ok'],
    ['loopback-or-admin', anon, localNoCreds, 'ok'],
    ['loopback-or-admin', anon, remoteNoCreds, 'FERRY_ERR_FORBIDDEN_ORIGIN'],
    ['loopback-or-admin', anon, local, 'FERRY_ERR_AUTH_REQUIRED'],
    ['loopback-or-admin', anonRead, local, 'FERRY_ERR_AUTH_REQUIRED'],
    ['loopback-or-admin', write, local, 'FERRY_ERR_AUTH_FORBIDDEN'],
    ['loopback-or-admin', admin, remote, 'ok'],
  ];
  for (const [access, identity, ctx, expected] of cases) {
    const d = decideAccess(access, identity, ctx);
    assert.equal(d.ok ? 'ok' : d.code, expected, `${access} × ${identity.kind}:${identity.role ?? '-'} × ${JSON.stringify(ctx)}`);
    if (!d.ok && d.code === 'FERRY_ERR_AUTH_REQUIRED') assert.equal(d.headers['www-authenticate'], 'Bearer realm="ferry"');
  }
});

test('--anonymous auto: read on a loopback listen address only', () => {
  assert.equal(resolveAnonymousRole('auto', '127.0.0.1'), 'read');
  assert.equal(resolveAnonymousRole('auto', '::1'), 'read');
  assert.equal(resolveAnonymousRole('auto', 'localhost'), 'read');
  assert.equal(resolveAnonymousRole('auto', '0.0.0.0'), undefined);
  assert.equal(resolveAnonymousRole('auto', '192.168.1.10'), undefined);
  assert.equal(resolveAnonymousRole('read', '0.0.0.0'), 'read');
  assert.equal(resolveAnonymousRole('none', '127.0.0.1'), undefined);
  assert.equal(isLoopbackHost('[::1]'), true);
});
