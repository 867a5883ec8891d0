/**
 * Concurrency permits with a bounded priority queue. A request takes one slot of its client's
 * counter and one of the global counter (all or none); when it cannot, it waits in the queue,
 * ordered by priority (admin > write > read > anonymous) and then by arrival. A waiter that
 * only its own client's limit holds back does not block others (no head-of-line blocking).
 * A waiter leaves the queue when its signal aborts (the client went away), when its wait
 * passes the queue timeout (→ 429 if its own client limit held it, 503 if the global one did),
 * or never enters it when the queue is full. Release is idempotent and wakes the queue.
 */
import { FerryError } from '../core/errors.ts';
import { channels, publish, type LimitEvent } from '../core/channels.ts';
import { onAbort } from '../core/abort.ts';
import { monotonicNowMs, type LimitStore, type Slot } from './limit-store.ts';
import type { ReleasePermit } from './types.ts';

export interface AdmissionRequest {
  /** Higher first. */
  readonly priority: number;
  /** Counters to take one slot from, the client's first (its index decides 429 vs 503). */
  readonly slots: readonly Slot[];
  /** Index in `slots` of the client's own counter, or -1 when there is none. */
  readonly clientSlotIndex: number;
}

export interface AdmissionQueueOptions {
  readonly store: LimitStore;
  /** Longest wait (ms); 0 = never wait. */
  readonly timeoutMs: number;
  /** Most waiters; 0 = never wait. */
  readonly maxWaiting: number;
  readonly now?: () => number;
}

interface Waiter {
  readonly request: AdmissionRequest;
  readonly enqueuedAt: number;
  /** Why it waits now: 'client' or 'global'. */
  blockedBy: 'client' | 'global';
  done: boolean;
  resolve: (release: ReleasePermit) => void;
  reject: (err: unknown) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
  abortListener: Disposable | undefined;
}

const PRIORITY_LEVELS = 4;

export class AdmissionQueue {
  readonly #store: LimitStore;
  readonly #timeoutMs: number;
  readonly #maxWaiting: number;
  readonly #now: () => number;
  /** One FIFO per priority level, highest last. */
  readonly #levels: Waiter[][] = Array.from({ length: PRIORITY_LEVELS }, () => []);
  #waiting = 0;
  #dispatching = false;
  #again = false;

  constructor(options: AdmissionQueueOptions) {
    this.#store = options.store;
    this.#timeoutMs = options.timeoutMs;
    this.#maxWaiting = options.maxWaiting;
    this.#now = options.now ?? monotonicNowMs;
  }

  /** Requests waiting now. */
  get length(): number {
    return this.#waiting;
  }

  /**
   * Resolves with an idempotent release once a slot of every counter is held; rejects with
   * FERRY_ERR_LIMIT_CLIENT (429) / FERRY_ERR_LIMIT_GLOBAL (503) and Retry-After, or with the
   * signal's reason when it aborts first.
   */
  admit(request: AdmissionRequest, signal: AbortSignal): Promise<ReleasePermit> {
    if (request.slots.length === 0) return Promise.resolve(() => {});
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    // Waiters still queued are ones that cannot be served now (every release dispatches at
    // once), so trying first never overtakes a waiter that could have had this slot.
    // With the in-process store this runs synchronously: the waiter is queued on return.
    const r = this.#store.tryAcquire(request.slots);
    return typeof r === 'number' ? this.#afterTry(request, signal, r) : r.then((blocked) => this.#afterTry(request, signal, blocked));
  }

