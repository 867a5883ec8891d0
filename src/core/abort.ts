import { addAbortListener } from 'node:events';

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
