/**
 * The tus decisions a route needs before it touches a byte, as pure functions over headers and
 * records (STYLE.md habit 1): creation (POST), PATCH admission, HEAD answer. They return plans
 * or throw the FerryError the route answers with; they never write.
 */
import { FerryError } from '../core/errors.ts';
import {
  OFFSET_OCTET_STREAM, TUS_VERSION, headerInvalid, parseDeferLength, parseNonNegativeInteger, parseUploadChecksum, parseUploadConcat,
  type UploadChecksum,
} from './tus-headers.ts';
import { parseUploadMetadata, readUploadIntent, type UploadIntent } from './upload-metadata.ts';
import { isExpired, isGone, type UploadRecord } from './upload-record.ts';

/** Request headers as Node gives them (lowercase names). */
export type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

export function header(headers: HeaderBag, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return typeof v === 'string' ? v : v.join(', ');
}

export interface TusLimits {
  /** --max-upload-size; undefined = no limit. */
  readonly maxUploadBytes: number | undefined;
  /** --max-upload-metadata: longest Upload-Metadata header; undefined = no limit. */
  readonly maxMetadataBytes?: number | undefined;
}

/** True when the request carries a body (a length above zero, or chunked). */
export function hasBody(headers: HeaderBag): boolean {
  const te = header(headers, 'transfer-encoding');
  if (te !== undefined && te.trim() !== '') return true;
  const cl = header(headers, 'content-length');
  return cl !== undefined && cl.trim() !== '0';
}

/** Content-Length as a number, or undefined when absent (chunked). Malformed → 400. */
export function contentLength(headers: HeaderBag): number | undefined {
  return parseNonNegativeInteger('Content-Length', header(headers, 'content-length'));
}

function isOffsetOctetStream(headers: HeaderBag): boolean {
  const ct = header(headers, 'content-type');
  return ct !== undefined && ct.split(';')[0]!.trim().toLowerCase() === OFFSET_OCTET_STREAM;
}

/** Over the server's own limit: the message names the option that raises it. */
export function overMaxUploadSize(limit: number, detail: string): FerryError {
  return tooLarge(limit, `${detail}; the server's limit is --max-upload-size`);
}

export function tooLarge(limit: number, detail: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE', `${detail} (limit ${limit} bytes)`, {
    headers: { 'tus-max-size': String(limit) },
    extra: { limitBytes: limit },
  });
}

export type CreationPlan =
  | {
    readonly kind: 'single' | 'partial';
    /** null = deferred length. */
    readonly length: number | null;
    readonly metadata: string | null;
    readonly intent: UploadIntent;
    /** creation-with-upload: the POST body is the first chunk. */
    readonly withUpload: boolean;
    readonly checksum: UploadChecksum | undefined;
  }
  | {
    readonly kind: 'final';
    readonly urls: readonly string[];
    readonly concatHeader: string;
    readonly metadata: string | null;
    readonly intent: UploadIntent;
  };

/**
 * §Creation (POST): exactly one of `Upload-Length` / `Upload-Defer-Length: 1`; over
 * `Tus-Max-Size` → 413; `Upload-Metadata` checked (400). §Concatenation: a final upload
 * "MUST NOT include the Upload-Length header" and has no body. §Creation With Upload: a body
 * needs `Content-Type: application/offset+octet-stream` (else 415).
 */
