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
}

/** Keys per ListObjectsV2 request (the S3 maximum). */
const LIST_PAGE_KEYS = 1000;
/** Connection set-up limit; a store that does not accept a connection in this time is down. */
const CONNECT_TIMEOUT_MS = 5000;

/** What an S3 error looks like (S3ServiceException and the SDK's network errors). */
interface SdkError {
  readonly name?: string;
  readonly code?: string;
  readonly Code?: string;
  readonly $metadata?: { readonly httpStatusCode?: number };
}

function sdkError(err: unknown): SdkError {
  return typeof err === 'object' && err !== null ? err as SdkError : {};
}

function notFound(): FerryError {
  return new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
}

function unavailable(detail: string, cause?: unknown): FerryError {
  return new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', detail, { cause, headers: { 'retry-after': '1' } });
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || sdkError(err).name === 'AbortError';
}

/**
 * One mapping from the store's answers to Ferry's catalogue: a missing key is 404, a
 * replaced object (If-Match failed) is STORAGE_CHANGED, a key the store refuses is 400,
 * everything else (5xx, throttling, network, a missing bucket, refused credentials) is 503
 * with Retry-After. Aborts pass through unchanged.
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
  if (status === undefined) return unavailable(`the object store is not reachable${e.code === undefined ? '' : ` (${e.code})`}`, err);
  return unavailable(`the object store answered ${status}${name === '' ? '' : ` ${name}`}`, err);
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

  constructor(storage: S3Storage, key: string, stat: FileStat) {
    this.#storage = storage;
    this.#key = key;
    this.#stat = stat;
  }

  get stat(): FileStat { return this.#stat; }

  /**
   * One ranged GetObject, pinned to the version this handle saw. The request starts when the
   * stream is first read; destroying the stream (client gone, signal aborted) aborts the
   * request and destroys the response body at once.
   */
  openRead(range?: ByteRange, options: OpenReadOptions = {}): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.#stat.size - 1;
    const pinned = this.#stat;
    const ac = new AbortController();
    const storage = this.#storage;
    const key = this.#key;
    async function* body(): AsyncGenerator<Buffer> {
      if (end < start) return;
      const res = await storage.getObject(key, `bytes=${start}-${end}`, pinned.etag, ac.signal);
      const stream = res.Body as Readable;
      try {
        // A store that ignored If-Match or the range must not reach the client as if it had not.
        const etag = bareEtag(res.ETag);
        if (pinned.etag !== undefined && etag !== undefined && etag !== pinned.etag) {
          throw new FerryError('FERRY_ERR_STORAGE_CHANGED', 'The object changed while it was being read');
        }
        const expected = `bytes ${start}-${end}/${pinned.size}`;
        if (res.ContentRange !== undefined && res.ContentRange !== expected) {
          throw unavailable(`the object store answered ${res.ContentRange} for ${expected}`);
        }
        let got = 0;
        const want = end - start + 1;
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          got += chunk.length;
          if (got > want) throw unavailable('the object store sent more bytes than the range holds');
          yield chunk;
        }
        if (got !== want) throw new FerryError('FERRY_ERR_STORAGE_CHANGED', 'The object ended before the range did');
      } catch (err) {
        throw mapS3Error(err, ac.signal);
      } finally {
        stream.destroy();
      }
    }
    const stream = Readable.from(body(), { objectMode: false, ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }) });
    const signal = options.signal;
    const onAbort = (): void => { stream.destroy(signal?.reason as Error | undefined); };
    if (signal !== undefined) {
      if (signal.aborted) queueMicrotask(onAbort);
      else signal.addEventListener('abort', onAbort, { once: true });
    }
    this.#streams.add(stream);
    // Readable.from only asks the generator to return at its next await; the abort reaches the
    // request (and its body) immediately.
    stream.once('close', () => {
      ac.abort();
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
      requestHandler: { httpAgent, httpsAgent, connectionTimeout: CONNECT_TIMEOUT_MS },
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

  /** @internal GetObject for a reader (see S3FileReader.openRead). */
  async getObject(key: string, range: string, etag: string | undefined, signal: AbortSignal) {
    return this.#client.send(new GetObjectCommand({
      Bucket: this.#options.bucket, Key: key, Range: range,
      ...(etag === undefined ? {} : { IfMatch: `"${etag}"` }),
    }), { abortSignal: signal });
  }

  /** @internal HEAD of one key as a file stat (404 → FERRY_ERR_PATH_NOT_FOUND). */
  async headFile(key: string, signal?: AbortSignal): Promise<FileStat> {
    try {
      const h = await this.#client.send(new HeadObjectCommand({ Bucket: this.#options.bucket, Key: key }), signal === undefined ? {} : { abortSignal: signal });
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
      }), signal === undefined ? {} : { abortSignal: signal });
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

