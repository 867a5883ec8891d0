/**
 * Staged uploads on an S3-compatible store (the tusd s3store design, adapted): staged upload
 * `id` is a multipart upload on the key `<prefix>.ferry-staging/<id>`, created at its first
 * full part.
 *
 * - `write` gathers bytes in memory up to one part (--s3-part-size), then uploads the part
 *   and waits for it (backpressure: a writer holds at most one part plus what the caller
 *   hands it). Parts are cut at fixed offsets: part k holds partBytes(size, k) bytes from
 *   partsEnd(size, k - 1) (the part size doubles every 2,000 parts: s3-write-kit.ts).
 * - `commit` snapshots synchronously (later writes are not part of it), waits for the parts
 *   cut so far, stores the short tail (< one part) as the object `<id>.tail-<gen>` and returns
 *   `{offset, state: {uploadId, parts, partSize, tail: gen, tailSize}}`. `gen` is random, so
 *   the previous checkpoint's tail stays valid until the caller has stored the new one; tails
 *   two commits old are deleted.
 * - `rollback` goes back to the last commit (its tail read back from the store); parts past it
 *   are uploaded again later under the same numbers, which replaces them.
 * - `open(id, checkpoint)` checks the checkpoint's parts (ListParts) and reads its tail; parts
 *   past the checkpoint are ignored and overwritten.
 * - `read`/`concat`/publish first *seal* the upload: the tail is copied server-side as the last
 *   part and the multipart upload completed onto the staging key (a small upload with no
 *   parts is a copy of its tail). Sealing again is harmless: a completed upload is recognised
 *   by its object's size.
 * - `concat` builds a new multipart upload from the sealed parts: UploadPartCopy where a piece
 *   is at least 5 MiB, bytes read and uploaded again where it is not.
 */
import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CopyObjectCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand, PutObjectCommand, UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { FerryError } from '../../core/errors.ts';
import type { StagedCheckpoint, StagedEntry, StagedRef, StagedWriter, Staging } from '../types.ts';
import {
  MAX_PARTS, MIN_PART_BYTES, abortQuietly, partBytes, partsEnd, call, checkStagedId, copyPart, copyRanges, copySource, idOfStagingKey, mapWriteError,
  offsetMismatch, readObject, readRange, s3ErrorName, sendOptions, stagedKey, stagingPrefix, tailKey, type S3WriteContext,
} from './s3-write-kit.ts';

/** A staged upload still taking bytes, as its checkpoint's `state` records it. */
interface OpenState {
  readonly sealed: false;
  /** null until the first part was uploaded. */
  readonly uploadId: string | null;
  /** Full parts 1..parts (part n holds partBytes(partSize, n) bytes). */
  readonly parts: number;
  /** The first part's size (--s3-part-size when the upload began). */
  readonly partSize: number;
  /** Generation of the tail object, null when there is no tail. */
  readonly tail: string | null;
  readonly tailSize: number;
}

/** A staged upload completed onto its staging key (after concat). */
interface SealedState { readonly sealed: true }

type State = OpenState | SealedState;

const EMPTY = (partSize: number): OpenState => ({ sealed: false, uploadId: null, parts: 0, partSize, tail: null, tailSize: 0 });

function encodeState(s: State): StagedCheckpoint['state'] {
  if (s.sealed) return { v: 1, sealed: true };
  return { v: 1, sealed: false, uploadId: s.uploadId, parts: s.parts, partSize: s.partSize, tail: s.tail, tailSize: s.tailSize };
}

/**
 * The backend state of a checkpoint, checked (it comes back from the caller's records).
 * undefined for a checkpoint of an upload that never wrote a byte. Pure.
 */
