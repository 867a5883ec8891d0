/**
 * What the S3 write half (s3-staging.ts, s3-publish.ts) shares: the client context handed over
 * by S3Storage, the reserved staging prefix and its keys, S3's multipart limits, the write-side
 * error mapping, and server-side copy in parts.
 *
 * Limits quoted from the S3 API reference ("Amazon S3 multipart upload limits"): parts of
 * 5 MiB to 5 GiB except the last, which may be smaller; part numbers 1 to 10,000; object keys
 * up to 1,024 bytes of UTF-8; CopyObject copies objects of up to 5 GiB, larger ones need a
 * multipart upload with UploadPartCopy.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, GetObjectCommand, ListObjectsV2Command,
  UploadPartCopyCommand, type CompletedPart, type S3Client,
} from '@aws-sdk/client-s3';
import type { Readable } from 'node:stream';
import { FerryError } from '../../core/errors.ts';
import type { FileStat } from '../types.ts';
import { mapS3Error } from './s3-storage.ts';

/** Smallest part S3 accepts except the last one. */
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** Largest part (and largest CopyObject source). */
export const MAX_PART_BYTES = 5 * 1024 * 1024 * 1024;
/** Most parts in one multipart upload. */
export const MAX_PARTS = 10_000;
/** Longest key S3 accepts (UTF-8 bytes). */
export const MAX_KEY_BYTES = 1024;
/** Default --s3-part-size. */
export const DEFAULT_PART_BYTES = 8 * 1024 * 1024;
/** Parts per step of the part-size schedule (partBytes). */
export const PARTS_PER_STEP = 2000;
/** Doublings of the part size the schedule allows (the last step runs to part 10,000). */
const MAX_DOUBLINGS = 4;

/**
 * Size of part `n` (1-based) of an upload whose first part size is `base` (--s3-part-size):
 * `base` for parts 1–2,000, then doubled every 2,000 parts (at most 16 × base, at most 5 GiB),
 * so that S3's 10,000-part limit allows 62,000 × base (484 GiB at 8M) while small and medium
 * uploads hold one `base`-sized part in memory. Pure.
 */
export function partBytes(base: number, n: number): number {
  const step = Math.min(MAX_DOUBLINGS, Math.floor((n - 1) / PARTS_PER_STEP));
  return Math.min(MAX_PART_BYTES, base * 2 ** step);
}

/** Bytes held by parts 1..n (where part n + 1 starts). Pure. */
export function partsEnd(base: number, n: number): number {
  let total = 0;
  for (let first = 1; first <= n; first += PARTS_PER_STEP) {
    const count = Math.min(PARTS_PER_STEP, n - first + 1);
    total += count * partBytes(base, first);
  }
  return total;
}

/** Part size for server-side copies of objects above MAX_PART_BYTES. */
const COPY_PART_BYTES = 1024 * 1024 * 1024;

/**
 * The folder (first path segment under the prefix) that holds staged uploads. Reserved: never
 * listed, stat'ed, walked, zipped or served, whatever --dotfiles says; a client path naming it
 * is 404.
 */
export const STAGING_DIR = '.ferry-staging';

/** What S3Storage hands to its write half. */
export interface S3WriteContext {
  readonly client: S3Client;
  readonly bucket: string;
  /** `''` or ending in `/`. */
  readonly prefix: string;
  /** Bytes per uploaded part (--s3-part-size). */
  readonly partSize: number;
  /** HEAD of one key as a file stat (404 → FERRY_ERR_PATH_NOT_FOUND). */
  headFile(key: string, signal?: AbortSignal): Promise<FileStat>;
}

/** True for a client path whose first segment is the reserved staging folder. */
export function isReservedPath(segments: readonly string[]): boolean {
  return segments[0] === STAGING_DIR;
}

export function stagingPrefix(ctx: S3WriteContext): string {
  return `${ctx.prefix}${STAGING_DIR}/`;
}

