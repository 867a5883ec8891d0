import { addAbortListener } from 'node:events';
import { FerryError } from './errors.ts';

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) { reject(signal.reason as Error); return; }
    let dispose: Disposable | undefined;
    const timer = setTimeout(() => { dispose?.[Symbol.dispose](); resolve(); }, ms);
    if (signal !== undefined) {
      dispose = addAbortListener(signal, () => { clearTimeout(timer); reject(signal.reason as Error); });
    }
  });
}

/** Calls `fn` once when `signal` aborts; returns a disposer that removes the listener. */
export function onAbort(signal: AbortSignal, fn: () => void): Disposable {
  return addAbortListener(signal, fn);
}

export function isAbortError(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'name' in err && (err as { name: unknown }).name === 'AbortError';
}

/** The part of a `ServerResponse` that `abortOnClose` needs. */
export interface ClosableResponse {
  /** True once the whole response was handed to the OS: a close after that is not a client leaving. */
  readonly writableFinished: boolean;
  once(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** A signal tied to a response's life; `dispose` (also `using`) removes the listener. */
export interface CloseSignal extends Disposable {
  readonly signal: AbortSignal;
  dispose(): void;
}

/**
 * An AbortSignal that aborts when the response closes before it finished: the client went
 * away (a reset, a timeout that destroyed the socket). The one cancellation source for the
 * work a request does (hashing, queue waits, storage reads, the body); the returned disposer
 * removes the listener, so a request that ends normally leaves nothing behind on the response.
 *
 * @param reason called at abort time (no stack captured for requests that finish); default
 *   `FERRY_ERR_CLIENT_ABORTED`.
 */
export function abortOnClose(res: ClosableResponse, reason: () => unknown = clientAborted): CloseSignal {
  const ac = new AbortController();
  const onClose = (): void => { if (!res.writableFinished) ac.abort(reason()); };
  res.once('close', onClose);
  const dispose = (): void => { res.off('close', onClose); };
  return { signal: ac.signal, dispose, [Symbol.dispose]: dispose };
}

function clientAborted(): FerryError {
  return new FerryError('FERRY_ERR_CLIENT_ABORTED', 'client went away');
}
