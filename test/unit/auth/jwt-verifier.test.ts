import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT, exportJWK, UnsecuredJWT, type JWTPayload } from 'jose';
import { createJwtVerifier, looksLikeJwt } from '../../../src/auth/index.ts';

const SECRET = 'a-shared-secret-of-at-least-32-bytes!!';
const NOW = Date.UTC(2026, 3, 1);
const NOW_S = Math.floor(NOW / 1000);
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');
const otherEd = generateKeyPairSync('ed25519');

interface Claims extends JWTPayload { role?: unknown; groups?: unknown }

function claims(extra: Claims = {}): Claims {
  return { sub: 'ci-bot', role: 'write', iss: 'https://idp.example', aud: 'ferry', iat: NOW_S, exp: NOW_S + 600, ...extra };
}

async function hs(c: Claims = claims()): Promise<string> {
  return new SignJWT(c).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET));
}

test('HS256, RS256 and EdDSA tokens verify; subject and role come from the claims', async () => {
  const v = createJwtVerifier({ secret: SECRET, issuer: 'https://idp.example', audience: 'ferry', clockSkewMs: 30_000 });
  assert.deepEqual(await v.verify(await hs(), NOW), { ok: true, subject: 'ci-bot', role: 'write' });

  const rs = createJwtVerifier({ publicKey: rsa.publicKey, audience: 'ferry' });
  assert.deepEqual(rs.algorithms, ['RS256']);
  const rsToken = await new SignJWT(claims({ role: 'admin' })).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
  assert.deepEqual(await rs.verify(rsToken, NOW), { ok: true, subject: 'ci-bot', role: 'admin' });

  const eddsa = createJwtVerifier({ publicKey: ed.publicKey });
  const edToken = await new SignJWT(claims({ role: 'read' })).setProtectedHeader({ alg: 'EdDSA' }).sign(ed.privateKey);
  assert.deepEqual(await eddsa.verify(edToken, NOW), { ok: true, subject: 'ci-bot', role: 'read' });
});

test('a JWKS selects the key by kid', async () => {
  const jwk1 = { ...(await exportJWK(ed.publicKey)), kid: 'k1', alg: 'EdDSA' };
  const jwk2 = { ...(await exportJWK(otherEd.publicKey)), kid: 'k2', alg: 'EdDSA' };
  const v = createJwtVerifier({ jwks: { keys: [jwk1, jwk2] } });
  const t2 = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: 'k2' }).sign(otherEd.privateKey);
  assert.equal((await v.verify(t2, NOW)).ok, true);
  const wrongKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: 'k1' }).sign(otherEd.privateKey);
  assert.deepEqual(await v.verify(wrongKid, NOW), { ok: false, reason: 'jwt-signature', detail: 'The token signature does not verify' });
  const unknownKid = await new SignJWT(claims()).setProtectedHeader({ alg: 'EdDSA', kid: 'k9' }).sign(otherEd.privateKey);
  assert.equal((await v.verify(unknownKid, NOW) as { reason: string }).reason, 'jwt-unknown-key');
});

test('claims are checked: exp, nbf (with clock skew), iss, aud, role', async () => {
  const v = createJwtVerifier({ secret: SECRET, issuer: 'https://idp.example', audience: 'ferry', clockSkewMs: 30_000 });
  const cases: Array<[string, Claims, string | undefined]> = [
    ['expired', claims({ exp: NOW_S - 31 }), 'jwt-expired'],
    ['expired within the skew', claims({ exp: NOW_S - 29 }), undefined],
    ['not valid yet', claims({ nbf: NOW_S + 31 }), 'jwt-not-yet-valid'],
    ['nbf within the skew', claims({ nbf: NOW_S + 29 }), undefined],
    ['wrong audience', claims({ aud: 'someone-else' }), 'jwt-audience'],
    ['audience list containing ours', claims({ aud: ['x', 'ferry'] }), undefined],
    ['wrong issuer', claims({ iss: 'https://evil.example' }), 'jwt-issuer'],
    ['no exp', claims({ exp: undefined }), 'jwt-claims'],
    ['no role', claims({ role: undefined }), 'jwt-role'],
    ['unknown role', claims({ role: 'root' }), 'jwt-role'],
    ['role list: the highest known wins', claims({ role: ['read', 'admin', 'x'] }), undefined],
  ];
  for (const [what, c, reason] of cases) {
    const r = await v.verify(await hs(c), NOW);
    if (reason === undefined) assert.equal(r.ok, true, what);
    else assert.equal(!r.ok && r.reason, reason, what);
  }
});

test('the role claim name is configurable', async () => {
  const v = createJwtVerifier({ secret: SECRET, roleClaim: 'ferry_role' });
  assert.deepEqual(await v.verify(await hs(claims({ role: undefined, ferry_role: 'admin' })), NOW), { ok: true, subject: 'ci-bot', role: 'admin' });
  assert.equal((await v.verify(await hs(claims()), NOW) as { reason: string }).reason, 'jwt-role');
});

test('algorithm confusion and unsigned tokens are refused', async () => {
  const rs = createJwtVerifier({ publicKey: rsa.publicKey });
  // An attacker signs HS256 with the (public) RSA key as the HMAC secret.
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
  const confused = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(String(pem)));
  assert.equal((await rs.verify(confused, NOW) as { reason: string }).reason, 'jwt-algorithm');
  const none = new UnsecuredJWT(claims()).encode();
  assert.equal((await rs.verify(none, NOW)).ok, false);
  const hsOnly = createJwtVerifier({ secret: SECRET });
  const rsToken = await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(rsa.privateKey);
  assert.equal((await hsOnly.verify(rsToken, NOW) as { reason: string }).reason, 'jwt-algorithm');
  const wrongSecret = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('another-secret-of-at-least-32-bytes!!'));
  assert.equal((await hsOnly.verify(wrongSecret, NOW) as { reason: string }).reason, 'jwt-signature');
  assert.equal((await hsOnly.verify('not.a.jwt', NOW) as { reason: string }).reason, 'jwt-malformed');
});

test('looksLikeJwt and a verifier without keys', () => {
  assert.equal(looksLikeJwt('aaa.bbb.ccc'), true);
  assert.equal(looksLikeJwt('plain-static-token'), false);
  assert.throws(() => createJwtVerifier({}), /needs a secret, a public key or a JWKS/);
});
