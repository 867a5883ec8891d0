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
}

export type RedirectDecision =
  | { readonly redirect: true }
  | { readonly redirect: false; readonly reason: 'disabled' | 'head' | 'if-range' | 'digest' };

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
  return { redirect: true };
}
