/**
 * Bounds the work and memory of zip planning (walking a selection, choosing its layout):
 * - **single flight**: concurrent requests for the same selection share one in-flight plan;
 *   it is aborted only when every request waiting for it has gone away (reference count);
 * - **concurrency**: at most `concurrency` plans walk at once, the others wait in FIFO order
 *   (bounded by `queueTimeoutMs`, then 503 with Retry-After);
 * - **entry budget**: the entries held by all plans together (while planning and while the
 *   requests that use them stream) stay under `maxEntries`: a plan that would pass it fails
 *   with 503 (or 413 when it alone is larger than the whole budget).
 *
 * Pure bookkeeping: no I/O; the caller's `plan` function does the walking and must honour the
 * signal it is given. Why: 16 concurrent `HEAD /zip/many` on a 100,000-file folder used to
 * walk the folder 16 times at once (38 s, 1.2 GB RSS), and a plan went on after its client left.
 */
import { addAbortListener } from 'node:events';
import { FerryError } from '../core/errors.ts';

export interface PlanFlightOptions {
  /** Plans that may walk at the same time (≥ 1). */
  readonly concurrency: number;
  /** Entries all plans together may hold (≥ 1). */
  readonly maxEntries: number;
  /** Longest wait for a planning slot before 503 (ms). */
  readonly queueTimeoutMs: number;
  /** Observes the life of plans (tests, metrics, logs). */
  readonly onEvent?: (event: PlanFlightEvent) => void;
}

export interface PlanFlightEvent {
  readonly kind: 'started' | 'joined' | 'queued' | 'finished' | 'aborted' | 'failed';
  readonly key: string;
  /** Requests sharing the plan at the time of the event. */
  readonly waiters: number;
  /** Entries the plan holds (finished, aborted, failed). */
  readonly entries?: number;
}

/** Handed to the plan function: reserve memory for each entry before holding it. */
export interface EntryBudget {
  /** Reserves `n` more entries for this plan; throws 503/413 when the budget is exhausted. */
  reserve(n: number): void;
  /** Entries reserved by this plan so far. */
  readonly reserved: number;
}

/** One request's hold on a finished plan; `release` is idempotent. */
export interface PlanLease<T> {
  readonly value: T;
  /** True when this request started the plan, false when it joined one in flight. */
  readonly leader: boolean;
  release(): void;
}

interface Flight<T> {
  readonly key: string;
  readonly controller: AbortController;
  /** Requests waiting for the result (leases not yet handed out). */
  waiters: number;
  /** Leases handed out and not released yet. */
  leases: number;
  reserved: number;
  settled: boolean;
  readonly promise: Promise<T>;
}

interface SlotWaiter {
  readonly grant: () => void;
  readonly fail: (err: unknown) => void;
}

export class PlanFlights<T> {
  readonly #o: PlanFlightOptions;
  readonly #inFlight = new Map<string, Flight<T>>();
  readonly #queue: SlotWaiter[] = [];
  #running = 0;
  #reservedTotal = 0;

  constructor(options: PlanFlightOptions) {
    if (!(options.concurrency >= 1) || !(options.maxEntries >= 1)) throw new RangeError('concurrency and maxEntries must be at least 1');
    this.#o = options;
  }

