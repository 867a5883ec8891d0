/**
 * The request path exactly as the client sent it. Fastify's wildcard parameter is already
 * percent-decoded, which would turn `%2F` into a separator; the jail (parseSafePath) must see
 * the encoded form to refuse encoded separators, so routes read `request.raw.url` themselves.
 */
import { FerryError } from '../core/index.ts';

export interface RawTarget {
  /** Percent-encoded path after the route prefix, without a leading slash; '' for the prefix itself. */
  readonly encodedPath: string;
  /** Raw query string without `?` ('' when none). */
  readonly query: string;
}

const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/**
 * Splits `request.raw.url` into the part after `prefix` (e.g. `/files`) and the query.
 * Absolute-form targets (RFC 9112 §3.2.2, `GET http://host/files/x`) are reduced to their
 * path without any normalisation, so `..` still reaches the jail and is refused there.
 */
export function splitRawTarget(rawUrl: string | undefined, prefix: string): RawTarget {
  let url = rawUrl ?? '/';
  const abs = ABSOLUTE_FORM.exec(url);
  if (abs !== null) url = url.slice(abs[0].length) || '/';
  const q = url.indexOf('?');
  const pathPart = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q + 1);
  if (pathPart === prefix) return { encodedPath: '', query };
  if (!pathPart.startsWith(`${prefix}/`)) {
    // The router matched a differently spelled prefix (e.g. percent-encoded letters): refuse
    // rather than guess which bytes belong to the path.
    throw new FerryError('FERRY_ERR_PATH_INVALID', 'unexpected request target');
  }
  return { encodedPath: pathPart.slice(prefix.length + 1), query };
}

/** True when the query has the parameter `name` (with or without a value). */
export function hasQueryParam(query: string, name: string): boolean {
  if (query === '') return false;
  for (const pair of query.split('&')) {
    const eq = pair.indexOf('=');
    if ((eq < 0 ? pair : pair.slice(0, eq)) === name) return true;
  }
  return false;
}

/** First value of the query parameter `name`, decoded (`+` as space), or undefined. */
export function queryParam(query: string, name: string): string | undefined {
  if (query === '') return undefined;
  return new URLSearchParams(query).get(name) ?? undefined;
}