/** The key of a staged upload's multipart upload, and of the object it becomes once sealed. */
export function stagedKey(ctx: S3WriteContext, id: string): string {
  return `${stagingPrefix(ctx)}${id}`;
}

/** The key of a committed tail (generation `gen`). */
export function tailKey(ctx: S3WriteContext, id: string, gen: string): string {
  return `${stagedKey(ctx, id)}.tail-${gen}`;
}

const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;

/** Staged ids: letters, digits, `-`, `_`, at most 64 (types.ts, Staging); anything else is 400. */
export function checkStagedId(id: string): void {
  if (!ID_RE.test(id)) throw new FerryError('FERRY_ERR_BAD_REQUEST', 'invalid staged upload id (letters, digits, "-", "_"; at most 64)');
}

/** The id a staging key belongs to (`<id>` or `<id>.tail-<gen>`), undefined for a foreign key. */
export function idOfStagingKey(rest: string): string | undefined {
  const dot = rest.indexOf('.tail-');
  const id = dot === -1 ? rest : rest.slice(0, dot);
  return ID_RE.test(id) ? id : undefined;
}

/** `x-amz-copy-source`: bucket and key, URL-encoded per segment (the SDK sends it verbatim). */
export function copySource(bucket: string, key: string): string {
  return `${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
}

interface SdkError { readonly name?: string; readonly Code?: string; readonly $metadata?: { readonly httpStatusCode?: number } }

export function s3ErrorName(err: unknown): string {
  const e = typeof err === 'object' && err !== null ? err as SdkError : {};
  return e.name ?? e.Code ?? '';
}

export function s3Status(err: unknown): number | undefined {
  const e = typeof err === 'object' && err !== null ? err as SdkError : {};
  return e.$metadata?.httpStatusCode;
}

/** A conditional write lost: the name was taken (412 PreconditionFailed; 409 ConditionalRequestConflict on a race). */
export function isConditionFailure(err: unknown): boolean {
  const name = s3ErrorName(err);
  return name === 'PreconditionFailed' || name === 'ConditionalRequestConflict' || s3Status(err) === 412;
}

/**
 * The write side's mapping: a multipart upload the store no longer knows is the upload's
 * offset being gone (FERRY_ERR_UPLOAD_OFFSET_MISMATCH, `details.durable`), a key too long is
 * 400, the rest as reads (mapS3Error: unavailable → 503 with Retry-After).
 */
export function mapWriteError(err: unknown, signal?: AbortSignal, durable = 0): unknown {
  if (s3ErrorName(err) === 'NoSuchUpload') return offsetMismatch('the object store no longer holds this upload (its multipart upload is gone)', durable, err);
  return mapS3Error(err, signal);
}

export function offsetMismatch(detail: string, durable: number, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', detail, { cause, extra: { details: { durable } } });
}

/** Refuses keys S3 cannot hold (400), before any request. */
export function checkKeyLength(key: string): void {
  if (Buffer.byteLength(key) > MAX_KEY_BYTES) throw new FerryError('FERRY_ERR_PATH_INVALID', `the object store refuses keys over ${MAX_KEY_BYTES} bytes`);
}

export function sendOptions(signal: AbortSignal | undefined): { abortSignal?: AbortSignal } {
  return signal === undefined ? {} : { abortSignal: signal };
}

/** True when at least one key starts with `dirKey` (ending in `/`): a "folder". */
export async function hasKeysUnder(ctx: S3WriteContext, dirKey: string, signal?: AbortSignal): Promise<boolean> {
  try {
    const page = await ctx.client.send(new ListObjectsV2Command({ Bucket: ctx.bucket, Prefix: dirKey, MaxKeys: 1 }), sendOptions(signal));
    return (page.KeyCount ?? 0) > 0 || (page.Contents?.length ?? 0) > 0;
  } catch (err) {
    throw mapS3Error(err, signal);
  }
}

/** Runs one store request, mapping its failure (mapWriteError). */
export async function call<T>(request: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await request();
  } catch (err) {
    throw mapWriteError(err, signal);
  }
}

/** Reads a whole (small) object into memory; the body is destroyed on any failure. */
export async function readObject(ctx: S3WriteContext, key: string, signal?: AbortSignal): Promise<Buffer> {
  const res = await ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key }), sendOptions(signal));
  const body = res.Body as Readable | undefined;
  if (body === undefined) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
  } finally {
    body.destroy();
  }
  return Buffer.concat(chunks);
}

/** Reads bytes `[start, end]` of an object (for re-uploading pieces too small to copy). */
export async function readRange(ctx: S3WriteContext, key: string, start: number, end: number, signal?: AbortSignal): Promise<Buffer> {
  const res = await ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: key, Range: `bytes=${start}-${end}` }), sendOptions(signal));
  const body = res.Body as Readable | undefined;
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const chunk of (body ?? []) as AsyncIterable<Buffer>) { chunks.push(chunk); got += chunk.length; }
  } finally {
    body?.destroy();
  }
  const want = end - start + 1;
  if (got !== want) throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', `the object store answered ${got} bytes for a range of ${want}`, { headers: { 'retry-after': '1' } });
  return Buffer.concat(chunks);
}

/**
 * Splits `size` bytes into copy ranges of at most COPY_PART_BYTES, none (but a lone one) below
 * MIN_PART_BYTES: a short remainder joins the range before it. Pure.
 */
export function copyRanges(size: number, partBytes = COPY_PART_BYTES): { start: number; end: number }[] {
  const ranges: { start: number; end: number }[] = [];
  const per = Math.max(partBytes, Math.ceil(size / MAX_PARTS));
  for (let start = 0; start < size; start += per) ranges.push({ start, end: Math.min(size, start + per) - 1 });
  const last = ranges.at(-1);
  if (ranges.length > 1 && last !== undefined && last.end - last.start + 1 < MIN_PART_BYTES) {
    ranges.pop();
    ranges[ranges.length - 1]!.end = last.end;
  }
  return ranges;
}

/** UploadPartCopy of `[start, end]` of `sourceKey` as part `partNumber`. */
export async function copyPart(ctx: S3WriteContext, key: string, uploadId: string, partNumber: number, sourceKey: string, range: { start: number; end: number } | undefined, signal?: AbortSignal): Promise<CompletedPart> {
  const res = await ctx.client.send(new UploadPartCopyCommand({
    Bucket: ctx.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber, CopySource: copySource(ctx.bucket, sourceKey),
    ...(range === undefined ? {} : { CopySourceRange: `bytes=${range.start}-${range.end}` }),
  }), sendOptions(signal));
  return { PartNumber: partNumber, ETag: res.CopyPartResult?.ETag ?? '' };
}

/**
 * Copies an object of `size` bytes (above what CopyObject takes) to `key` by a multipart
 * upload of server-side part copies; `ifNoneMatch` makes the completion conditional. The
 * multipart upload is aborted when anything fails.
 */
export async function multipartCopy(ctx: S3WriteContext, sourceKey: string, size: number, key: string, ifNoneMatch: boolean, signal?: AbortSignal, partBytes = COPY_PART_BYTES): Promise<void> {
  const created = await ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key }), sendOptions(signal));
  const uploadId = created.UploadId ?? '';
  try {
    const parts: CompletedPart[] = [];
    for (const [i, range] of copyRanges(size, partBytes).entries()) parts.push(await copyPart(ctx, key, uploadId, i + 1, sourceKey, range, signal));
    await ctx.client.send(new CompleteMultipartUploadCommand({
      Bucket: ctx.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts }, ...(ifNoneMatch ? { IfNoneMatch: '*' } : {}),
    }), sendOptions(signal));
  } catch (err) {
    await abortQuietly(ctx, key, uploadId);
    throw err;
  }
}

/** AbortMultipartUpload, errors ignored (the orphan sweep finds what this leaves). */
export async function abortQuietly(ctx: S3WriteContext, key: string, uploadId: string): Promise<void> {
  await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId })).catch(() => {});
}