  /** Plans walking now. */
  get running(): number { return this.#running; }
  /** Plans waiting for a slot. */
  get queued(): number { return this.#queue.length; }
  /** Entries held by all plans. */
  get reservedEntries(): number { return this.#reservedTotal; }

  /**
   * The plan for `key`: joins the one in flight, or starts `plan` once a slot is free.
   * `signal` is the request's: when it aborts, this request stops waiting (rejects with its
   * reason); the plan itself is aborted when no request waits for it any more.
   */
  acquire(key: string, signal: AbortSignal, plan: (signal: AbortSignal, budget: EntryBudget) => Promise<T>): Promise<PlanLease<T>> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    let flight = this.#inFlight.get(key);
    const leader = flight === undefined;
    if (flight === undefined) flight = this.#start(key, plan);
    flight.waiters++;
    if (!leader) this.#emit('joined', flight);
    return this.#wait(flight, signal, leader);
  }

  #start(key: string, plan: (signal: AbortSignal, budget: EntryBudget) => Promise<T>): Flight<T> {
    const controller = new AbortController();
    const flight: Flight<T> = {
      key, controller, waiters: 0, leases: 0, reserved: 0, settled: false,
      promise: undefined as unknown as Promise<T>,
    };
    const budget: EntryBudget = {
      reserve: (n) => { this.#reserve(flight, n); },
      get reserved() { return flight.reserved; },
    };
    const run = async (): Promise<T> => {
      await this.#takeSlot(flight);
      try {
        this.#emit('started', flight);
        return await plan(controller.signal, budget);
      } finally {
        this.#running--;
        this.#grantSlots();
      }
    };
    (flight as { promise: Promise<T> }).promise = run().then(
      (value) => {
        flight.settled = true;
        this.#forget(flight);
        this.#emit('finished', flight);
        // Finished although every waiter had left (it did not notice the abort): nobody will
        // take a lease, so nobody would free its entries.
        if (flight.waiters === 0) this.#freeEntries(flight);
        return value;
      },
      (err: unknown) => {
        flight.settled = true;
        this.#forget(flight);
        this.#emit(controller.signal.aborted ? 'aborted' : 'failed', flight);
        this.#freeEntries(flight);
        throw err;
      },
    );
    // The waiters observe the promise; this keeps an abandoned one from being "unhandled".
    flight.promise.catch(() => {});
    this.#inFlight.set(key, flight);
    return flight;
  }

  #wait(flight: Flight<T>, signal: AbortSignal, leader: boolean): Promise<PlanLease<T>> {
    return new Promise<PlanLease<T>>((resolve, reject) => {
      let done = false;
      const leave = (): void => {
        flight.waiters--;
        // Nobody waits any more: stop walking (the flight is also forgotten, so a request
        // arriving later starts afresh instead of joining an aborted plan).
        if (flight.waiters === 0 && !flight.settled) {
          this.#forget(flight);
          flight.controller.abort(signal.reason);
        }
      };
      const listener = addAbortListener(signal, () => {
        if (done) return;
        done = true;
        leave();
        reject(signal.reason as Error);
      });
      flight.promise.then(
        (value) => {
          listener[Symbol.dispose]();
          if (done) return;
          done = true;
          flight.waiters--;
          flight.leases++;
          let released = false;
          resolve({
            value, leader,
            release: () => {
              if (released) return;
              released = true;
              flight.leases--;
              if (flight.leases === 0 && flight.waiters === 0) this.#freeEntries(flight);
            },
          });
        },
        (err: unknown) => {
          listener[Symbol.dispose]();
          if (done) return;
          done = true;
          flight.waiters--;
          reject(err);
        },
      );
    });
  }

  #takeSlot(flight: Flight<T>): Promise<void> {
    if (this.#running < this.#o.concurrency && this.#queue.length === 0) {
      this.#running++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const cleanup = (): void => {
        clearTimeout(timer);
        abortListener[Symbol.dispose]();
        const i = this.#queue.indexOf(waiter);
        if (i !== -1) this.#queue.splice(i, 1);
      };
      const waiter: SlotWaiter = {
        grant: () => { cleanup(); this.#running++; resolve(); },
        fail: (err) => { cleanup(); reject(err); },
      };
      const retryAfter = String(Math.max(1, Math.ceil(this.#o.queueTimeoutMs / 1000)));
      const timer = setTimeout(() => {
        waiter.fail(new FerryError('FERRY_ERR_LIMIT_GLOBAL', `All ${this.#o.concurrency} zip planning slots are busy (--zip-plan-concurrency); waited too long for one`, {
          headers: { 'retry-after': retryAfter }, extra: { option: 'zip-plan-concurrency', limit: this.#o.concurrency },
        }));
      }, this.#o.queueTimeoutMs);
      // Every request waiting for this plan left: it leaves the queue.
      const abortListener = addAbortListener(flight.controller.signal, () => { waiter.fail(flight.controller.signal.reason); });
      this.#queue.push(waiter);
      this.#emit('queued', flight);
    });
  }

  #grantSlots(): void {
    while (this.#running < this.#o.concurrency && this.#queue.length > 0) this.#queue[0]!.grant();
  }

  #reserve(flight: Flight<T>, n: number): void {
    flight.controller.signal.throwIfAborted();
    const max = this.#o.maxEntries;
    if (flight.reserved + n > max) {
      throw new FerryError('FERRY_ERR_ZIP_TOO_MANY_ENTRIES', `The selection has more than ${max} entries, all that zip plans may hold in memory together (--zip-plan-entries)`, {
        extra: { limit: max, option: 'zip-plan-entries' },
      });
    }
    if (this.#reservedTotal + n > max) {
      throw new FerryError('FERRY_ERR_LIMIT_GLOBAL', `Zip archives being planned or sent hold ${this.#reservedTotal} entries; this one does not fit in --zip-plan-entries (${max}) now`, {
        headers: { 'retry-after': '5' }, extra: { limit: max, option: 'zip-plan-entries' },
      });
    }
    flight.reserved += n;
    this.#reservedTotal += n;
  }

  #freeEntries(flight: Flight<T>): void {
    this.#reservedTotal -= flight.reserved;
    flight.reserved = 0;
  }

  #forget(flight: Flight<T>): void {
    if (this.#inFlight.get(flight.key) === flight) this.#inFlight.delete(flight.key);
  }

  #emit(kind: PlanFlightEvent['kind'], flight: Flight<T>): void {
    this.#o.onEvent?.({ kind, key: flight.key, waiters: flight.waiters, ...(kind === 'started' || kind === 'joined' || kind === 'queued' ? {} : { entries: flight.reserved }) });
  }
}