export function decideCreation(headers: HeaderBag, limits: TusLimits): CreationPlan {
  const concatHeader = header(headers, 'upload-concat');
  const concat = parseUploadConcat(concatHeader);
  const metadata = header(headers, 'upload-metadata') ?? null;
  // Before anything else reads it: the record would store it as received.
  if (metadata !== null && limits.maxMetadataBytes !== undefined && Buffer.byteLength(metadata, 'latin1') > limits.maxMetadataBytes) {
    throw new FerryError('FERRY_ERR_UPLOAD_METADATA_TOO_LARGE', `Upload-Metadata is ${Buffer.byteLength(metadata, 'latin1')} bytes; this server accepts at most ${limits.maxMetadataBytes} (--max-upload-metadata)`, {
      extra: { limitBytes: limits.maxMetadataBytes },
    });
  }
  const intent = readUploadIntent(parseUploadMetadata(metadata ?? undefined));
  const lengthHeader = header(headers, 'upload-length');
  const deferHeader = header(headers, 'upload-defer-length');
  const body = hasBody(headers);

  if (concat?.kind === 'final') {
    if (lengthHeader !== undefined) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'a final upload must not carry Upload-Length: its length is the sum of its partial uploads');
    if (deferHeader !== undefined) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'a final upload cannot defer its length');
    if (body) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'a final upload cannot carry data');
    return { kind: 'final', urls: concat.urls, concatHeader: concatHeader!.trim(), metadata, intent };
  }

  const length = parseNonNegativeInteger('Upload-Length', lengthHeader);
  const deferred = parseDeferLength(deferHeader);
  if (length !== undefined && deferred) throw headerInvalid('send either Upload-Length or Upload-Defer-Length, not both');
  if (length === undefined && !deferred) throw headerInvalid('Upload-Length or Upload-Defer-Length: 1 is required');
  if (length !== undefined && limits.maxUploadBytes !== undefined && length > limits.maxUploadBytes) {
    throw overMaxUploadSize(limits.maxUploadBytes, `Upload-Length ${length} is larger than Tus-Max-Size`);
  }
  let withUpload = false;
  let checksum: UploadChecksum | undefined;
  if (body) {
    if (!isOffsetOctetStream(headers)) throw new FerryError('FERRY_ERR_UPLOAD_CONTENT_TYPE', 'data in a creation request needs Content-Type: application/offset+octet-stream');
    const cl = contentLength(headers);
    if (cl !== undefined && length !== undefined && cl > length) throw tooLarge(length, `the body (${cl} bytes) is larger than Upload-Length`);
    if (cl !== undefined && limits.maxUploadBytes !== undefined && cl > limits.maxUploadBytes) throw overMaxUploadSize(limits.maxUploadBytes, 'the body is larger than Tus-Max-Size');
    withUpload = true;
    checksum = parseUploadChecksum(header(headers, 'upload-checksum'));
  }
  return { kind: concat?.kind === 'partial' ? 'partial' : 'single', length: length ?? null, metadata, intent, withUpload, checksum };
}

/** The record is unusable: 410 for tombstones and expired uploads (§Expiration: "410 Gone ... if the Server is keeping track"). */
export function checkAlive(record: UploadRecord, nowMs: number): void {
  if (isGone(record)) {
    const why = record.state === 'failed' ? `failed: ${record.reason ?? 'error'}` : record.state;
    throw new FerryError('FERRY_ERR_UPLOAD_GONE', `upload ${why}`);
  }
  if (isExpired(record, nowMs)) throw new FerryError('FERRY_ERR_UPLOAD_GONE', 'upload expired');
}

export interface PatchPlan {
  /** Offset the bytes are written at (= the record's offset). */
  readonly offset: number;
  /** Set when this request declares the deferred length. */
  readonly declareLength: number | undefined;
  /** Most bytes this request may carry. */
  readonly maxBytes: number;
  /** Length after this request (null while still deferred). */
  readonly length: number | null;
  readonly checksum: UploadChecksum | undefined;
  /** The chunk's checksum arrives as a trailer (checksum-trailer). */
  readonly checksumInTrailer: boolean;
}

/**
 * §PATCH, in the protocol's order: 415 for another Content-Type; the record must be alive
 * (404/410); a final upload is 403 (§Concatenation); `Upload-Offset` must equal the current
 * offset, else 409 "without modifying the upload resource"; a deferred length may be declared
 * once (§Upload-Defer-Length); the body must fit the length (413).
 */
