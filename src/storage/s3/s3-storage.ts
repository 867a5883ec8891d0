/**
 * S3-compatible object storage (AWS S3, MinIO, R2, Ceph RGW, Garage): `stat`,
 * `open` → ranged GetObject, `list` (ListObjectsV2, delimiter `/`), `walk`, `check`; the write
 * half (staged uploads on multipart uploads, publish by conditional server-side copy, remove)
 * lives in s3-staging.ts and s3-publish.ts. The staging folder `.ferry-staging` under the
 * prefix is reserved: never listed, stat'ed, walked or served, whatever --dotfiles says.
 *
 * Keys are `prefix + SafePath.relative`; the SafePath is already validated (src/core/safe-path.ts),
 * so no key escapes the prefix. A folder is a key prefix: `stat('a')` is a directory when any
 * object exists under `a/`. When both an object `a` and objects under `a/` exist, the object
 * wins (stat, open and list agree on it).
 *
 * Every read is pinned to the version seen by HEAD: the GetObject carries `If-Match: <ETag>`
 * and the answer's ETag and Content-Range are checked, so a replaced object fails the stream
 * (FERRY_ERR_STORAGE_CHANGED) instead of mixing two versions. Ranges are always sent absolute
 * (`bytes=first-last`): the size is known from HEAD, and absolute ranges are the form every
 * S3-compatible store implements correctly. Response bodies are destroyed as soon as the reader
 * stops (the SDK leaves an unread body holding its socket: aws/aws-sdk-js-v3#6691).
 *
 * Faults (docs/storage.md, "Faults and retries"): every request is retried by the SDK's
 * standard strategy (3 attempts, full-jitter backoff, the store's Retry-After honoured within
 * 5 s of the backoff); read requests time out when their headers take longer than
 * `timeoutMs`; a GET body that breaks or stalls (`idleTimeoutMs`) is continued from the exact
 * offset under the same pin (s3-read-session.ts). `prefetch` lets /files read the first bytes
 * before its header goes out, so a store that stays broken becomes a 502/503 problem+json.
 */
import http from 'node:http';
import https from 'node:https';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  S3Client, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command,
  type ListObjectsV2CommandOutput, type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { FerryError } from '../../core/errors.ts';
import type { SafePath } from '../../core/safe-path.ts';
import type { ByteRange, FileHandleReader, FileStat, ListEntry, ListOptions, ListResult, OpenReadOptions, Storage, WalkEntry } from '../types.ts';
import type { PresignGetOptions, PublishMode, PublishOptions, PublishResult, StagedRef } from '../types.ts';
import { S3Staging } from './s3-staging.ts';
import { entryTypeOf, publishStaged, removeObject } from './s3-publish.ts';
import { DEFAULT_PART_BYTES, STAGING_DIR, isReservedPath, type S3WriteContext } from './s3-write-kit.ts';
import { ReadSession } from './s3-read-session.ts';

export interface S3StorageOptions {
  readonly bucket: string;
  /** Key prefix all paths live under (`''` for the whole bucket); slashes at either end are ignored. */
  readonly prefix: string;
  /** Endpoint URL for non-AWS stores (`http://127.0.0.1:9000`); AWS when undefined. */
  readonly endpoint?: string;
  readonly region: string;
  /** Path-style URLs (`endpoint/bucket/key`), needed by most non-AWS stores. */
  readonly forcePathStyle: boolean;
  /** Most open sockets to the store (the SDK's pool). */
  readonly maxSockets: number;
  readonly dotfiles: 'allow' | 'deny';
  /**
   * Explicit credentials (tests). Omitted: the standard AWS chain (environment, shared
   * config/credentials files and profile, SSO, container and instance metadata).
   */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string; readonly sessionToken?: string };
  /** Bytes per multipart part of an upload (--s3-part-size; 5 MiB to 5 GiB; default 8 MiB). */
  readonly partSize?: number;
  /**
   * Longest wait for the answer's headers of one read request (HEAD, GET, LIST) after it was
   * sent; the attempt then fails as a timeout and the SDK retries it. Default READ_TIMEOUT_MS.
   */
  readonly timeoutMs?: number;
  /** A GET body that sends nothing for this long is cut and continued from its offset. Default IDLE_TIMEOUT_MS. */
  readonly idleTimeoutMs?: number;
}

