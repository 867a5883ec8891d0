/**
 * `POST /api/links` (SPEC §2.3): a signed, expiring link to a file or a zip that works
 * without credentials until it expires.
 *
 *   {path, expiresIn, maxRate?}                       → /files/{path}?expires=…&sig=…
 *   {path, expiresIn, zip: true}                      → /zip/{path}?expires=…&sig=…
 *   {paths: [A, B], name?, expiresIn, zip: true}      → /zip?path=A&path=B&name=N&expires=…&sig=…
 *
 * `expiresIn` is seconds (number) or a duration (`"24h"`); `maxRate` bytes/s or a rate
 * (`"2M"`), bound into the signature. Readers may link what they can read (the path must
 * exist and be visible); admins may link any valid path, also one that does not exist yet.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FerryError, parseDecodedPath, parseDuration, parseRate, roleAtLeast, type SafePath } from '../core/index.ts';
import { resolveLinkKeys, signedLinkPath } from '../auth/index.ts';
import type { Storage } from '../storage/index.ts';

/** The options this route reads (structural: serve does not import config). */
export interface LinksConfig {
  readonly linkKeys?: readonly string[] | undefined;
}

export interface LinksRouteDeps {
  /** The server's config object: the random link key (when none is configured) is shared per object with the access hook. */
  readonly config: LinksConfig;
  readonly storage: Storage;
}

/** Longest link lifetime: one year. */
const MAX_EXPIRES_IN_SEC = 366 * 24 * 3600;

interface LinkRequestBody {
  path?: unknown;
  paths?: unknown;
  name?: unknown;
  zip?: unknown;
  expiresIn?: unknown;
  maxRate?: unknown;
}

function bad(detail: string): FerryError {
  return new FerryError('FERRY_ERR_BAD_REQUEST', detail);
}

function parseExpiresIn(raw: unknown): number {
  let seconds: number | undefined;
  if (typeof raw === 'number' && Number.isFinite(raw)) seconds = Math.floor(raw);
  else if (typeof raw === 'string') {
    const ms = parseDuration(raw);
    if (ms !== undefined) seconds = Math.floor(ms / 1000);
  }
  if (seconds === undefined || seconds < 1 || seconds > MAX_EXPIRES_IN_SEC) {
    throw bad(`expiresIn must be seconds (a number) or a duration such as "24h", between 1s and ${MAX_EXPIRES_IN_SEC / 86400} days`);
  }
  return seconds;
}

function parseMaxRate(raw: unknown): number | undefined {
  if (raw === undefined || raw === null) return undefined;
  const rate = typeof raw === 'number' ? Math.floor(raw) : typeof raw === 'string' ? parseRate(raw) : undefined;
  if (rate === undefined || !Number.isSafeInteger(rate) || rate < 1) throw bad('maxRate must be bytes per second (a number) or a rate such as "2M"');
  return rate;
}

function encodePath(p: SafePath): string {
  return p.segments.map((s) => encodeURIComponent(s)).join('/');
}

function stringPath(raw: unknown, field: string): SafePath {
  if (typeof raw !== 'string') throw bad(`${field} must be a string (a path relative to the served folder)`);
  return parseDecodedPath(raw);
}

/** Readers link only what they could download now; admins any valid path. */
async function checkReadable(request: FastifyRequest, storage: Storage, path: SafePath, wantFile: boolean): Promise<void> {
  if (roleAtLeast(request.identity?.role, 'admin') && request.identity?.kind !== 'anonymous') return;
  const stat = await storage.stat(path);
  if (wantFile && stat.type !== 'file') throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'A /files link needs a file; use "zip": true for a folder');
}

export function registerLinksRoutes(app: FastifyInstance, deps: LinksRouteDeps): void {
  app.post('/api/links', { config: { access: 'read' } }, async (request, reply) => {
    const body = (request.body ?? {}) as LinkRequestBody;
    if (typeof body !== 'object' || Array.isArray(body)) throw bad('expected a JSON object {path, expiresIn, maxRate?}');
    const expiresInSec = parseExpiresIn(body.expiresIn);
    const maxRate = parseMaxRate(body.maxRate);
    if (body.zip !== undefined && typeof body.zip !== 'boolean') throw bad('zip must be true or false');
    const zip = body.zip === true;

    let routePath: string;
    let query: Array<[string, string]> = [];
    if (body.paths !== undefined) {
      if (!zip) throw bad('paths (a selection) needs "zip": true');
      if (body.path !== undefined) throw bad('give either path or paths, not both');
      if (!Array.isArray(body.paths) || body.paths.length === 0 || body.paths.length > 1000) throw bad('paths must be a non-empty array of at most 1000 paths');
      const paths = body.paths.map((p, i) => stringPath(p, `paths[${i}]`));
      for (const p of paths) await checkReadable(request, deps.storage, p, false);
      query = paths.map((p) => ['path', p.relative] as [string, string]);
      if (body.name !== undefined) {
        if (typeof body.name !== 'string' || body.name === '' || /[/\\\0]/.test(body.name)) throw bad('name must be a file name without separators');
        query.push(['name', body.name]);
      }
      routePath = '/zip';
    } else {
      const path = stringPath(body.path, 'path');
      if (!zip && path.segments.length === 0) throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'The root is a folder; use "zip": true');
      await checkReadable(request, deps.storage, path, !zip);
      routePath = `${zip ? '/zip/' : '/files/'}${encodePath(path)}`;
    }

    const keys = resolveLinkKeys(deps.config.linkKeys, deps.config);
    const expiresUnix = Math.floor(Date.now() / 1000) + expiresInSec;
    const pathAndQuery = signedLinkPath({ method: 'GET', path: routePath, query, expiresUnix, maxRateBytesPerSec: maxRate }, keys[0]!);
    // request.protocol and request.host honour X-Forwarded-Proto/-Host only with --trust-proxy.
    const url = `${request.protocol}://${request.host}${pathAndQuery}`;
    reply.header('cache-control', 'no-store');
    return { url, expiresAt: new Date(expiresUnix * 1000).toISOString(), ...(maxRate === undefined ? {} : { maxRate }) };
  });
}
