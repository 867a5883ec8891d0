/**
 * The whole-file digests of uploads (sha-256 for `Repr-Digest`, CRC-32 for resumable zips),
 * computed while receiving — on a worker thread, so that hashing (about 1 ns/byte for both on
 * one core) runs beside the socket reads and the disk writes instead of in front of them.
 *
 * The main thread copies the bytes into 1 MiB batches it transfers (no second copy; the worker
 * sends each batch back for reuse) and keeps at most HIGH_WATER bytes in flight: past that,
 * `update` returns a promise the body pump awaits, so memory stays bounded when the worker is
 * the slower side.
 *
 * States are immutable snapshots (`FileDigestState`, the digest of an acknowledged prefix) and
 * running copies (`RunningDigest`, fed a chunk, snapshotted only once the chunk is
 * acknowledged), so a discarded chunk never reaches the file's digest. Worker-side states are
 * freed when their main-thread object is garbage-collected.
 */
import { Worker } from 'node:worker_threads';

export type DigestRequest =
  | { op: 'new'; id: number; from?: number }
  | { op: 'update'; id: number; buffer: ArrayBuffer; length: number }
  | { op: 'digest'; id: number; req: number }
  | { op: 'free'; id: number };

type DigestReply =
  | { op: 'ack'; bytes: number; buffer: ArrayBuffer }
  | { op: 'result'; req: number; sha256?: string; crc32?: number; bytes?: number; error?: string };

export interface DigestResult {
  /** Lowercase hex. */
  readonly sha256: string;
  /** Unsigned CRC-32 (zlib polynomial). */
  readonly crc32: number;
}

const BATCH_BYTES = 1024 * 1024;
/** Batches kept for reuse (they come back from the worker with each ack). */
const POOL_SIZE = 24;
const HIGH_WATER = 16 * 1024 * 1024;
const LOW_WATER = 8 * 1024 * 1024;

export class DigestEngine {
  #worker: Worker | undefined;
  #failed: Error | undefined;
  #closed = false;
  #nextId = 1;
  #nextReq = 1;
  #inFlight = 0;
  readonly #results = new Map<number, { resolve: (r: DigestResult & { bytes: number }) => void; reject: (e: Error) => void }>();
  #drainWaiters: Array<() => void> = [];
  readonly #pool: Buffer[] = [];
  readonly #registry = new FinalizationRegistry<number>((id) => { this.post({ op: 'free', id }); });

  /** A state of zero bytes. */
  empty(): FileDigestState {
    return new FileDigestState(this, this.#newState(undefined), 0);
  }

  /** Frees the worker. Idempotent; states become unusable. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#worker;
    this.#worker = undefined;
    for (const r of this.#results.values()) r.reject(new Error('digest engine closed'));
    this.#results.clear();
    this.#release();
    if (w !== undefined) await w.terminate();
  }

  /** @internal */
  track(owner: object, id: number): void {
    this.#registry.register(owner, id);
  }

  /** @internal */
  newState(from: number | undefined): number {
    return this.#newState(from);
  }

  #newState(from: number | undefined): number {
    const id = this.#nextId++;
    this.post(from === undefined ? { op: 'new', id } : { op: 'new', id, from });
    return id;
  }