export function decodeState(cp: StagedCheckpoint): State | undefined {
  const s = cp.state;
  if (s === undefined) {
    if (cp.offset === 0) return undefined;
    throw offsetMismatch('the checkpoint holds no object-store state', 0);
  }
  if (s.v !== 1) throw offsetMismatch('the checkpoint comes from another storage backend', 0);
  if (s.sealed === true) return { sealed: true };
  const { uploadId, parts, partSize, tail, tailSize } = s;
  const ok = (uploadId === null || typeof uploadId === 'string')
    && typeof parts === 'number' && Number.isSafeInteger(parts) && parts >= 0 && parts <= MAX_PARTS
    && typeof partSize === 'number' && Number.isSafeInteger(partSize) && partSize >= MIN_PART_BYTES
    && (tail === null || (typeof tail === 'string' && /^[0-9a-f]{1,32}$/.test(tail)))
    && typeof tailSize === 'number' && Number.isSafeInteger(tailSize) && tailSize >= 0 && tailSize < partBytes(partSize, parts + 1)
    && (tail === null) === (tailSize === 0)
    && (parts === 0 || uploadId !== null)
    && cp.offset === partsEnd(partSize, parts) + tailSize;
  if (!ok) throw offsetMismatch('the checkpoint does not describe an object-store upload', 0);
  return { sealed: false, uploadId: uploadId as string | null, parts: parts as number, partSize: partSize as number, tail: tail as string | null, tailSize: tailSize as number };
}

/** Sizes and ETags of parts 1..upTo of a multipart upload (ListParts, paged). */
async function listParts(ctx: S3WriteContext, key: string, uploadId: string, upTo: number, signal?: AbortSignal): Promise<Map<number, { size: number; etag: string }>> {
  const found = new Map<number, { size: number; etag: string }>();
  let marker: string | undefined;
  for (;;) {
    const page = await ctx.client.send(new ListPartsCommand({
      Bucket: ctx.bucket, Key: key, UploadId: uploadId, MaxParts: 1000, ...(marker === undefined ? {} : { PartNumberMarker: marker }),
    }), sendOptions(signal));
    for (const part of page.Parts ?? []) {
      const n = part.PartNumber ?? 0;
      if (n >= 1 && n <= upTo) found.set(n, { size: part.Size ?? -1, etag: part.ETag ?? '' });
    }
    const next = page.NextPartNumberMarker;
    if (page.IsTruncated !== true || next === undefined || Number(next) >= upTo) return found;
    marker = String(next);
  }
}

export class S3Staging implements Staging {
  readonly #ctx: S3WriteContext;

  constructor(ctx: S3WriteContext) {
    this.#ctx = ctx;
  }

