/**
 * The access matrix as a sweep over the live route table (SPEC §2.3): every route any
 * capability registers is collected with an onRoute hook (through Fastify's
 * `fastify.initialization` diagnostics channel, before a single route exists) and requested
 * as each identity. A new route without `config.access` fails here; a route whose declared
 * access is not enforced fails here. Nobody has to remember to add it to a list.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { SignJWT } from 'jose';
import { startServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';
import { hashToken, signedLinkPath } from '../../src/auth/index.ts';
import { roleAtLeast, type Access, type Role } from '../../src/core/index.ts';

const ACCESS_VALUES: readonly string[] = ['public', 'read', 'write', 'admin', 'metrics', 'loopback-or-admin'];
const DENIAL_CODES = new Set(['FERRY_ERR_AUTH_REQUIRED', 'FERRY_ERR_AUTH_INVALID', 'FERRY_ERR_AUTH_FORBIDDEN', 'FERRY_ERR_FORBIDDEN_ORIGIN', 'FERRY_ERR_LINK_INVALID']);
const JWT_SECRET = 'matrix-jwt-secret-that-is-long-enough-0123456789';
const LINK_KEY = 'matrix-link-key';

interface CollectedRoute { method: string; url: string; access: unknown }

const collected: CollectedRoute[] = [];
const onInit = (message: unknown): void => {
  const { fastify } = message as { fastify: FastifyInstance };
  fastify.addHook('onRoute', (opts: RouteOptions) => {
    const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
    for (const method of methods) collected.push({ method, url: opts.url ?? '', access: (opts.config as { access?: unknown } | undefined)?.access });
  });
};

async function jwt(claims: Record<string, unknown>, expSeconds: number): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setIssuedAt().setExpirationTime(Math.floor(Date.now() / 1000) + expSeconds).sign(new TextEncoder().encode(JWT_SECRET));
}

/** A concrete URL for a route pattern. */
function concrete(url: string): string {
  return url.replace(/\*$/, 'matrix-probe.txt').replace(/:[A-Za-z_]+/g, 'probe');
}

interface Probe { status: number; code: string | undefined; challenge: string | null }

async function probe(base: string, method: string, url: string, authorization?: string): Promise<Probe> {
  const headers: Record<string, string> = {};
  if (authorization !== undefined) headers.authorization = authorization;
  let body: string | undefined;
  if (method === 'POST' || method === 'PUT' || method === 'PATCH') {
    headers['content-type'] = url.startsWith('/api/') ? 'application/json' : 'application/offset+octet-stream';
    body = url.startsWith('/api/') ? JSON.stringify({ path: 'matrix-probe.txt', expiresIn: 60 }) : 'x';
  }
  const res = await fetch(`${base}${url}`, { method, headers, body, signal: AbortSignal.timeout(30_000) });
  let code: string | undefined;
  if (method !== 'HEAD' && (res.headers.get('content-type') ?? '').includes('json')) {
    const text = await res.text();
    try { code = (JSON.parse(text) as { code?: string }).code; } catch { /* not JSON */ }
  } else {
    await res.body?.cancel();
  }
  return { status: res.status, code, challenge: res.headers.get('www-authenticate') };
}

function denied(p: Probe): boolean {
  if (p.status !== 401 && p.status !== 403) return false;
  return p.code === undefined || DENIAL_CODES.has(p.code);
}