export function decidePatch(record: UploadRecord, headers: HeaderBag, limits: TusLimits, nowMs: number): PatchPlan {
  if (!isOffsetOctetStream(headers)) throw new FerryError('FERRY_ERR_UPLOAD_CONTENT_TYPE', 'PATCH requests must use Content-Type: application/offset+octet-stream');
  checkAlive(record, nowMs);
  if (record.concat === 'final') throw new FerryError('FERRY_ERR_UPLOAD_FINAL_PATCH', 'PATCH is not allowed on a final upload (tus §Concatenation)');
  const offset = parseNonNegativeInteger('Upload-Offset', header(headers, 'upload-offset'));
  if (offset === undefined) throw headerInvalid('Upload-Offset is required');
  const checksum = parseUploadChecksum(header(headers, 'upload-checksum'));
  const trailerNames = (header(headers, 'trailer') ?? '').toLowerCase().split(',').map((s) => s.trim());
  const checksumInTrailer = checksum === undefined && trailerNames.includes('upload-checksum');
  if (offset !== record.offset) {
    throw new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', `Upload-Offset ${offset} does not match the current offset ${record.offset}`, {
      headers: { 'upload-offset': String(record.offset) },
      extra: { offset: record.offset },
    });
  }
  const declared = parseNonNegativeInteger('Upload-Length', header(headers, 'upload-length'));
  let length = record.length;
  let declareLength: number | undefined;
  if (declared !== undefined) {
    if (length === null) {
      if (declared < record.offset) throw headerInvalid(`Upload-Length ${declared} is smaller than the bytes already received (${record.offset})`);
      if (limits.maxUploadBytes !== undefined && declared > limits.maxUploadBytes) throw overMaxUploadSize(limits.maxUploadBytes, `Upload-Length ${declared} is larger than Tus-Max-Size`);
      length = declared;
      declareLength = declared;
    } else if (declared !== length) {
      throw headerInvalid(`Upload-Length is already ${length} and cannot change (tus §Upload-Defer-Length)`);
    }
  }
  const cap = length ?? limits.maxUploadBytes ?? Number.MAX_SAFE_INTEGER;
  const maxBytes = Math.max(0, cap - offset);
  const cl = contentLength(headers);
  if (cl !== undefined && cl > maxBytes) {
    throw tooLarge(cap, length === null ? `the body (${cl} bytes) would pass Tus-Max-Size` : `the body (${cl} bytes) would pass Upload-Length at offset ${offset}`);
  }
  return { offset, declareLength, maxBytes, length, checksum, checksumInTrailer };
}

/** Headers every tus response carries (§Tus-Resumable: "in every request and response except OPTIONS"). */
export function baseTusHeaders(): Record<string, string> {
  return { 'tus-resumable': TUS_VERSION };
}

/**
 * §HEAD: `Upload-Offset` always (but for a final upload only once concatenated), `Upload-Length`
 * when known, else `Upload-Defer-Length: 1`; `Upload-Metadata` and `Upload-Concat` as received;
 * `Cache-Control: no-store`; `Upload-Expires` while the upload can still expire.
 */
export function headHeaders(record: UploadRecord): Record<string, string> {
  const h: Record<string, string> = { ...baseTusHeaders(), 'cache-control': 'no-store' };
  const finalPending = record.concat === 'final' && record.state !== 'done';
  if (!finalPending) h['upload-offset'] = String(record.offset);
  if (record.length !== null) h['upload-length'] = String(record.length);
  else h['upload-defer-length'] = '1';
  if (record.metadata !== null) h['upload-metadata'] = record.metadata;
  if (record.concatHeader !== undefined) h['upload-concat'] = record.concatHeader;
  if (record.state === 'receiving' || record.state === 'waiting') h['upload-expires'] = new Date(record.expiresAt).toUTCString();
  return h;
}
