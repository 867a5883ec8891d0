/**
 * A primary backend with a backup for reads, behind a circuit breaker (circuit-breaker.ts).
 *
 * - Reads (stat, open, list, walk, check) go to the primary while its breaker is closed or
 *   half-open. A primary failure that says the backend is unavailable (FERRY_ERR_STORAGE_UNAVAILABLE or _BAD_GATEWAY,
 *   a timeout, a network error) counts against the breaker and the same request is retried on
 *   the backup. Any other answer, a 404 or a 400 included, is the answer: the backup may be
 *   stale, so it is never asked about a file the primary says does not exist.
 * - While the breaker is open, reads go straight to the backup.
 * - Writes (staging, publish, remove, entryType) use
 *   the primary only and answer FERRY_ERR_STORAGE_UNAVAILABLE (503, Retry-After) while its
 *   breaker is open; `assertWritable` lets the writing routes refuse before they read a body
 *   (src/server/write-gate.ts).
 * - Presigned URLs (--s3-redirect) come from the primary only while it is healthy.
 * - A stream already reading from the primary when it fails continues from the backup at the
 *   exact next byte when the backup holds the same version (same-version.ts), and is cut
 *   otherwise: bytes of two versions are never mixed.
 */
import { Readable } from 'node:stream';
import { FerryError } from '../../core/errors.ts';
import { channels, publish, type StorageCircuitEvent } from '../../core/channels.ts';
import type { SafePath } from '../../core/safe-path.ts';
import type { ByteRange, FileHandleReader, FileStat, ListOptions, ListResult, OpenReadOptions, PresignGetOptions, PublishMode, PublishOptions, PublishResult, StagedCheckpoint, StagedEntry, StagedRef, StagedWriter, Staging, Storage, StorageHealth, WalkEntry } from '../types.ts';
import { decideSameVersion } from './same-version.ts';
import { INITIAL_BREAKER, breakerRetryAfterMs, decideBreaker, type BreakerEvent, type BreakerOptions, type BreakerState, type BreakerTransition } from './circuit-breaker.ts';

export interface FailoverStorageOptions extends BreakerOptions {
  readonly primary: Storage;
  readonly backup: Storage;
  /** Clock (ms); `Date.now` by default. */
  readonly now?: () => number;
  /**
   * The primary could not be reached at start (this says why): the breaker starts open, so
   * reads go to the backup until the cool-down lets a probe through.
   */
  readonly startOpen?: string;
  /** Called on every breaker transition (the server logs it). */
  readonly onTransition?: (transition: BreakerTransition & { readonly backend: 'primary' }) => void;
  /** Called when a download's primary failed mid-stream: continued from the backup, or cut. */
  readonly onMidStream?: (event: MidStreamFailover) => void;
}

/** Node's error codes that mean the peer is down or unreachable. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'EAI_AGAIN', 'ENOTFOUND', 'EIO', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** True when `err` says the backend could not be reached or did not answer in time (not a 404/400). */
export function isAvailabilityFailure(err: unknown): boolean {
  if (err instanceof FerryError) return err.code === 'FERRY_ERR_STORAGE_UNAVAILABLE' || err.code === 'FERRY_ERR_STORAGE_BAD_GATEWAY';
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; code?: unknown };
  if (e.name === 'TimeoutError') return true;
  return typeof e.code === 'string' && NETWORK_CODES.has(e.code);
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return signal?.aborted === true || (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'AbortError');
}

const STATE_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

/** What happened to a download whose primary failed mid-stream (for the log). */
export interface MidStreamFailover {
  readonly path: string;
  /** The first byte the primary did not deliver. */
  readonly offset: number;
  /** `continued`: the rest comes from the backup (same version); `cut`: the stream fails. */
  readonly outcome: 'continued' | 'cut';
  readonly reason: string;
}

