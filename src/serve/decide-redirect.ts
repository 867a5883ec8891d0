/**
 * `--s3-redirect`: whether a `/files` request is answered with 302 to a presigned URL of the
 * object (the bytes then flow from the bucket, not through Ferry), decided from the request
 * alone. Pure: returns data, writes nothing. Authentication and access have already been
 * checked (src/server/access-hook.ts), and the file has been opened (a missing file, a folder
 * or a hidden name is Ferry's own answer, never the bucket's).
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface RedirectInput {
  /** --s3-redirect */
  readonly enabled: boolean;
  readonly method: 'GET' | 'HEAD';
  readonly headers: IncomingHttpHeaders;
  /** The request came with a signed link that binds a rate (the bucket cannot enforce it). */
  readonly linkRateBound: boolean;
}

export type RedirectDecision =
  | { readonly redirect: true }
  | { readonly redirect: false; readonly reason: 'disabled' | 'head' | 'if-range' | 'digest' | 'link-rate' };

export function decideRedirect(input: RedirectInput): RedirectDecision {
  if (!input.enabled) return { redirect: false, reason: 'disabled' };
  // A presigned URL is signed for one method: HEAD on a GET URL fails the signature (and a
  // HEAD costs Ferry no bytes anyway).
  if (input.method === 'HEAD') return { redirect: false, reason: 'head' };
  // S3 GetObject implements If-Match/If-None-Match/If-(Un)Modified-Since and ranges, but not
  // If-Range (RFC 9110 §13.1.5): a resuming client would get the range of a newer version.
  // Ferry evaluates it itself.
  if (input.headers['if-range'] !== undefined) return { redirect: false, reason: 'if-range' };
  // RFC 9530 digests are Ferry's; the bucket does not answer Want-*-Digest.
  if (input.headers['want-repr-digest'] !== undefined || input.headers['want-content-digest'] !== undefined) return { redirect: false, reason: 'digest' };
  // A signed link's bound rate is a promise Ferry keeps by pacing; the bucket would not.
  if (input.linkRateBound) return { redirect: false, reason: 'link-rate' };
  return { redirect: true };
}

/**
 * Seconds the presigned URL stays valid: --s3-redirect-ttl, but never past a signed link's own
 * expiry (`expires`, Unix seconds, already verified to be in the future), and at least 1.
 */
export function redirectTtlSeconds(ttlMs: number, linkExpiresUnix: number | undefined, nowMs: number): number {
  const ttl = Math.floor(ttlMs / 1000);
  const left = linkExpiresUnix === undefined ? ttl : Math.min(ttl, Math.floor(linkExpiresUnix - nowMs / 1000));
  return Math.max(1, left);
}
