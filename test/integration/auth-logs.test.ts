/**
 * Logs never contain tokens, link signatures or Authorization values (issue 5 §6): a real
 * server with the production logger at debug level is driven through successful and refused
 * requests with every kind of credential, then every log line is searched for the secrets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT } from 'jose';
import { createFerryServer } from '../../src/server/index.ts';
import { loadConfig } from '../../src/config/index.ts';
import { createLogger, redactUrl } from '../../src/observability/logger.ts';
import { hashToken } from '../../src/auth/index.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

const STATIC_TOKEN = 'static-token-SECRET-4f1a';
const JWT_SECRET = 'jwt-secret-SECRET-that-is-long-enough-for-hs256';

test('no log line carries a token, a JWT, a link signature or an Authorization header', async (t) => {
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([{ name: 'ci', role: 'admin', sha256: hashToken(STATIC_TOKEN) }]));
  const lines: string[] = [];
  const destination = new Writable({ write(chunk: Buffer, _e, cb) { lines.push(...chunk.toString().split('\n').filter((l) => l !== '')); cb(); } });
  const logger = createLogger({ level: 'debug', destination });
  const config = loadConfig({
    env: {},
    overrides: { host: '127.0.0.1', port: 0, root: path.join(tmp.dir, 'files'), stateDir: path.join(tmp.dir, 'state'), logLevel: 'debug', anonymous: 'none', tokensFile, jwtSecret: JWT_SECRET },
  });
  const server = await createFerryServer(config, { logger });
  t.after(() => server.close(0));
  const base = await server.listen();
  await mkdir(config.root, { recursive: true });
  await writeFile(path.join(config.root, 'f.txt'), 'hello');

  const jwt = await new SignJWT({ role: 'write', sub: 'bot' }).setProtectedHeader({ alg: 'HS256' }).setExpirationTime('1h').sign(new TextEncoder().encode(JWT_SECRET));
  const badJwt = `${jwt.slice(0, -4)}AAAA`;
  const auth = (token: string) => ({ authorization: `Bearer ${token}` });

  const link = (await (await fetch(`${base}/api/links`, { method: 'POST', headers: { ...auth(STATIC_TOKEN), 'content-type': 'application/json' }, body: JSON.stringify({ path: 'f.txt', expiresIn: 60 }) })).json()) as { url: string };
  const sig = new URL(link.url).searchParams.get('sig')!;
  const requests: Array<[string, RequestInit]> = [
    [`${base}/files/f.txt`, { headers: auth(STATIC_TOKEN) }],
    [`${base}/files/f.txt`, { headers: auth(jwt) }],
    [`${base}/files/f.txt`, { headers: auth(badJwt) }],
    [`${base}/files/f.txt`, { headers: auth('wrong-SECRET-token') }],
    [`${base}/files/f.txt`, { headers: { authorization: 'Basic dXNlcjpTRUNSRVQ=' } }],
    [link.url, {}],
    [link.url.replace('f.txt', 'g.txt'), {}],
    [`${link.url}&token=query-SECRET`, {}],
    [`${base}/files/missing.txt?sig=${sig}&expires=1`, {}],
    [`${base}/debug/runtime`, { headers: auth(STATIC_TOKEN) }],
    [`${base}/no-such-route?sig=${sig}`, { headers: auth(STATIC_TOKEN) }],
  ];
  for (const [url, init] of requests) await (await fetch(url, init)).arrayBuffer();
  // Also through the logger directly, as a route would log a request object.
  logger.info({ req: { headers: { authorization: `Bearer ${STATIC_TOKEN}`, cookie: 'c=SECRET' } }, url: redactUrl(link.url) }, 'request');
  logger.flush();
  await new Promise((r) => setTimeout(r, 100));

  if (process.env.FERRY_TEST_SHOW_LOGS === "1") console.log(lines.join("\n"));
  assert.ok(lines.length > 5, `the server logged (${lines.length} lines)`);
  const secrets = [STATIC_TOKEN, jwt, jwt.split('.')[2]!, badJwt.split('.')[2]!, JWT_SECRET, sig, 'wrong-SECRET-token', 'dXNlcjpTRUNSRVQ=', 'query-SECRET', 'c=SECRET'];
  for (const line of lines) {
    for (const secret of secrets) assert.ok(!line.includes(secret), `a log line contains a secret: ${line}`);
  }
  assert.ok(lines.some((l) => l.includes('[Redacted]')), 'the direct log line was redacted');
  assert.equal(redactUrl('/files/a?expires=1&sig=abc&x=1'), '/files/a?expires=1&sig=[Redacted]&x=1');
});