/** Reads `buffer.length` bytes at `position` from any handle (positional when it can). */
async function readFrom(handle: FileHandleReader, buffer: Uint8Array, position: number): Promise<number> {
  if (handle.readAt !== undefined) return handle.readAt(buffer, position);
  const end = Math.min(position + buffer.length, handle.stat.size) - 1;
  if (end < position) return 0;
  let n = 0;
  for await (const chunk of handle.openRead({ start: position, end }) as AsyncIterable<Buffer>) {
    buffer.set(chunk, n);
    n += chunk.length;
  }
  return n;
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * A handle from the primary. A mid-stream availability failure counts against the breaker;
 * then the same path is opened on the backup and, when it holds the same version
 * (decideSameVersion: same size and ETag, or same size and mtime), the read continues there
 * at the exact next byte, and so does every later read of this handle. Otherwise the stream
 * is cut with the primary's error: bytes of two versions are never mixed.
 */
class PrimaryHandle implements FileHandleReader {
  readonly #inner: FileHandleReader;
  readonly #path: string;
  readonly #report: (event: BreakerEvent) => void;
  readonly #openBackup: () => Promise<FileHandleReader>;
  readonly #notify: (event: MidStreamFailover) => void;
  /** The one attempt to take over from the backup (undefined: not tried yet). */
  #takeover: Promise<FileHandleReader | undefined> | undefined;
  /** The backup's handle once it took over. */
  #switched: FileHandleReader | undefined;
  /** The primary's stat when the backup took over (what the client's headers promised). */
  #pinned: FileStat | undefined;
  #closed = false;
  readonly readAt?: (buffer: Uint8Array, position: number) => Promise<number>;
  readonly prefetch?: (range: ByteRange, options?: { signal?: AbortSignal }) => Promise<void>;

  constructor(inner: FileHandleReader, path: string, report: (event: BreakerEvent) => void, openBackup: () => Promise<FileHandleReader>, notify: (event: MidStreamFailover) => void) {
    this.#inner = inner;
    this.#path = path;
    this.#report = report;
    this.#openBackup = openBackup;
    this.#notify = notify;
    const prefetch = inner.prefetch?.bind(inner);
    if (prefetch !== undefined) {
      // Before any byte went out: a primary that fails here hands the whole answer to the
      // backup when it holds the same version (the same rule as mid-stream), else it fails.
      this.prefetch = async (range, options) => {
        if (this.#switched !== undefined) { await this.#switched.prefetch?.(range, options); return; }
        try {
          await prefetch(range, options);
        } catch (err) {
          if (isAbort(err, options?.signal) || !isAvailabilityFailure(err)) throw err;
          report('failure');
          const backup = await this.#takeOver(range.start);
          if (backup === undefined) throw err;
          await backup.prefetch?.(range, options);
        }
      };
    }
    const readAt = inner.readAt?.bind(inner);
    if (readAt !== undefined) {
      this.readAt = async (buffer, position) => {
        if (this.#switched !== undefined) return readFrom(this.#switched, buffer, position);
        try {
          return await readAt(buffer, position);
        } catch (err) {
          if (!isAvailabilityFailure(err)) throw err;
          report('failure');
          const backup = await this.#takeOver(position);
          if (backup === undefined) throw err;
          return readFrom(backup, buffer, position);
        }
      };
    }
  }

  get stat(): FileStat { return this.#pinned ?? this.#inner.stat; }

  /**
   * After the primary failed at `offset`: the backup's handle when it holds the same version,
   * undefined (cut) when it does not or cannot say. Tried once per handle.
   */
  #takeOver(offset: number): Promise<FileHandleReader | undefined> {
    this.#takeover ??= (async () => {
      const primary = this.#inner.stat;
      let backup: FileHandleReader;
      try {
        backup = await this.#openBackup();
      } catch (err) {
        this.#notify({ path: this.#path, offset, outcome: 'cut', reason: `the backup cannot serve it: ${messageOf(err)}` });
        return undefined;
      }
      const verdict = decideSameVersion(primary, backup.stat);
      if (!verdict.same || this.#closed) {
        await backup.close();
        if (!verdict.same) this.#notify({ path: this.#path, offset, outcome: 'cut', reason: `the backup holds another version: ${verdict.reason}` });
        return undefined;
      }
      this.#pinned = primary;
      this.#switched = backup;
      this.#notify({ path: this.#path, offset, outcome: 'continued', reason: `same version on the backup (${verdict.basis})` });
      return backup;
    })();
    return this.#takeover;
  }

  openRead(range?: ByteRange, options: OpenReadOptions = {}): Readable {
    if (this.#switched !== undefined) return this.#switched.openRead(range, options);
    const start = range?.start ?? 0;
    const end = range?.end ?? this.stat.size - 1;
    let current: Readable | undefined;
    const body = async function* (this: PrimaryHandle): AsyncGenerator<Buffer> {
      let pos = start;
      current = this.#inner.openRead(range, options);
      try {
        for await (const chunk of current as AsyncIterable<Buffer>) {
          pos += chunk.length;
          yield chunk;
        }
        return;
      } catch (err) {
        if (isAbort(err, options.signal) || !isAvailabilityFailure(err)) throw err;
        this.#report('failure');
        const backup = await this.#takeOver(pos);
        if (backup === undefined) throw err;
        if (pos > end) return;
        current = backup.openRead({ start: pos, end }, options);
        yield* current as AsyncIterable<Buffer>;
      }
    }.call(this);
    const stream = Readable.from(body, { objectMode: false, ...(options.highWaterMark === undefined ? {} : { highWaterMark: options.highWaterMark }) });
    // Readable.from asks the generator to return only at its next await: the source it is
    // reading from is torn down at once instead.
    stream.once('close', () => { current?.destroy(); });
    return stream;
  }

  async restat(): Promise<FileStat> {
    const switched = this.#switched;
    if (switched !== undefined) {
      const now = await switched.restat();
      // Still the version the client is getting: the primary's stat, as before the switch.
      return decideSameVersion(this.stat, now).same ? this.stat : now;
    }
    try {
      return await this.#inner.restat();
    } catch (err) {
      if (isAvailabilityFailure(err)) this.#report('failure');
      throw err;
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inner.close();
    await this.#switched?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}

export class FailoverStorage implements Storage {
  readonly #primary: Storage;
  readonly #backup: Storage;
  readonly #options: BreakerOptions;
  readonly #now: () => number;
  readonly #onTransition: FailoverStorageOptions['onTransition'];
  readonly #onMidStream: FailoverStorageOptions['onMidStream'];
  #state: BreakerState = INITIAL_BREAKER;

  constructor(options: FailoverStorageOptions) {
    this.#primary = options.primary;
    this.#backup = options.backup;
    this.#options = { failureThreshold: options.failureThreshold, failureWindowMs: options.failureWindowMs, cooldownMs: options.cooldownMs };
    this.#now = options.now ?? Date.now;
    this.#onTransition = options.onTransition;
    this.#onMidStream = options.onMidStream;
    if (options.startOpen !== undefined) {
      this.#state = { name: 'open', openedAt: this.#now() };
      this.#onTransition?.({ backend: 'primary', from: 'closed', to: 'open', reason: `unavailable at start: ${options.startOpen}` });
    }
  }

  /** Staged uploads live on the primary only; refused (503, Retry-After) while its breaker is open. */
  readonly staging: Staging = {
    open: (id: string, checkpoint: StagedCheckpoint | undefined, options?: { signal?: AbortSignal }): Promise<StagedWriter> => this.#write(() => this.#primary.staging.open(id, checkpoint, options)),
    read: (source: StagedRef, options?: { signal?: AbortSignal }): Promise<Readable> => this.#write(() => this.#primary.staging.read(source, options)),
    concat: (target: string, parts: readonly StagedRef[], options?: { signal?: AbortSignal }): Promise<StagedCheckpoint> => this.#write(() => this.#primary.staging.concat(target, parts, options)),
    remove: (id: string, options?: { signal?: AbortSignal }): Promise<void> => this.#write(() => this.#primary.staging.remove(id, options)),
    list: (options?: { signal?: AbortSignal }): AsyncIterable<StagedEntry> => this.#primary.staging.list(options),
  };

  publish(source: StagedRef, target: SafePath, mode: PublishMode, options?: PublishOptions): Promise<PublishResult> {
    return this.#write(() => this.#primary.publish(source, target, mode, options));
  }

  remove(path: SafePath, options?: { signal?: AbortSignal }): Promise<boolean> {
    return this.#write(() => this.#primary.remove(path, options));
  }

  entryType(path: SafePath, options?: { signal?: AbortSignal }): Promise<'file' | 'directory' | 'other' | undefined> {
    return this.#write(() => this.#primary.entryType(path, options));
  }

  /** A write: the primary only, refused while its breaker is open; availability failures count against it. */
  async #write<T>(op: () => Promise<T>): Promise<T> {
    this.#refuseWritesWhileOpen();
    try {
      return await op();
    } catch (err) {
      if (isAvailabilityFailure(err)) this.#step('failure');
      throw err;
    }
  }

  /** The primary's crash leftovers (local: cross-filesystem publish temps); writes live there only. */
  async sweepWriteLeftovers(nowMs?: number): Promise<number> {
    const primary = this.#primary as Storage & { sweepWriteLeftovers?: (nowMs?: number) => Promise<number> };
    if (typeof primary.sweepWriteLeftovers !== 'function' || this.#state.name === 'open') return 0;
    return primary.sweepWriteLeftovers(nowMs);
  }

  /** The primary's breaker state now. */
  get state(): BreakerState['name'] { return this.#state.name; }

  /** Publishes the current state on the diagnostics channel (so a gauge starts at a value). */
  announce(): void {
    publish<StorageCircuitEvent>(channels.storageCircuit, { backend: 'primary', state: this.#state.name, value: STATE_VALUE[this.#state.name] });
  }

  #step(event: BreakerEvent): boolean {
    const decision = decideBreaker(this.#state, event, this.#now(), this.#options);
    this.#state = decision.state;
    if (decision.transition !== undefined) {
      const t = decision.transition;
      publish<StorageCircuitEvent>(channels.storageCircuit, { backend: 'primary', state: t.to, value: STATE_VALUE[t.to], reason: t.reason });
      this.#onTransition?.({ backend: 'primary', ...t });
    }
    return decision.usePrimary;
  }

  /**
   * Throws the breaker's refusal (FERRY_ERR_STORAGE_UNAVAILABLE, 503, Retry-After: the seconds
   * left in the cool-down) while the primary's breaker is open. Upload routes call it before
   * they read a body (src/server/write-gate.ts), whichever write path they take.
   */
  assertWritable(): void { this.#refuseWritesWhileOpen(); }

  #refuseWritesWhileOpen(): void {
    if (this.#state.name !== 'open') return;
    const seconds = Math.max(1, Math.ceil(breakerRetryAfterMs(this.#state, this.#now(), this.#options) / 1000));
    throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'the primary storage is unavailable (reads are served from the backup); try again later', { headers: { 'retry-after': String(seconds) } });
  }

  /** One read: the primary when the breaker admits it, the backup when it does not or when the primary is unavailable. */
  async #read<T>(op: (storage: Storage) => Promise<T>, signal?: AbortSignal): Promise<T> {
    if (!this.#step('admit')) return op(this.#backup);
    let result: T;
    try {
      result = await op(this.#primary);
    } catch (err) {
      if (isAbort(err, signal)) { this.#step('cancel'); throw err; }
      if (!isAvailabilityFailure(err)) { this.#step('success'); throw err; }
      this.#step('failure');
      return op(this.#backup);
    }
    this.#step('success');
    return result;
  }

  stat(path: SafePath): Promise<FileStat> {
    return this.#read((s) => s.stat(path));
  }

  /**
   * A presigned URL points the client at the primary itself, where no breaker watches it:
   * handed out only while the breaker is closed with no failure in its window (after a
   * failure the request may have been served by the backup); undefined otherwise, and the
   * request is served through Ferry.
   */
  async presignGet(path: SafePath, options: PresignGetOptions): Promise<string | undefined> {
    if (this.#state.name !== 'closed' || this.#state.failuresAt.length > 0) return undefined;
    return this.#primary.presignGet?.(path, options);
  }

  open(path: SafePath): Promise<FileHandleReader> {
    if (!this.#step('admit')) return this.#backup.open(path);
    return this.#primary.open(path).then(
      (handle) => {
        this.#step('success');
        return new PrimaryHandle(handle, path.relative, (e) => { this.#step(e); }, () => this.#backup.open(path), (e) => { this.#onMidStream?.(e); });
      },
      (err: unknown) => {
        if (!isAvailabilityFailure(err)) { this.#step('success'); throw err; }
        this.#step('failure');
        return this.#backup.open(path);
      },
    );
  }

  list(dir: SafePath, options: ListOptions): Promise<ListResult> {
    return this.#read((s) => s.list(dir, options), options.signal);
  }

  /**
   * Falls over only before the first entry: once the primary's entries have been handed out,
   * a failure ends the walk (a listing is never stitched from two stores).
   */
  async *walk(dir: SafePath, options: { signal?: AbortSignal } = {}): AsyncIterable<WalkEntry> {
    if (!this.#step('admit')) { yield* this.#backup.walk(dir, options); return; }
    let yielded = false;
    try {
      for await (const entry of this.#primary.walk(dir, options)) {
        yielded = true;
        yield entry;
      }
    } catch (err) {
      if (isAbort(err, options.signal)) { this.#step('cancel'); throw err; }
      if (!isAvailabilityFailure(err)) { this.#step('success'); throw err; }
      this.#step('failure');
      if (yielded) throw err;
      yield* this.#backup.walk(dir, options);
      return;
    }
    this.#step('success');
  }

  /**
   * Ready when the primary answers, or when it does not but the backup does: then the
   * answer names the degraded backend. Throws only when neither can serve.
   */
  async check(): Promise<StorageHealth | undefined> {
    let primaryDown = false;
    if (this.#step('admit')) {
      try {
        await this.#primary.check();
        this.#step('success');
        return undefined;
      } catch (err) {
        if (!isAvailabilityFailure(err)) { this.#step('success'); throw err; }
        this.#step('failure');
        primaryDown = true;
      }
    }
    await this.#backup.check();
    return primaryDown || this.#state.name !== 'closed' ? { degraded: 'primary' } : undefined;
  }

  async close(): Promise<void> {
    await Promise.all([this.#primary.close?.(), this.#backup.close?.()]);
  }
}
