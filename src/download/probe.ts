/**
 * The probe: one `GET` with `Range: bytes=0-0` (works where HEAD does not, e.g. pre-signed
 * URLs signed for GET) that learns the size, whether ranges work, the validator, the final URL
 * after redirects and any `Repr-Digest`. A server without ranges answers 200 with the whole
 * body, which is kept open and becomes the single stream, so no request is wasted.
 */
import type { Dispatcher } from 'undici';
import { FerryError } from '../core/errors.ts';
import { parseContentRange } from './content-range.ts';
import { headerValue, send, type RequestIdentity } from './http-client.ts';
import { remoteStatusError } from './remote-errors.ts';
import { sha256FromReprDigest } from './repr-digest.ts';
import { chooseIfRange, type RemoteIdentity } from './validators.ts';

export interface ProbeResult {
  readonly finalUrl: URL;
  readonly redirects: number;
  readonly remote: RemoteIdentity;
  /** Value for `If-Range`, when the server offered a strong validator (RFC 9110 §13.1.5). */
  readonly ifRange: string | undefined;
  /** The server honoured the Range request (206, or 416 for an empty file). */
  readonly ranges: boolean;
  /** sha-256 (hex) from `Repr-Digest` (RFC 9530), if the server sent one. */
  readonly reprSha256: string | undefined;
  /** Open body of a 200 answer (no range support): the whole representation. */
  readonly body: Dispatcher.ResponseData['body'] | undefined;
}

export interface ProbeOptions {
  readonly dispatcher: Dispatcher;
  readonly url: URL;
  readonly identity: RequestIdentity;
  readonly maxRedirects: number;
  readonly signal?: AbortSignal;
}

export async function probe(options: ProbeOptions): Promise<ProbeResult> {
  const res = await send({ ...options, headers: { range: 'bytes=0-0' } });
  const etag = headerValue(res.headers, 'etag');
  const lastModified = headerValue(res.headers, 'last-modified');
  const date = headerValue(res.headers, 'date');
  const common = {
    finalUrl: res.url,
    redirects: res.redirects,
    ifRange: chooseIfRange(etag, lastModified, date),
    reprSha256: sha256FromReprDigest(headerValue(res.headers, 'repr-digest')),
  };
  if (res.status === 206) {
    const cr = parseContentRange(headerValue(res.headers, 'content-range'));
    await res.body.dump({ limit: 64 * 1024 }).catch(() => {});
    if (cr === undefined || cr.kind !== 'range' || cr.first !== 0) {
      throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `the server answered "Range: bytes=0-0" with 206 and an invalid Content-Range ${JSON.stringify(headerValue(res.headers, 'content-range') ?? null)}`);
    }
    return { ...common, remote: { sizeBytes: cr.completeLength, etag, lastModified }, ranges: true, body: undefined };
  }
  if (res.status === 416) {
    // RFC 9110 §15.5.17: the 416 carries `Content-Range: bytes */complete-length`; for a
    // Range of 0-0 that means an empty representation.
    const cr = parseContentRange(headerValue(res.headers, 'content-range'));
    await res.body.dump().catch(() => {});
    if (cr?.kind === 'unsatisfied' && cr.completeLength === 0) {
      return { ...common, remote: { sizeBytes: 0, etag, lastModified }, ranges: true, body: undefined };
    }
    throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `the server refused "Range: bytes=0-0" with 416 (Content-Range ${JSON.stringify(headerValue(res.headers, 'content-range') ?? null)})`);
  }
  if (res.status === 200) {
    const length = headerValue(res.headers, 'content-length');
    const sizeBytes = length !== undefined && /^\d+$/.test(length.trim()) ? Number(length) : undefined;
    return { ...common, remote: { sizeBytes, etag, lastModified }, ranges: false, body: res.body };
  }
  throw await remoteStatusError(res.status, res.url, res.headers, res.body);
}
