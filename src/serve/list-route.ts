/**
 * `GET /api/list/{dir}` (SPEC §2): one sorted page of a folder as JSON,
 * `{entries:[{name,type,size,mtime,etag}], next}`. `?limit=` (1–10000, default 1000) and
 * `?cursor=` (opaque, from `next`) page through folders of any size: storage.list streams the
 * directory and keeps only one page in memory, and paging by name stays correct while files
 * come and go (no offsets that shift). Hidden names are not listed unless --dotfiles allow.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { generateEtag } from '../http/index.ts';
import { FerryError, abortOnClose, parseSafePath } from '../core/index.ts';
import type { ListEntry } from '../storage/index.ts';
import { splitRawTarget, queryParam } from './raw-path.ts';
import type { ServeDeps } from './types.ts';

export const LIST_DEFAULT_LIMIT = 1000;
export const LIST_MAX_LIMIT = 10_000;

export interface ListingEntry {
  readonly name: string;
  readonly type: 'file' | 'directory';
  /** Bytes for files; 0 for folders. */
  readonly size: number;
  /** Modification time, ISO 8601 UTC with milliseconds. */
  readonly mtime: string;
  /** The file's ETag as GET /files would send it (identity coding); null for folders. */
  readonly etag: string | null;
}

export interface Listing {
  readonly entries: readonly ListingEntry[];
  /** Cursor for the next page, or null on the last page. */
  readonly next: string | null;
}

/** Opaque cursor: base64url of the last name returned. */
export function encodeCursor(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

/** Decodes a cursor; throws 400 for anything encodeCursor could not have produced. */
export function decodeCursor(cursor: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw badCursor();
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (name === '' || encodeCursor(name) !== cursor) throw badCursor();
  return name;
}

function badCursor(): FerryError {
  return new FerryError('FERRY_ERR_LIST_CURSOR_INVALID', 'cursor must be a value of "next" from a previous page');
}

export function parseLimit(raw: string | undefined): number {
  if (raw === undefined) return LIST_DEFAULT_LIMIT;
  if (!/^\d{1,6}$/.test(raw)) throw new FerryError('FERRY_ERR_LIST_LIMIT_INVALID', `limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
  const n = Number(raw);
  if (n < 1 || n > LIST_MAX_LIMIT) throw new FerryError('FERRY_ERR_LIST_LIMIT_INVALID', `limit must be an integer from 1 to ${LIST_MAX_LIMIT}`);
  return n;
}

function toListingEntry(e: ListEntry): ListingEntry {
  const file = e.type === 'file';
  return {
    name: e.name,
    type: e.type,
    size: file ? e.stat.size : 0,
    mtime: new Date(e.stat.mtimeMs).toISOString(),
    etag: file ? generateEtag(e.stat) : null,
  };
}

export function registerListRoutes(app: FastifyInstance, deps: ServeDeps): void {
  const handler = async (request: FastifyRequest, reply: FastifyReply): Promise<Listing> => {
    const target = splitRawTarget(request.raw.url, '/api/list');
    const dir = parseSafePath(target.encodedPath);
    const limit = parseLimit(queryParam(target.query, 'limit'));
    const rawCursor = queryParam(target.query, 'cursor');
    const after = rawCursor === undefined || rawCursor === '' ? undefined : decodeCursor(rawCursor);
    const gone = abortOnClose(reply.raw, () => new DOMException('This operation was aborted', 'AbortError'));
    try {
      const page = await deps.storage.list(dir, { limit, signal: gone.signal, ...(after === undefined ? {} : { after }) });
      const entries = page.entries.map(toListingEntry);
      const last = page.entries.at(-1);
      reply.header('cache-control', 'no-store');
      reply.header('x-content-type-options', 'nosniff');
      return { entries, next: page.more && last !== undefined ? encodeCursor(last.name) : null };
    } finally {
      gone.dispose();
    }
  };
  app.get('/api/list', { config: { access: 'read' } }, handler);
  app.get('/api/list/*', { config: { access: 'read' } }, handler);
}
