import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { exportJWK, SignJWT } from 'jose';
import { loadAuthenticator, hashToken, hasCredentials, AuthConfigError } from '../../../src/auth/index.ts';
import { makeTempDir } from '../../helpers/temp-dir.ts';

test('loads a tokens file, a PEM key and a JWKS file; bad files name the option', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'ci', role: 'write', sha256: hashToken('s3cret') }]));
  const ed = generateKeyPairSync('ed25519');
  const pemFile = path.join(tmp.dir, 'jwt.pem');
  await writeFile(pemFile, ed.publicKey.export({ type: 'spki', format: 'pem' }));
  const jwksFile = path.join(tmp.dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify({ keys: [{ ...(await exportJWK(ed.publicKey)), kid: 'a' }] }));

  const base = { host: '0.0.0.0', anonymous: 'auto' as const };
  const a = await loadAuthenticator({ ...base, tokensFile, jwtPublicKey: pemFile });
  assert.equal(a.tokens?.verify('s3cret')?.name, 'ci');
  assert.equal(a.anonymousRole, undefined);
  const token = await new SignJWT({ role: 'read', sub: 'x' }).setProtectedHeader({ alg: 'EdDSA' }).setExpirationTime('1h').sign(ed.privateKey);
  assert.equal((await a.jwt!.verify(token)).ok, true);
  const b = await loadAuthenticator({ ...base, jwtJwksFile: jwksFile });
  const kidToken = await new SignJWT({ role: 'read' }).setProtectedHeader({ alg: 'EdDSA', kid: 'a' }).setExpirationTime('1h').sign(ed.privateKey);
  assert.equal((await b.jwt!.verify(kidToken)).ok, true);
  assert.equal(a.linkKeys.length, 1);
  assert.equal(a.linkKeys[0]!.length, 32, 'a random 32-byte key when none is configured');
  const c = await loadAuthenticator({ ...base, linkKeys: ['new', 'old'] });
  assert.deepEqual(c.linkKeys.map((k) => Buffer.from(k).toString()), ['new', 'old']);
  assert.equal(hasCredentials({ ...base }), false);
  assert.equal(hasCredentials({ ...base, jwtSecret: 'x' }), true);

  await writeFile(path.join(tmp.dir, 'bad.json'), '[{"name":"x","role":"read","sha256":"not-a-hash"}]');
  const failures: Array<[Parameters<typeof loadAuthenticator>[0], string, RegExp]> = [
    [{ ...base, tokensFile: path.join(tmp.dir, 'missing.json') }, 'tokensFile', /cannot read/],
    [{ ...base, tokensFile: path.join(tmp.dir, 'bad.json') }, 'tokensFile', /64 hex digits/],
    [{ ...base, jwtPublicKey: tokensFile }, 'jwtPublicKey', /not a PEM public key/],
    [{ ...base, jwtJwksFile: tokensFile }, 'jwtJwksFile', /not a JWK Set/],
  ];
  for (const [opts, option, re] of failures) {
    await assert.rejects(loadAuthenticator(opts), (err: unknown) => err instanceof AuthConfigError && err.option === option && re.test(err.message));
  }
});
