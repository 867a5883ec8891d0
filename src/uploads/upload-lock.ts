/**
 * One writer per upload (issue 4 §3). A request that wants an upload held by another asks the
 * holder to let go (the holder stops reading its body, keeps what it stored, and releases) and
 * waits a bounded time; if the lock is still taken it gets FERRY_ERR_UPLOAD_LOCKED (423).
 * Waiters queue in order; nobody polls (STYLE.md habit 8).
 *
 * The interface is what a Redis lock would implement for several instances: `acquire` with a
 * release request delivered to the holder over pub/sub, and a lease that `release()` ends.
 */
import { FerryError } from '../core/errors.ts';

export interface AcquireOptions {
  /** Longest wait before 423. */
  readonly waitMs: number;
  /** Aborts the wait (the client went away). */
  readonly signal?: AbortSignal;
  /**
   * Called (at most once per holder) when another request asks for this lock. Holders in a
   * phase that must not be cut (publishing) simply ignore it; the asker then gets 423 after
   * `waitMs`.
   */
  readonly onReleaseRequested?: () => void;
  /** Don't ask the holder to let go; just wait (the expiry sweeper uses waitMs 0). */
  readonly polite?: boolean;
}

export interface UploadLock extends AsyncDisposable {
  readonly key: string;
  /** Idempotent. */
  release(): Promise<void>;
}

export interface UploadLocker {
  acquire(key: string, options: AcquireOptions): Promise<UploadLock>;
  /** True while somebody holds `key` (diagnostics and tests). */
  isLocked(key: string): boolean;
}

interface Waiter {
  readonly grant: (lock: UploadLock) => void;
  readonly onReleaseRequested: (() => void) | undefined;
}

interface Entry {
  holderReleaseRequest: (() => void) | undefined;
  asked: boolean;
  readonly waiters: Waiter[];
}

/** The in-process lock: correct for one server process (the embedded default). */
export function createInProcessUploadLocker(): UploadLocker {
  const entries = new Map<string, Entry>();

  const makeLock = (key: string): UploadLock => {
    let released = false;
    const release = async (): Promise<void> => {
      if (released) return;
      released = true;
      const entry = entries.get(key);
      if (entry === undefined) return;
      const next = entry.waiters.shift();
      if (next === undefined) {
        entries.delete(key);
        return;
      }
      entry.holderReleaseRequest = next.onReleaseRequested;
      entry.asked = false;
      next.grant(makeLock(key));
      // Somebody else is still queued behind the new holder: pass the request on.
      if (entry.waiters.length > 0) askHolder(entry);
    };
    return { key, release, [Symbol.asyncDispose]: release };
  };

  const askHolder = (entry: Entry): void => {
    if (entry.asked) return;
    entry.asked = true;
    const fn = entry.holderReleaseRequest;
    if (fn !== undefined) queueMicrotask(fn);
  };

  return {
    isLocked: (key) => entries.has(key),
    acquire(key, options) {
      const entry = entries.get(key);
      if (entry === undefined) {
        entries.set(key, { holderReleaseRequest: options.onReleaseRequested, asked: false, waiters: [] });
        return Promise.resolve(makeLock(key));
      }
      if (options.waitMs <= 0 && options.polite === true) {
        return Promise.reject(locked(key));
      }
      return new Promise<UploadLock>((resolve, reject) => {
        let settled = false;
        const cleanup = (): void => {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', onAbort);
          const i = entry.waiters.indexOf(waiter);
          if (i >= 0) entry.waiters.splice(i, 1);
        };
        const waiter: Waiter = {
          onReleaseRequested: options.onReleaseRequested,
          grant: (lock) => {
            if (settled) { void lock.release(); return; }
            settled = true;
            cleanup();
            resolve(lock);
          },
        };
        const fail = (err: unknown): void => {
          if (settled) return;
          settled = true;
          cleanup();
          reject(err);
        };
        const onAbort = (): void => { fail(options.signal?.reason ?? new Error('aborted')); };
        const timer = setTimeout(() => { fail(locked(key)); }, Math.max(0, options.waitMs));
        if (options.signal?.aborted === true) { fail(options.signal.reason); return; }
        options.signal?.addEventListener('abort', onAbort, { once: true });
        entry.waiters.push(waiter);
        if (options.polite !== true) askHolder(entry);
      });
    },
  };
}

function locked(key: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_LOCKED', `upload ${key} is being written by another request; retry shortly`, { headers: { 'retry-after': '1' } });
}