/** Keys per ListObjectsV2 request (the S3 maximum). */
const LIST_PAGE_KEYS = 1000;
/** Connection set-up limit; a store that does not accept a connection in this time is down. */
const CONNECT_TIMEOUT_MS = 5000;
/** Default of `--s3-timeout`: headers of a read request. */
export const READ_TIMEOUT_MS = 5000;
/** Default of `--s3-idle-timeout`: a GET body that sends nothing. */
export const IDLE_TIMEOUT_MS = 5000;
/** Attempts per request, the first included (the SDK's standard retry mode: backoff with full jitter, Retry-After honoured up to 5 s past the backoff). */
export const MAX_ATTEMPTS = 3;
/** Continuations in a row, without a new byte, of a GET body that broke or stalled. */
export const MAX_BODY_RESUMES = 3;
/** Largest Retry-After Ferry passes on from the store (seconds). */
const MAX_RETRY_AFTER_S = 30;

/** What an S3 error looks like (S3ServiceException and the SDK's network errors). */
interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly Code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
  readonly $response?: { readonly headers?: Readonly<Record<string, string | undefined>> };
  readonly $retryable?: { readonly throttling?: boolean };
}

function sdkError(err: unknown): SdkError {
  return typeof err === 'object' && err !== null ? err as SdkError : {};
}

function notFound(): FerryError {
  return new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
}

function unavailable(detail: string, cause?: unknown, retryAfterS = 1): FerryError {
  return new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', detail, { cause, headers: { 'retry-after': String(retryAfterS) } });
}

/** Throttling answers (S3's SlowDown and its relatives): the store is busy, not broken. */
const THROTTLING_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequestsException', 'RequestLimitExceeded', 'RequestThrottled', 'ServiceUnavailable']);

/** The store's own Retry-After in whole seconds (1 to MAX_RETRY_AFTER_S), 1 when it sent none or a date. Pure. */
export function storeRetryAfterSeconds(value: string | undefined): number {
  const n = value === undefined || !/^\d+$/.test(value.trim()) ? 1 : Number(value.trim());
  return Math.min(MAX_RETRY_AFTER_S, Math.max(1, n));
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || sdkError(err).name === 'AbortError';
}

/**
 * One mapping from the store's answers to Ferry's catalogue, applied once the SDK's retries
 * are spent: a missing key is 404, a replaced object (If-Match failed) is STORAGE_CHANGED, a
 * key the store refuses is 400; a store that answered a 5xx other than 503 (InternalError,
 * 502, 504) is 502 STORAGE_BAD_GATEWAY; throttling (503 SlowDown), an unreachable store, a
 * timeout, a missing bucket or refused credentials are 503 STORAGE_UNAVAILABLE with
 * Retry-After (the store's own, capped at 30 s, else 1). Aborts pass through unchanged.
 */
export function mapS3Error(err: unknown, signal?: AbortSignal): unknown {
  if (err instanceof FerryError || isAbort(err, signal)) return err;
  const e = sdkError(err);
  const name = e.name ?? e.Code ?? '';
  const status = e.$metadata?.httpStatusCode;
  if (name === 'NoSuchBucket') return unavailable('the bucket does not exist', err);
  if (name === 'NoSuchKey' || name === 'NotFound' || status === 404) return notFound();
  if (name === 'PreconditionFailed' || status === 412) return new FerryError('FERRY_ERR_STORAGE_CHANGED', 'The object changed while it was being read', { cause: err });
  if (name === 'KeyTooLongError' || name === 'InvalidObjectName') return new FerryError('FERRY_ERR_PATH_INVALID', 'the object store refuses this name', { cause: err });
  if (status === 403 || name === 'AccessDenied' || name === 'InvalidAccessKeyId' || name === 'SignatureDoesNotMatch') {
    return unavailable('the object store refused the credentials (access denied)', err);
  }
  if (status === undefined) {
    if (e.name === 'TimeoutError' && e.code === 'ETIMEDOUT') return unavailable('the object store did not answer in time', err);
    return unavailable(`the object store is not reachable${e.code === undefined ? '' : ` (${e.code})`}`, err);
  }
  const what = `the object store answered ${status}${name === '' ? '' : ` ${name}`}`;
  if (status === 503 || status === 429 || THROTTLING_NAMES.has(name) || e.$retryable?.throttling === true) {
    return unavailable(what, err, storeRetryAfterSeconds(e.$response?.headers?.['retry-after']));
  }
  if (status >= 500) return new FerryError('FERRY_ERR_STORAGE_BAD_GATEWAY', what, { cause: err });
  return unavailable(what, err);
}