  async open(id: string, checkpoint: StagedCheckpoint | undefined, options: { signal?: AbortSignal } = {}): Promise<StagedWriter> {
    checkStagedId(id);
    const signal = options.signal;
    const state = checkpoint === undefined ? undefined : decodeState(checkpoint);
    if (state === undefined) return new S3StagedWriter(this.#ctx, id, { offset: 0 }, EMPTY(this.#ctx.partSize), []);
    if (state.sealed) throw new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', 'this staged upload is complete and takes no more bytes');
    const key = stagedKey(this.#ctx, id);
    if (state.parts > 0) {
      let parts: Map<number, { size: number }>;
      try {
        parts = await listParts(this.#ctx, key, state.uploadId!, state.parts, signal);
      } catch (err) {
        throw mapWriteError(err, signal, 0);
      }
      for (let n = 1; n <= state.parts; n++) {
        if (parts.get(n)?.size !== partBytes(state.partSize, n)) throw offsetMismatch(`part ${n} of this upload is missing from the object store`, partsEnd(state.partSize, n - 1));
      }
    }
    let tail: Buffer[] = [];
    if (state.tail !== null) {
      const durable = partsEnd(state.partSize, state.parts);
      let bytes: Buffer;
      try {
        bytes = await readObject(this.#ctx, tailKey(this.#ctx, id, state.tail), signal);
      } catch (err) {
        const mapped = mapWriteError(err, signal, durable);
        if (mapped instanceof FerryError && mapped.code === 'FERRY_ERR_PATH_NOT_FOUND') throw offsetMismatch('the tail of this upload is missing from the object store', durable, err);
        throw mapped;
      }
      if (bytes.length !== state.tailSize) throw offsetMismatch('the tail of this upload has another size than its checkpoint says', durable);
      tail = [bytes];
    }
    return new S3StagedWriter(this.#ctx, id, checkpoint!, state, tail);
  }

  /**
   * Completes the upload onto its staging key (see the file comment); resolves its size.
   * Idempotent: a multipart upload already completed shows as the object of the right size.
   */
  async seal(ref: StagedRef, signal?: AbortSignal): Promise<number> {
    checkStagedId(ref.id);
    const ctx = this.#ctx;
    const key = stagedKey(ctx, ref.id);
    const state = ref.checkpoint === undefined ? undefined : decodeState(ref.checkpoint);
    const offset = ref.checkpoint?.offset ?? 0;
    if (state !== undefined && state.sealed) return offset;
    if (state === undefined || state.parts === 0) {
      if (state?.tail == null) {
        await call(() => ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }), sendOptions(signal)), signal);
      } else {
        const tail = tailKey(ctx, ref.id, state.tail);
        await call(() => ctx.client.send(new CopyObjectCommand({ Bucket: ctx.bucket, Key: key, CopySource: copySource(ctx.bucket, tail) }), sendOptions(signal)), signal);
      }
      return offset;
    }
    const uploadId = state.uploadId!;
    let listed: Map<number, { size: number; etag: string }>;
    try {
      listed = await listParts(ctx, key, uploadId, state.parts, signal);
    } catch (err) {
      if (s3ErrorName(err) !== 'NoSuchUpload') throw mapWriteError(err, signal);
      // Completed by an earlier seal (a read before a publish): the object is there.
      const head = await call(() => ctx.client.send(new HeadObjectCommand({ Bucket: ctx.bucket, Key: key }), sendOptions(signal)), signal)
        .catch((e: unknown) => { throw e instanceof FerryError && e.code === 'FERRY_ERR_PATH_NOT_FOUND' ? offsetMismatch('the object store no longer holds this upload', 0, err) : e; });
      if (head.ContentLength === offset) return offset;
      throw offsetMismatch('the object store holds another version of this upload', 0);
    }
    const parts: CompletedPart[] = [];
    for (let n = 1; n <= state.parts; n++) {
      const p = listed.get(n);
      if (p === undefined || p.size !== partBytes(state.partSize, n)) throw offsetMismatch(`part ${n} of this upload is missing from the object store`, partsEnd(state.partSize, n - 1));
      parts.push({ PartNumber: n, ETag: p.etag });
    }
    try {
      if (state.tail !== null) parts.push(await copyPart(ctx, key, uploadId, state.parts + 1, tailKey(ctx, ref.id, state.tail), undefined, signal));
      await ctx.client.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }), sendOptions(signal));
    } catch (err) {
      throw mapWriteError(err, signal);
    }
    return offset;
  }

  async read(source: StagedRef, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const signal = options.signal;
    signal?.throwIfAborted();
    await this.seal(source, signal);
    const ctx = this.#ctx;
    const ac = new AbortController();
    const onAbort = (): void => { ac.abort(signal?.reason); };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const res = await call(() => ctx.client.send(new GetObjectCommand({ Bucket: ctx.bucket, Key: stagedKey(ctx, source.id) }), { abortSignal: ac.signal }), ac.signal);
      const body = res.Body as Readable;
      // The SDK's body holds its socket until it is read to the end or destroyed.
      const onAbortBody = (): void => { body.destroy(signal?.reason as Error | undefined); };
      signal?.addEventListener('abort', onAbortBody, { once: true });
      body.once('close', () => {
        signal?.removeEventListener('abort', onAbortBody);
        signal?.removeEventListener('abort', onAbort);
      });
      return body;
    } catch (err) {
      signal?.removeEventListener('abort', onAbort);
      throw err;
    }
  }

  async concat(target: string, parts: readonly StagedRef[], options: { signal?: AbortSignal } = {}): Promise<StagedCheckpoint> {
    checkStagedId(target);
    for (const p of parts) checkStagedId(p.id);
    const signal = options.signal;
    const ctx = this.#ctx;
    const sizes: number[] = [];
    for (const p of parts) sizes.push(await this.seal(p, signal));
    const total = sizes.reduce((a, b) => a + b, 0);
    const key = stagedKey(ctx, target);
    if (total === 0) {
      await call(() => ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: key, Body: Buffer.alloc(0), ContentLength: 0 }), sendOptions(signal)), signal);
    } else {
      const created = await call(() => ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: key }), sendOptions(signal)), signal);
      const uploadId = created.UploadId ?? '';
      try {
        await this.#assemble(key, uploadId, parts.map((p, i) => ({ key: stagedKey(ctx, p.id), size: sizes[i]! })), signal);
      } catch (err) {
        await abortQuietly(ctx, key, uploadId);
        throw mapWriteError(err, signal);
      }
    }
    for (const p of parts) await this.remove(p.id, options);
    return { offset: total, state: encodeState({ sealed: true }) };
  }

  /**
   * The pieces in order as parts of `uploadId`: a piece (or what is left of it) of at least
   * 5 MiB while no bytes wait is copied server-side; smaller ones are read and gathered into
   * parts of --s3-part-size (memory: one part).
   */
  async #assemble(key: string, uploadId: string, pieces: readonly { key: string; size: number }[], signal?: AbortSignal): Promise<void> {
    const ctx = this.#ctx;
    const done: CompletedPart[] = [];
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async (): Promise<void> => {
      const n = done.length + 1;
      if (n > MAX_PARTS) throw new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE', `more than ${MAX_PARTS} parts`);
      const body = Buffer.concat(pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
      const res = await ctx.client.send(new UploadPartCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length }), sendOptions(signal));
      done.push({ PartNumber: n, ETag: res.ETag ?? '' });
    };
    for (const piece of pieces) {
      let pos = 0;
      while (pos < piece.size) {
        const left = piece.size - pos;
        if (pendingBytes === 0 && left >= MIN_PART_BYTES) {
          for (const r of copyRanges(left)) {
            if (done.length + 1 > MAX_PARTS) throw new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE', `more than ${MAX_PARTS} parts`);
            done.push(await copyPart(ctx, key, uploadId, done.length + 1, piece.key, { start: pos + r.start, end: pos + r.end }, signal));
          }
          break;
        }
        const take = Math.min(left, ctx.partSize - pendingBytes);
        pending.push(await readRange(ctx, piece.key, pos, pos + take - 1, signal));
        pendingBytes += take;
        pos += take;
        if (pendingBytes >= ctx.partSize) await flush();
      }
    }
    if (pendingBytes > 0) await flush();
    await ctx.client.send(new CompleteMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: done } }), sendOptions(signal));
  }

  /** Aborts every multipart upload on the id's key and deletes its tails and sealed object. Idempotent. */
  async remove(id: string, options: { signal?: AbortSignal } = {}): Promise<void> {
    checkStagedId(id);
    const ctx = this.#ctx;
    const signal = options.signal;
    const key = stagedKey(ctx, id);
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const page = await call(() => ctx.client.send(new ListMultipartUploadsCommand({
        Bucket: ctx.bucket, Prefix: key, ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }), ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
      }), sendOptions(signal)), signal);
      for (const u of page.Uploads ?? []) {
        if (u.Key !== key || u.UploadId === undefined) continue;
        const uploadId = u.UploadId;
        await ctx.client.send(new AbortMultipartUploadCommand({ Bucket: ctx.bucket, Key: key, UploadId: uploadId }), sendOptions(signal)).catch((err: unknown) => {
          if (s3ErrorName(err) !== 'NoSuchUpload') throw mapWriteError(err, signal);
        });
      }
      if (page.IsTruncated !== true) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
    const doomed: string[] = [];
    let token: string | undefined;
    for (;;) {
      const page = await call(() => ctx.client.send(new ListObjectsV2Command({
        Bucket: ctx.bucket, Prefix: key, ...(token === undefined ? {} : { ContinuationToken: token }),
      }), sendOptions(signal)), signal);
      for (const o of page.Contents ?? []) if (o.Key === key || o.Key?.startsWith(`${key}.tail-`) === true) doomed.push(o.Key);
      if (page.IsTruncated !== true || page.NextContinuationToken === undefined) break;
      token = page.NextContinuationToken;
    }
    await Promise.all(doomed.map((k) => call(() => ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: k }), sendOptions(signal)), signal)));
  }

  /**
   * Every staged upload: its multipart uploads (ListMultipartUploads, when initiated) and its
   * objects (tails, sealed object: when last modified), the latest time per id.
   */
  async *list(options: { signal?: AbortSignal } = {}): AsyncGenerator<StagedEntry> {
    const ctx = this.#ctx;
    const signal = options.signal;
    const prefix = stagingPrefix(ctx);
    const found = new Map<string, number>();
    const note = (rest: string, when: Date | undefined, exact: boolean): void => {
      const id = idOfStagingKey(rest);
      if (id === undefined || (exact && id !== rest)) return;
      found.set(id, Math.max(found.get(id) ?? 0, when?.getTime() ?? 0));
    };
    let keyMarker: string | undefined;
    let idMarker: string | undefined;
    for (;;) {
      const page = await call(() => ctx.client.send(new ListMultipartUploadsCommand({
        Bucket: ctx.bucket, Prefix: prefix, ...(keyMarker === undefined ? {} : { KeyMarker: keyMarker }), ...(idMarker === undefined ? {} : { UploadIdMarker: idMarker }),
      }), sendOptions(signal)), signal);
      for (const u of page.Uploads ?? []) note((u.Key ?? '').slice(prefix.length), u.Initiated, true);
      if (page.IsTruncated !== true) break;
      keyMarker = page.NextKeyMarker;
      idMarker = page.NextUploadIdMarker;
    }
    let token: string | undefined;
    for (;;) {
      const page = await call(() => ctx.client.send(new ListObjectsV2Command({
        Bucket: ctx.bucket, Prefix: prefix, ...(token === undefined ? {} : { ContinuationToken: token }),
      }), sendOptions(signal)), signal);
      for (const o of page.Contents ?? []) note((o.Key ?? '').slice(prefix.length), o.LastModified, false);
      if (page.IsTruncated !== true || page.NextContinuationToken === undefined) break;
      token = page.NextContinuationToken;
    }
    for (const [id, modifiedMs] of found) yield { id, modifiedMs };
  }
}