test('every route in the live route table enforces its declared access for every identity', async (t) => {
  diagnosticsChannel.subscribe('fastify.initialization', onInit);
  t.after(() => diagnosticsChannel.unsubscribe('fastify.initialization', onInit));
  const tmp = await makeTempDir();
  t.after(() => tmp.remove());
  const tokensFile = path.join(tmp.dir, 'tokens.json');
  await writeFile(tokensFile, JSON.stringify([
    { name: 'reader', role: 'read', sha256: hashToken('tok-read') },
    { name: 'boss', role: 'admin', sha256: hashToken('tok-admin') },
  ]));
  const s = await startServer({ options: { anonymous: 'none', tokensFile, jwtSecret: JWT_SECRET, jwtAudience: 'ferry', jwtIssuer: 'matrix-idp', linkKeys: LINK_KEY } });
  t.after(() => s.close());
  await mkdir(s.root, { recursive: true });
  await writeFile(path.join(s.root, 'matrix-probe.txt'), 'hello');

  // The table must be real: the routes every build has, plus whatever capabilities added.
  const routes = [...collected];
  for (const must of ['/healthz', '/metrics', '/debug/runtime', '/api/links']) assert.ok(routes.some((r) => r.url === must), `route ${must} was collected`);
  const undeclared = routes.filter((r) => typeof r.access !== 'string' || !ACCESS_VALUES.includes(r.access));
  assert.deepEqual(undeclared.map((r) => `${r.method} ${r.url}`), [], 'every route declares config.access');

  const iss = { iss: 'matrix-idp', aud: 'ferry' };
  const identities: Array<{ name: string; authorization: string | undefined; role: Role | undefined; valid: boolean }> = [
    { name: 'anonymous', authorization: undefined, role: undefined, valid: true },
    { name: 'read (static token)', authorization: 'Bearer tok-read', role: 'read', valid: true },
    { name: 'write (JWT)', authorization: `Bearer ${await jwt({ ...iss, sub: 'ci', role: 'write' }, 600)}`, role: 'write', valid: true },
    { name: 'admin (static token)', authorization: 'Bearer tok-admin', role: 'admin', valid: true },
    { name: 'bad token', authorization: 'Bearer not-a-real-token', role: undefined, valid: false },
    { name: 'expired JWT', authorization: `Bearer ${await jwt({ ...iss, sub: 'old', role: 'admin' }, -3600)}`, role: undefined, valid: false },
    { name: 'wrong audience', authorization: `Bearer ${await jwt({ iss: 'matrix-idp', aud: 'another-service', sub: 'x', role: 'admin' }, 600)}`, role: undefined, valid: false },
  ];

  const failures: string[] = [];
  for (const route of routes) {
    const access = route.access as Access;
    const url = concrete(route.url);
    for (const id of identities) {
      // The test client is loopback: metrics answer it; diagnostics do not, since credentials exist.
      const allowed = access === 'public' || (id.valid && (
        access === 'metrics' ? true
          : access === 'loopback-or-admin' ? id.role === 'admin'
            : roleAtLeast(id.role, access)));
      const p = await probe(s.url, route.method, url, id.authorization);
      const what = `${route.method} ${route.url} [${access}] as ${id.name}: ${p.status} ${p.code ?? ''}`;
      if (allowed && denied(p)) failures.push(`${what} — should be allowed`);
      if (!allowed) {
        if (!denied(p)) failures.push(`${what} — should be denied`);
        const expected = !id.valid || id.role === undefined ? 401 : 403;
        if (p.status !== expected) failures.push(`${what} — expected ${expected}`);
        if (p.status === 401 && p.challenge === null) failures.push(`${what} — 401 without WWW-Authenticate`);
      }
    }
    // A correctly signed link for exactly this URL opens GET/HEAD of /files and /zip, nothing else.
    const linkUrl = signedLinkPath({ method: route.method, path: url, expiresUnix: Math.floor(Date.now() / 1000) + 60 }, Buffer.from(LINK_KEY));
    const linkOpens = (route.method === 'GET' || route.method === 'HEAD') && access === 'read' && /^\/(files|zip)(\/|$)/.test(route.url);
    const p = await probe(s.url, route.method, linkUrl);
    const what = `${route.method} ${route.url} [${access}] with a signed link: ${p.status} ${p.code ?? ''}`;
    if (access !== 'public') {
      if (linkOpens && denied(p)) failures.push(`${what} — should be allowed`);
      if (!linkOpens && !(p.status === 403 && denied(p))) failures.push(`${what} — should be 403`);
    }
  }
  assert.deepEqual(failures, []);
});

test('with --anonymous read, requests without credentials may read and nothing more', async (t) => {
  collected.length = 0;
  diagnosticsChannel.subscribe('fastify.initialization', onInit);
  t.after(() => diagnosticsChannel.unsubscribe('fastify.initialization', onInit));
  const s = await startServer({ options: { anonymous: 'read', jwtSecret: JWT_SECRET } });
  t.after(() => s.close());
  const failures: string[] = [];
  for (const route of collected) {
    const access = route.access as Access;
    if (access === 'metrics' || access === 'loopback-or-admin') continue;
    const p = await probe(s.url, route.method, concrete(route.url));
    const allowed = access === 'public' || access === 'read';
    if (allowed === denied(p)) failures.push(`${route.method} ${route.url} [${access}] anonymous: ${p.status} ${p.code ?? ''}`);
    if (!allowed && p.status !== 401) failures.push(`${route.method} ${route.url} [${access}] anonymous: expected 401, got ${p.status}`);
  }
  assert.ok(collected.length > 0);
  assert.deepEqual(failures, []);
});