/** 63 bits of the ETag, so caches keyed by (size, mtimeNs, ino) change with the object. */
function identityOf(etag: string | undefined): bigint {
  if (etag === undefined || etag === '') return 0n;
  return BigInt(`0x${createHash('sha256').update(etag).digest('hex').slice(0, 15)}`);
}

/** The ETag without its quotes (S3 sends `"…"`). */
function bareEtag(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  const t = etag.startsWith('W/') ? etag.slice(2) : etag;
  return t.replace(/^"|"$/g, '');
}

function fileStat(size: number, lastModified: Date | undefined, etag: string | undefined): FileStat {
  const ms = lastModified?.getTime() ?? 0;
  const bare = bareEtag(etag);
  return {
    type: 'file',
    size,
    mtimeMs: ms,
    mtimeNs: BigInt(ms) * 1_000_000n,
    ino: identityOf(bare),
    dev: 0n,
    mode: 0,
    ...(bare === undefined || bare === '' ? {} : { etag: bare }),
  };
}

const DIRECTORY_STAT: FileStat = { type: 'directory', size: 0, mtimeMs: 0, mtimeNs: 0n, ino: 0n, dev: 0n, mode: 0 };

/** A name as a folder listing shows it; undefined for keys no SafePath could reach. */
function listableName(name: string, dotfiles: 'allow' | 'deny'): boolean {
  if (name === '' || name === '.' || name === '..' || name.includes('\\') || name.includes('\0')) return false;
  return !(dotfiles === 'deny' && name.startsWith('.'));
}

/**
 * The smallest name a later ListObjectsV2 answer can still hold once the store has answered
 * up to `sortKey` (a name, or a folder name plus `/`). Keys come in byte order, where a folder
 * `a` sorts as `a/`, after files such as `a.txt` (`.` < `/`): a folder named by a prefix of
 * `sortKey` that is followed there by a character below `/` may still come. Pure.
 */
export function listFloor(sortKey: string): string {
  for (let i = 0; i < sortKey.length; i++) if (sortKey.charCodeAt(i) < 0x2f) return sortKey.slice(0, i);
  return sortKey;
}

const byName = (a: ListEntry, b: ListEntry): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

class S3FileReader implements FileHandleReader {
  readonly #storage: S3Storage;
  readonly #key: string;
  #stat: FileStat;
  #closed = false;
  /** Streams still reading: destroyed on close, so no response body outlives the handle. */
  readonly #streams = new Set<Readable>();
  /**
   * A read started by `prefetch` or left over by a stream that stopped at the end of its
   * range: the next `openRead` starting at its offset continues it (same body, same socket).
   */
  #parked: ReadSession | undefined;

  constructor(storage: S3Storage, key: string, stat: FileStat) {
    this.#storage = storage;
    this.#key = key;
    this.#stat = stat;
  }

  get stat(): FileStat { return this.#stat; }

  /** A read of `[start, end]` pinned to the version this handle saw. */
  #session(start: number, end: number): ReadSession {
    const pinned = this.#stat;
    return this.#storage.readSession(this.#key, start, end, pinned);
  }