/** Appends to one staged upload (see the file comment). */
class S3StagedWriter implements StagedWriter {
  readonly id: string;
  readonly #ctx: S3WriteContext;
  readonly #key: string;
  readonly #partSize: number;
  #uploadId: string | null;
  #committed: StagedCheckpoint;
  #committedState: OpenState;
  #offset: number;
  /** Parts cut from the stream so far (uploaded or on their way). */
  #parts: number;
  /** Bytes after the last cut part (the caller's buffers, by reference). */
  #pending: Buffer[];
  #pendingBytes: number;
  /** Part uploads run one after another on this chain. */
  #chain: Promise<void> = Promise.resolve();
  /** The upload of the last part cut (settles after every earlier one). */
  #lastPart: Promise<void> = Promise.resolve();
  /** The first failed part upload: later writes and commits fail with it until rollback. */
  #failure: unknown;
  /** Tail generations of the last commits, oldest first (the older ones are deleted). */
  readonly #tails: string[] = [];
  #closed = false;

  constructor(ctx: S3WriteContext, id: string, committed: StagedCheckpoint, state: OpenState, tail: Buffer[]) {
    this.#ctx = ctx;
    this.id = id;
    this.#key = stagedKey(ctx, id);
    this.#partSize = state.partSize;
    this.#uploadId = state.uploadId;
    this.#committed = committed;
    this.#committedState = state;
    this.#offset = committed.offset;
    this.#parts = state.parts;
    this.#pending = tail;
    this.#pendingBytes = state.tailSize;
    if (state.tail !== null) this.#tails.push(state.tail);
  }

