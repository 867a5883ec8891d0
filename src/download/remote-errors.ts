/**
 * Errors that describe how one attempt failed, and how the retry loop reads them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError, type FerryErrorCode } from '../core/errors.ts';
import { headerValue, redactUrl } from './http-client.ts';
import { classifyStatus, isRetryableNetworkError } from './retry-policy.ts';
import { parseRetryAfter } from './retry-after.ts';
import type { Dispatcher } from 'undici';

/** The server answered with a status the client cannot use. */
export class RemoteStatusError extends FerryError {
  readonly status: number;
  readonly retryable: boolean;
  readonly retryAfterMs: number | undefined;
  constructor(status: number, url: URL, detail: string, retryAfterMs: number | undefined) {
    super('FERRY_ERR_CLIENT_HTTP_STATUS', `HTTP ${status} from ${redactUrl(url)}${detail === '' ? '' : `: ${detail}`}`, { extra: { status } });
    this.status = status;
    this.retryable = classifyStatus(status) === 'retry';
    this.retryAfterMs = retryAfterMs;
  }
}

/** Builds a RemoteStatusError, reading a short problem+json `detail`/`title` when offered. */
export async function remoteStatusError(status: number, url: URL, headers: IncomingHttpHeaders, body: Dispatcher.ResponseData['body']): Promise<RemoteStatusError> {
  let detail = '';
  const type = headerValue(headers, 'content-type') ?? '';
  try {
    if (/json/i.test(type)) {
      const text = await readLimited(body, 8192);
      const parsed = JSON.parse(text) as { detail?: unknown; title?: unknown };
      if (typeof parsed.detail === 'string') detail = parsed.detail;
      else if (typeof parsed.title === 'string') detail = parsed.title;
    } else {
      await body.dump();
    }
  } catch {
    body.destroy();
  }
  return new RemoteStatusError(status, url, detail.slice(0, 300), parseRetryAfter(headerValue(headers, 'retry-after'), Date.now()));
}

async function readLimited(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body) {
    chunks.push(chunk as Buffer);
    total += (chunk as Buffer).length;
    if (total >= maxBytes) { body.destroy(); break; }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, maxBytes);
}

/** The representation changed while we were fetching it. */
export function changedError(detail: string): FerryError {
  return new FerryError('FERRY_ERR_DOWNLOAD_CHANGED', detail);
}

export function isCode(err: unknown, code: FerryErrorCode): boolean {
  return err instanceof FerryError && err.code === code;
}

/** How the retry loop treats a failed attempt. */
export type AttemptVerdict = { retry: true; retryAfterMs: number | undefined; reason: string } | { retry: false };

export function judgeFailure(err: unknown): AttemptVerdict {
  if (err instanceof RemoteStatusError) return err.retryable ? { retry: true, retryAfterMs: err.retryAfterMs, reason: err.message } : { retry: false };
  if (err instanceof FerryError && !isCode(err, 'FERRY_ERR_CLIENT_SHORT_BODY')) return { retry: false };
  if (isRetryableNetworkError(err)) return { retry: true, retryAfterMs: undefined, reason: describeNetworkError(err) };
  return { retry: false };
}

export function describeNetworkError(err: unknown): string {
  const code = (err as { code?: unknown }).code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? `${code}: ${message}` : message;
}

/** Local file errors (disk full, permissions) as one clear FerryError. */
export function localIoError(err: unknown, file: string, statePath: string | undefined): FerryError {
  const code = (err as { code?: unknown }).code;
  const what = code === 'ENOSPC' ? 'no space left on device'
    : code === 'EDQUOT' ? 'disk quota exceeded'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EROFS' ? 'read-only file system'
    : err instanceof Error ? err.message : String(err);
  const keep = statePath === undefined ? '' : `; progress is kept in ${statePath}, run the same command again to continue`;
  return new FerryError('FERRY_ERR_CLIENT_LOCAL_IO', `cannot write ${file}: ${what}${typeof code === 'string' ? ` (${code})` : ''}${keep}`, { cause: err, extra: { errno: code } });
}