  /** @internal Transfers `buffer`; resolves once the bytes in flight are below the low mark. */
  send(id: number, buffer: ArrayBuffer, length: number): Promise<void> | undefined {
    this.#inFlight += length;
    this.post({ op: 'update', id, buffer, length }, [buffer]);
    if (this.#inFlight <= HIGH_WATER || this.#worker === undefined) return undefined;
    return new Promise((resolve) => { this.#drainWaiters.push(resolve); });
  }

  /** @internal A 1 MiB batch buffer that owns its whole ArrayBuffer (transferable). */
  takeBatch(): Buffer {
    return this.#pool.pop() ?? Buffer.allocUnsafeSlow(BATCH_BYTES);
  }

  /** @internal */
  result(id: number): Promise<DigestResult & { bytes: number }> {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.reject(new Error('digest engine closed'));
    const req = this.#nextReq++;
    return new Promise((resolve, reject) => {
      this.#results.set(req, { resolve, reject });
      this.post({ op: 'digest', id, req });
    });
  }

  /** @internal */
  post(message: DigestRequest, transfer: ArrayBuffer[] = []): void {
    if (this.#closed || this.#failed !== undefined) return;
    this.#spawn().postMessage(message, transfer);
  }

  #spawn(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const w = new Worker(new URL('./digest-worker.ts', import.meta.url));
    // Never keeps the process alive; closed with the server.
    w.unref();
    w.on('message', (m: DigestReply) => {
      if (m.op === 'ack') {
        this.#inFlight -= m.bytes;
        if (this.#pool.length < POOL_SIZE && m.buffer.byteLength === BATCH_BYTES) this.#pool.push(Buffer.from(m.buffer));
        if (this.#inFlight <= LOW_WATER) this.#release();
        return;
      }
      const pending = this.#results.get(m.req);
      this.#results.delete(m.req);
      if (pending === undefined) return;
      if (m.error !== undefined || m.sha256 === undefined) pending.reject(new Error(m.error ?? 'no digest'));
      else pending.resolve({ sha256: m.sha256, crc32: m.crc32 ?? 0, bytes: m.bytes ?? 0 });
    });
    w.on('error', (err) => { this.#fail(err); });
    w.on('exit', (code) => { if (!this.#closed) this.#fail(new Error(`digest worker exited (${code})`)); });
    this.#worker = w;
    return w;
  }

  /** A dead worker: pending results fail (callers fall back to reading the file), nobody waits. */
  #fail(err: Error): void {
    this.#failed = err;
    this.#worker = undefined;
    for (const r of this.#results.values()) r.reject(err);
    this.#results.clear();
    this.#release();
  }

  #release(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const w of waiters) w();
  }
}

/** The digest of an acknowledged prefix [0, offset). Immutable. */
export class FileDigestState {
  readonly offset: number;
  readonly #engine: DigestEngine;
  readonly #id: number;

  /** @internal */
  constructor(engine: DigestEngine, id: number, offset: number) {
    this.#engine = engine;
    this.#id = id;
    this.offset = offset;
    engine.track(this, id);
  }

  /** A running copy to feed the next chunk into. */
  fork(): RunningDigest {
    return new RunningDigest(this.#engine, this.#engine.newState(this.#id), this.offset);
  }

  /** sha-256 and CRC-32 of the prefix (rejects if the worker died). */
  async result(): Promise<DigestResult> {
    const r = await this.#engine.result(this.#id);
    if (r.bytes !== this.offset) throw new Error(`digest covers ${r.bytes} bytes, expected ${this.offset}`);
    return { sha256: r.sha256, crc32: r.crc32 };
  }
}

/** A growing prefix's digest; `update` in file order, `snapshot` once the bytes are acknowledged. */
export class RunningDigest {
  #offset: number;
  readonly #engine: DigestEngine;
  readonly #id: number;
  #batch: Buffer | undefined;
  #used = 0;

  /** @internal */
  constructor(engine: DigestEngine, id: number, offset: number) {
    this.#engine = engine;
    this.#id = id;
    this.#offset = offset;
    engine.track(this, id);
  }

  get offset(): number { return this.#offset; }

  /** Returns a promise when too many bytes wait for the worker: await it before reading more. */
  update(chunk: Uint8Array): Promise<void> | undefined {
    let pos = 0;
    let wait: Promise<void> | undefined;
    while (pos < chunk.byteLength) {
      this.#batch ??= this.#engine.takeBatch();
      const n = Math.min(chunk.byteLength - pos, BATCH_BYTES - this.#used);
      this.#batch.set(chunk.subarray(pos, pos + n), this.#used);
      this.#used += n;
      pos += n;
      if (this.#used === BATCH_BYTES) wait = this.#flush() ?? wait;
    }
    this.#offset += chunk.byteLength;
    return wait;
  }

  /** The digest of everything fed so far, frozen. */
  snapshot(): FileDigestState {
    void this.#flush();
    return new FileDigestState(this.#engine, this.#engine.newState(this.#id), this.#offset);
  }

  #flush(): Promise<void> | undefined {
    const batch = this.#batch;
    if (batch === undefined || this.#used === 0) return undefined;
    const used = this.#used;
    this.#batch = undefined;
    this.#used = 0;
    return this.#engine.send(this.#id, batch.buffer as ArrayBuffer, used);
  }
}