  get offset(): number { return this.#offset; }
  get committed(): StagedCheckpoint { return this.#committed; }

  #usable(): void {
    if (this.#closed) throw new FerryError('FERRY_ERR_INTERNAL', 'staged writer used after close');
    if (this.#failure !== undefined) throw this.#failure;
  }

  async write(buffers: readonly Buffer[]): Promise<void> {
    this.#usable();
    let incoming = 0;
    for (const b of buffers) incoming += b.length;
    if (this.#offset + incoming > partsEnd(this.#partSize, MAX_PARTS)) {
      throw new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE', `an upload to the object store holds at most ${partsEnd(this.#partSize, MAX_PARTS)} bytes (${MAX_PARTS} parts growing from --s3-part-size)`);
    }
    for (const b of buffers) {
      if (b.length === 0) continue;
      this.#pending.push(b);
      this.#pendingBytes += b.length;
    }
    this.#offset += incoming;
    let last: Promise<void> | undefined;
    for (let size = partBytes(this.#partSize, this.#parts + 1); this.#pendingBytes >= size; size = partBytes(this.#partSize, this.#parts + 1)) {
      last = this.#enqueue(++this.#parts, this.#take(size));
    }
    if (last !== undefined) await last;
  }

  /** The first `n` pending bytes as one buffer (the rest stays pending). */
  #take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#pending[0]!;
      const need = n - filled;
      if (head.length <= need) {
        head.copy(out, filled);
        filled += head.length;
        this.#pending.shift();
      } else {
        head.copy(out, filled, 0, need);
        this.#pending[0] = head.subarray(need);
        filled += need;
      }
    }
    this.#pendingBytes -= n;
    return out;
  }

  #enqueue(partNumber: number, body: Buffer): Promise<void> {
    const ctx = this.#ctx;
    const run = this.#chain.then(async () => {
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#uploadId === null) {
        const created = await ctx.client.send(new CreateMultipartUploadCommand({ Bucket: ctx.bucket, Key: this.#key }));
        if (created.UploadId === undefined) throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'the object store started no multipart upload', { headers: { 'retry-after': '1' } });
        this.#uploadId = created.UploadId;
      }
      await ctx.client.send(new UploadPartCommand({ Bucket: ctx.bucket, Key: this.#key, UploadId: this.#uploadId, PartNumber: partNumber, Body: body, ContentLength: body.length }));
    }).catch((err: unknown) => {
      // A multipart upload that is gone took its parts with it: nothing is durable.
      this.#failure ??= mapWriteError(err, undefined, 0);
      throw this.#failure;
    });
    this.#chain = run.catch(() => {});
    this.#lastPart = run;
    return run;
  }

  async commit(): Promise<StagedCheckpoint> {
    this.#usable();
    // The snapshot: everything handed to write() before this call, nothing after.
    const offset = this.#offset;
    const parts = this.#parts;
    const tail = this.#pending.slice();
    const tailSize = this.#pendingBytes;
    const lastPart = this.#lastPart;
    if (offset === this.#committed.offset) return this.#committed;
    const ctx = this.#ctx;
    const gen = tailSize > 0 ? randomBytes(8).toString('hex') : null;
    await lastPart;
    // Tails two commits old: the caller stored the checkpoint after them before committing again.
    const old = gen === null ? [] : this.#tails.splice(0, Math.max(0, this.#tails.length - 1));
    await Promise.all([
      gen === null ? undefined : call(() => ctx.client.send(new PutObjectCommand({ Bucket: ctx.bucket, Key: tailKey(ctx, this.id, gen), Body: Buffer.concat(tail, tailSize), ContentLength: tailSize }))),
      ...old.map((g) => ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: tailKey(ctx, this.id, g) })).catch(() => {})),
    ]);
    if (gen !== null) this.#tails.push(gen);
    const state: OpenState = { sealed: false, uploadId: this.#uploadId, parts, partSize: this.#partSize, tail: gen, tailSize };
    const cp: StagedCheckpoint = { offset, state: encodeState(state) };
    if (offset >= this.#committed.offset) {
      this.#committed = cp;
      this.#committedState = state;
    }
    return cp;
  }

  async rollback(): Promise<void> {
    if (this.#closed) throw new FerryError('FERRY_ERR_INTERNAL', 'staged writer used after close');
    // No part upload may land after the parts it replaces are uploaded again.
    await this.#chain;
    this.#failure = undefined;
    const st = this.#committedState;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#offset = partsEnd(st.partSize, st.parts);
    this.#parts = st.parts;
    this.#lastPart = Promise.resolve();
    if (st.tail !== null) {
      const bytes = await call(() => readObject(this.#ctx, tailKey(this.#ctx, this.id, st.tail!)));
      if (bytes.length !== st.tailSize) throw offsetMismatch('the tail of this upload has another size than its checkpoint says', this.#offset);
      this.#pending = [bytes];
      this.#pendingBytes = bytes.length;
      this.#offset += bytes.length;
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = [];
    this.#pendingBytes = 0;
    await this.#chain;
  }
}