  async #afterTry(request: AdmissionRequest, signal: AbortSignal, blocked: number): Promise<ReleasePermit> {
    if (blocked === -1) {
      if (signal.aborted) {
        await this.#store.release(request.slots);
        throw signal.reason;
      }
      return this.#releaser(request.slots);
    }
    const promise = this.#enqueue(request, signal, this.#cause(request, blocked));
    // A slot may have been released while an asynchronous tryAcquire was pending.
    this.#dispatch();
    return promise;
  }

  #cause(request: AdmissionRequest, blockedIndex: number): 'client' | 'global' {
    return blockedIndex === request.clientSlotIndex ? 'client' : 'global';
  }

  #enqueue(request: AdmissionRequest, signal: AbortSignal, blockedBy: 'client' | 'global'): Promise<ReleasePermit> {
    if (this.#waiting >= this.#maxWaiting || this.#timeoutMs <= 0) {
      return Promise.reject(this.#rejection(blockedBy, this.#waiting >= this.#maxWaiting ? 'queue-full' : 'timeout'));
    }
    return new Promise<ReleasePermit>((resolve, reject) => {
      const waiter: Waiter = {
        request, enqueuedAt: this.#now(), blockedBy, done: false, resolve, reject, timer: undefined, abortListener: undefined,
      };
      const level = Math.max(0, Math.min(PRIORITY_LEVELS - 1, request.priority));
      this.#levels[level]!.push(waiter);
      this.#waiting++;
      this.#event({ kind: 'queued', queueLength: this.#waiting });
      waiter.timer = setTimeout(() => {
        if (waiter.done) return;
        this.#remove(waiter);
        waiter.reject(this.#rejection(waiter.blockedBy, 'timeout'));
      }, this.#timeoutMs);
      waiter.abortListener = onAbort(signal, () => {
        if (waiter.done) return;
        this.#remove(waiter);
        this.#event({ kind: 'rejected', reason: 'client-gone', queueLength: this.#waiting });
        waiter.reject(signal.reason);
      });
    });
  }

  #remove(waiter: Waiter): void {
    waiter.done = true;
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.abortListener?.[Symbol.dispose]();
    const level = this.#levels[Math.max(0, Math.min(PRIORITY_LEVELS - 1, waiter.request.priority))]!;
    const i = level.indexOf(waiter);
    if (i !== -1) level.splice(i, 1);
    this.#waiting--;
  }

  #rejection(blockedBy: 'client' | 'global', why: 'timeout' | 'queue-full'): FerryError {
    const retryAfterSec = Math.max(1, Math.ceil(this.#timeoutMs / 1000));
    this.#event({ kind: 'rejected', reason: `${blockedBy}-${why}`, queueLength: this.#waiting });
    const headers = { 'retry-after': String(retryAfterSec) };
    return blockedBy === 'client'
      ? new FerryError('FERRY_ERR_LIMIT_CLIENT', why === 'timeout' ? 'Too many concurrent transfers from this client; waited too long for a slot' : 'Too many concurrent transfers from this client and the wait queue is full', { headers })
      : new FerryError('FERRY_ERR_LIMIT_GLOBAL', why === 'timeout' ? 'All transfer slots are busy; waited too long for one' : 'All transfer slots are busy and the wait queue is full', { headers });
  }

  #releaser(slots: readonly Slot[]): ReleasePermit {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const r = this.#store.release(slots);
      if (r instanceof Promise) void r.then(() => { this.#dispatch(); }, () => { this.#dispatch(); });
      else this.#dispatch();
    };
  }

  /** Grants free slots to waiters in priority order; re-runs if something changed meanwhile. */
  #dispatch(): void {
    if (this.#dispatching) { this.#again = true; return; }
    this.#again = false;
    if (this.#waiting === 0) return;
    this.#dispatching = true;
    void this.#dispatchLoop().finally(() => {
      this.#dispatching = false;
      // A release that came while the loop was finishing must not be lost.
      if (this.#again) this.#dispatch();
    });
  }

  async #dispatchLoop(): Promise<void> {
    do {
      this.#again = false;
      scan: for (let level = PRIORITY_LEVELS - 1; level >= 0; level--) {
        for (const waiter of [...this.#levels[level]!]) {
          if (waiter.done) continue;
          const r = this.#store.tryAcquire(waiter.request.slots);
          const blocked = typeof r === 'number' ? r : await r;
          if (blocked === -1) {
            if (waiter.done) { await this.#store.release(waiter.request.slots); continue; }
            const waitMs = this.#now() - waiter.enqueuedAt;
            this.#remove(waiter);
            this.#event({ kind: 'dequeued', waitMs, queueLength: this.#waiting });
            waiter.resolve(this.#releaser(waiter.request.slots));
            continue;
          }
          waiter.blockedBy = this.#cause(waiter.request, blocked);
          // The global counter is full: nobody behind can be served either.
          if (waiter.blockedBy === 'global') break scan;
        }
      }
    } while (this.#again && this.#waiting > 0);
  }

  #event(e: LimitEvent): void {
    publish(channels.limit, e);
  }
}