  /** The parked read if it starts at `start` and covers `end`; a parked read that does not is dropped. */
  #adopt(start: number, end: number): ReadSession | undefined {
    const parked = this.#parked;
    this.#parked = undefined;
    if (parked === undefined) return undefined;
    if (parked.pos === start && parked.end >= end && !parked.destroyed) return parked;
    parked.destroy();
    return undefined;
  }

  /**
   * Starts reading `range` now and resolves once its first bytes arrived (the SDK's retries
   * and the continuations included), so a store that fails can still become an error answer
   * (502/503 problem+json) before any header went out. The next `openRead` from `range.start`
   * continues this read.
   */
  async prefetch(range: ByteRange, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (range.end < range.start || this.#closed) return;
    this.#parked?.destroy();
    this.#parked = undefined;
    const session = this.#session(range.start, range.end);
    const signal = options.signal;
    const onAbort = (): void => { session.destroy(); };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      signal?.throwIfAborted();
      const chunk = await session.next();
      if (chunk !== undefined) session.unshift(chunk);
    } catch (err) {
      session.destroy();
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
    if (this.#closed) session.destroy();
    else this.#parked = session;
  }

  /**
   * Streams `range`, pinned to the version this handle saw: one ranged GetObject (or the
   * parked read that starts here), continued from the exact offset when its body breaks or
   * stalls (s3-read-session.ts). The request starts when the stream is first read;
   * destroying the stream (client gone, signal aborted) aborts the request and destroys the
   * response body at once.
   */
  openRead(range?: ByteRange, options: OpenReadOptions = {}): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.#stat.size - 1;
    let session: ReadSession | undefined;
    let finished = false;
    const park = (s: ReadSession): void => {
      if (this.#closed || s.pos > s.end) { s.destroy(); return; }
      this.#parked?.destroy();
      this.#parked = s;
    };
    const adopt = (): ReadSession => this.#adopt(start, end) ?? this.#session(start, end);
    async function* body(): AsyncGenerator<Buffer> {
      if (end < start) return;
      const s = adopt();
      session = s;
      while (s.pos <= end) {
        const from = s.pos;
        const chunk = await s.next();
        if (chunk === undefined) break;
        const room = end - from + 1;
        if (chunk.length > room) {
          s.unshift(chunk.subarray(room));
          yield chunk.subarray(0, room);
        } else {
          yield chunk;
        }
      }
      finished = true;
      // The rest of a longer read (a prefetched part read in windows) waits for the next window.
      park(s);
    }
    // Not Readable.from: its destroy waits for the generator to return, which waits for the
    // GET or body read in flight, so a client that went away would keep the store request
    // open until the store answered. Here destroy aborts the read first, then ends the
    // generator.
    let iterator: AsyncGenerator<Buffer> | undefined;
    let pulling = false;
    const stream = new Readable({
      ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }),
      read() {
        if (pulling) return;
        pulling = true;
        iterator ??= body();
        const it = iterator;
        const pull = (): void => {
          it.next().then(({ value, done }) => {
            if (done === true) { this.push(null); return; }
            if (this.push(value)) pull();
            else pulling = false;
          }, (err: unknown) => { this.destroy(err as Error); });
        };
        pull();
      },
      destroy(err, callback) {
        if (!finished) session?.destroy();
        const it = iterator;
        iterator = undefined;
        if (it === undefined) { callback(err); return; }
        it.return(undefined).then(() => { callback(err); }, () => { callback(err); });
      },
    });
    const signal = options.signal;
    const onAbort = (): void => { stream.destroy(signal?.reason as Error | undefined); };
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    this.#streams.add(stream);
    stream.once('close', () => {
      signal?.removeEventListener('abort', onAbort);
      this.#streams.delete(stream);
    });
    return stream;
  }

  /** HEADs the object again: a replaced object shows a new ETag (and identity). */
  async restat(): Promise<FileStat> {
    this.#stat = await this.#storage.headFile(this.#key);
    return this.#stat;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#parked?.destroy();
    this.#parked = undefined;
    for (const s of this.#streams) s.destroy();
    this.#streams.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}

export class S3Storage implements Storage {
  /** Staged uploads on multipart uploads (s3-staging.ts). */
  readonly staging: S3Staging;
  readonly #write: S3WriteContext;

  /** Seals the staged upload and copies it to `target` under `mode` (s3-publish.ts). */
  publish(source: StagedRef, target: SafePath, mode: PublishMode, options?: PublishOptions): Promise<PublishResult> {
    return publishStaged(this.#write, this.staging, source, target, mode, options);
  }

  remove(p: SafePath, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    return removeObject(this.#write, p, options.signal);
  }

  entryType(p: SafePath, options: { signal?: AbortSignal } = {}): Promise<'file' | 'directory' | 'other' | undefined> {
    return entryTypeOf(this.#write, p, options.signal);
  }

  readonly #client: S3Client;
  readonly #options: S3StorageOptions;
  readonly #prefix: string;
  readonly #agents: readonly (http.Agent | https.Agent)[];

  private constructor(options: S3StorageOptions) {
    this.#options = options;
    const trimmed = options.prefix.replace(/^\/+|\/+$/g, '');
    this.#prefix = trimmed === '' ? '' : `${trimmed}/`;
    const httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    const httpsAgent = new https.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.#agents = [httpAgent, httpsAgent];
    const config: S3ClientConfig = {
      region: options.region,
      forcePathStyle: options.forcePathStyle,
      // Non-AWS stores reject or mis-handle the CRC trailers the SDK adds by default since 3.729.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Standard retries (backoff with full jitter, Retry-After honoured within 5 s of the
      // backoff, a retry quota per client). Read requests carry a per-call requestTimeout
      // (--s3-timeout, time to the answer's headers) that throws, so the SDK retries a stalled
      // attempt; writes carry none (a big part may take long to send).
      retryMode: 'standard',
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: { httpAgent, httpsAgent, connectionTimeout: CONNECT_TIMEOUT_MS, throwOnRequestTimeout: true },
      ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
      ...(options.credentials === undefined ? {} : { credentials: { ...options.credentials } }),
    };
    this.#client = new S3Client(config);
    this.#write = {
      client: this.#client, bucket: options.bucket, prefix: this.#prefix, partSize: options.partSize ?? DEFAULT_PART_BYTES,
      headFile: (key, signal) => this.headFile(key, signal),
    };
    this.staging = new S3Staging(this.#write);
  }

  /** Builds the client and checks the bucket answers (FERRY_ERR_STORAGE_UNAVAILABLE otherwise). */
  static async create(options: S3StorageOptions): Promise<S3Storage> {
    const storage = new S3Storage({ ...options });
    try {
      await storage.check();
    } catch (err) {
      storage.destroy();
      throw err;
    }
    return storage;
  }

  get bucket(): string { return this.#options.bucket; }
  /** The key prefix, normalised (`''` or ending in `/`). */
  get prefix(): string { return this.#prefix; }

  async close(): Promise<void> { this.destroy(); }

  /** Closes the socket pool (idempotent). */
  destroy(): void {
    this.#client.destroy();
    for (const a of this.#agents) a.destroy();
  }

  #key(p: SafePath): string {
    return this.#prefix + p.relative;
  }

  #hidden(p: SafePath): boolean {
    return (p.hidden && this.#options.dotfiles === 'deny') || isReservedPath(p.segments);
  }

  /** Options of one read request: the abort signal and the time to headers. */
  #readCall(signal?: AbortSignal): { abortSignal?: AbortSignal; requestTimeout: number } {
    const requestTimeout = this.#options.timeoutMs ?? READ_TIMEOUT_MS;
    return signal === undefined ? { requestTimeout } : { abortSignal: signal, requestTimeout };
  }

  /** @internal GetObject for a reader (see S3FileReader.openRead). */
  async getObject(key: string, range: string, etag: string | undefined, signal: AbortSignal) {
    return this.#client.send(new GetObjectCommand({
      Bucket: this.#options.bucket, Key: key, Range: range,
      ...(etag === undefined ? {} : { IfMatch: `"${etag}"` }),
    }), this.#readCall(signal));
  }

  /** @internal A resumable read of `[start, end]` of `key`, pinned to `pinned` (s3-read-session.ts). */
  readSession(key: string, start: number, end: number, pinned: FileStat): ReadSession {
    return new ReadSession({
      start, end, size: pinned.size, etag: pinned.etag,
      idleTimeoutMs: this.#options.idleTimeoutMs ?? IDLE_TIMEOUT_MS,
      maxResumes: MAX_BODY_RESUMES,
      mapError: mapS3Error,
      get: async (range, signal) => {
        const res = await this.getObject(key, range, pinned.etag, signal);
        return { body: res.Body as Readable, etag: bareEtag(res.ETag), contentRange: res.ContentRange };
      },
    });
  }

  /** @internal HEAD of one key as a file stat (404 → FERRY_ERR_PATH_NOT_FOUND). */
  async headFile(key: string, signal?: AbortSignal): Promise<FileStat> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }), this.#readCall(signal));
      return fileStat(h.ContentLength ?? 0, h.LastModified, h.ETag);
    } catch (err) {
      throw mapS3Error(err, signal);
    }
  }

  async #listPage(prefix: string, maxKeys: number, from: { startAfter?: string | undefined; token?: string | undefined }, signal?: AbortSignal): Promise<ListObjectsV2CommandOutput> {
    try {
      return await this.#client.send(new ListObjectsV2Command({
        Bucket: this.#options.bucket, Prefix: prefix, Delimiter: '/', MaxKeys: maxKeys,
        ...(from.token !== undefined ? { ContinuationToken: from.token } : from.startAfter !== undefined ? { StartAfter: from.startAfter } : {}),
      }), this.#readCall(signal));
    } catch (err) {
      throw mapS3Error(err, signal);
    }
  }

  /** True when at least one object exists below the folder key `dirKey` (ending in `/`). */
  async #hasChildren(dirKey: string, signal?: AbortSignal): Promise<boolean> {
    const page = await this.#listPage(dirKey, 1, {}, signal);
    return (page.KeyCount ?? 0) > 0 || (page.Contents?.length ?? 0) > 0 || (page.CommonPrefixes?.length ?? 0) > 0;
  }

  async stat(p: SafePath): Promise<FileStat> {
    if (this.#hidden(p)) throw notFound();
    if (p.relative === '') return DIRECTORY_STAT;
    try {
      return await this.headFile(this.#key(p));
    } catch (err) {
      if (!(err instanceof FerryError && err.code === 'FERRY_ERR_PATH_NOT_FOUND')) throw err;
    }
    if (await this.#hasChildren(`${this.#key(p)}/`)) return DIRECTORY_STAT;
    throw notFound();
  }

  async open(p: SafePath): Promise<FileHandleReader> {
    const st = await this.stat(p);
    if (st.type === 'directory') throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'Path is a folder');
    return new S3FileReader(this, this.#key(p), st);
  }

  /**
   * One page of a folder, sorted by name (code-unit order), memory bounded by `limit` plus one
   * store page. The cursor maps to StartAfter; the store's own pages are followed with
   * continuation tokens. Because the store orders a folder `a` as `a/` (after `a.txt`), a page
   * is complete only once the store has answered past `listFloor` of the page's last name.
   */
  async list(dir: SafePath, options: ListOptions): Promise<ListResult> {
    if (this.#hidden(dir)) throw notFound();
    const { limit, after, signal } = options;
    const prefix = dir.relative === '' ? this.#prefix : `${this.#key(dir)}/`;
    const dotfiles = this.#options.dotfiles;
    const found = new Map<string, ListEntry>();
    let token: string | undefined;
    let sawAny = false;
    let exhausted = false;
    for (;;) {
      signal?.throwIfAborted();
      const page = await this.#listPage(prefix, Math.min(LIST_PAGE_KEYS, limit + 1), { token, startAfter: after === undefined ? undefined : prefix + after }, signal);
      let sortKey = '';
      for (const o of page.Contents ?? []) {
        const key = o.Key ?? '';
        if (key.length <= prefix.length) continue; // the folder's own marker object
        sawAny = true;
        const name = key.slice(prefix.length);
        if (name > sortKey) sortKey = name;
        if (!listableName(name, dotfiles) || (after !== undefined && !(name > after)) || (dir.relative === '' && name === STAGING_DIR)) continue;
        found.set(name, { name, type: 'file', stat: fileStat(o.Size ?? 0, o.LastModified, o.ETag) });
      }
      for (const cp of page.CommonPrefixes ?? []) {
        const rel = (cp.Prefix ?? '').slice(prefix.length);
        sawAny = true;
        if (rel > sortKey) sortKey = rel;
        const name = rel.slice(0, -1);
        if (!listableName(name, dotfiles) || (after !== undefined && !(name > after)) || (dir.relative === '' && name === STAGING_DIR)) continue;
        // An object and a folder of one name: the object wins (as in stat and open).
        if (!found.has(name)) found.set(name, { name, type: 'directory', stat: DIRECTORY_STAT });
      }
      if (page.IsTruncated !== true || page.NextContinuationToken === undefined) { exhausted = true; break; }
      token = page.NextContinuationToken;
      const floor = listFloor(sortKey);
      const final = [...found.keys()].filter((n) => n < floor).length;
      if (final > limit) break;
      // Keep memory bounded: only the limit + 1 smallest names can end up on this page.
      if (found.size > limit + 1) {
        const keep = [...found.values()].sort(byName).slice(0, limit + 1);
        found.clear();
        for (const e of keep) found.set(e.name, e);
      }
    }
    if (!sawAny && after === undefined && dir.relative !== '') await this.#requireDirectory(dir, signal);
    const sorted = [...found.values()].sort(byName);
    return { entries: sorted.slice(0, limit), more: sorted.length > limit || (!exhausted && sorted.length > limit) };
  }

  /** Throws NOT_FOUND / NOT_DIRECTORY unless `dir` is a folder. */
  async #requireDirectory(dir: SafePath, signal?: AbortSignal): Promise<void> {
    if (dir.relative === '') return;
    if (await this.#hasChildren(`${this.#key(dir)}/`, signal)) return;
    try {
      await this.headFile(this.#key(dir), signal);
    } catch (err) {
      if (err instanceof FerryError && err.code === 'FERRY_ERR_PATH_NOT_FOUND') throw notFound();
      throw err;
    }
    throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', 'Path is not a folder');
  }

  /** Every visible entry of a folder, sorted (pages of LIST_PAGE_KEYS). */
  async #readFolder(dir: SafePath, signal?: AbortSignal): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.list(dir, { limit: LIST_PAGE_KEYS, ...(after === undefined ? {} : { after }), ...(signal === undefined ? {} : { signal }) });
      entries.push(...page.entries);
      if (!page.more) return entries;
      after = page.entries.at(-1)?.name;
    }
  }

  /** Depth first, names sorted at each level; iterative (an explicit stack). */
  async *walk(dir: SafePath, options: { signal?: AbortSignal } = {}): AsyncGenerator<WalkEntry> {
    const signal = options.signal;
    if (this.#hidden(dir)) throw notFound();
    if (dir.relative !== '' && (await this.stat(dir)).type !== 'directory') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', 'Path is not a folder');
    interface Frame { readonly dir: SafePath; readonly prefix: string; readonly entries: readonly ListEntry[]; next: number }
    const stack: Frame[] = [{ dir, prefix: '', entries: await this.#readFolder(dir, signal), next: 0 }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.entries.length) { stack.pop(); continue; }
      signal?.throwIfAborted();
      const e = frame.entries[frame.next++]!;
      const rel = frame.prefix === '' ? e.name : `${frame.prefix}/${e.name}`;
      if (e.type === 'file') {
        yield { relative: rel, type: 'file', stat: e.stat };
        continue;
      }
      const child: SafePath = { segments: [...frame.dir.segments, e.name], relative: frame.dir.relative === '' ? e.name : `${frame.dir.relative}/${e.name}`, hidden: frame.dir.hidden || e.name.startsWith('.') };
      const children = await this.#readFolder(child, signal);
      yield { relative: rel, type: 'directory', stat: e.stat, empty: children.length === 0 };
      stack.push({ dir: child, prefix: rel, entries: children, next: 0 });
    }
  }

  /**
   * A presigned GetObject URL of the file at `p` (SigV4 query signature, no request to the
   * store), for --s3-redirect. The caller has opened the file first (404s, folders and the
   * path jail are Ferry's). The URL carries no credentials beyond the signature.
   */
  async presignGet(p: SafePath, options: PresignGetOptions): Promise<string> {
    const command = new GetObjectCommand({
      Bucket: this.#options.bucket, Key: this.#key(p),
      ...(options.contentDisposition === undefined ? {} : { ResponseContentDisposition: options.contentDisposition }),
    });
    return getSignedUrl(this.#client, command, { expiresIn: options.expiresInSeconds });
  }

  /**
   * Readiness: one ListObjectsV2 of at most one key under the prefix. Not HeadBucket: a HEAD
   * answer has no body, so it cannot tell a missing bucket from refused credentials, and the
   * same read permission (s3:ListBucket) is needed for listing anyway.
   */
  async check(): Promise<void> {
    try {
      await this.#listPage(this.#prefix, 1, {});
    } catch (err) {
      const e = err instanceof FerryError ? err : (mapS3Error(err) as FerryError);
      const where = `bucket "${this.#options.bucket}"${this.#options.endpoint === undefined ? '' : ` at ${this.#options.endpoint}`}`;
      throw unavailable(`${where}: ${e.message}`, err);
    }
  }
}

