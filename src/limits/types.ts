/**
 * The seam between traffic control and the routes that move bytes. Routes call `admit`
 * before the body starts and `pace` around the body stream; the default implementation
 * (no limits configured) admits at once and returns the stream unchanged.
 * The in-process implementation lives here; a Redis-backed one can implement the same.
 */
import type { Readable } from 'node:stream';
import type { Identity } from '../core/access.ts';
import type { BytePacer } from './pace-stream.ts';

export interface TransferSubject {
  /** Identity from the auth hook (undefined before auth exists). */
  readonly identity: Identity | undefined;
  /** Client address (X-Forwarded-For honoured only with --trust-proxy). */
  readonly clientAddress: string;
}

/** Releases a transfer slot; idempotent. */
export type ReleasePermit = () => void;

export interface TransferControl {
  /**
   * Waits for a transfer slot (bounded priority queue) or throws FerryError
   * FERRY_ERR_LIMIT_CLIENT (429) / FERRY_ERR_LIMIT_GLOBAL (503) with Retry-After.
   * `signal` aborts the wait (client went away): the request leaves the queue.
   */
  admit(subject: TransferSubject, signal: AbortSignal): Promise<ReleasePermit>;
  /**
   * Paces a download body (bytes/s per transfer, per client, per role, global). Returns
   * `body` itself when no rate applies to this subject.
   */
  pace(subject: TransferSubject, body: Readable, signal: AbortSignal): Readable;
  /**
   * The same pacing for a route that pumps bytes itself (no stream to wrap): call
   * `take(n)` before writing each chunk and await the promise when one is returned (one
   * take at a time). Undefined when no rate applies to this subject.
   */
  pacer(subject: TransferSubject, signal: AbortSignal): BytePacer | undefined;
  /** Paces an upload body (ingest limits). */
  paceUpload(subject: TransferSubject, body: Readable, signal: AbortSignal): Readable;
  /**
   * The largest read chunk worth holding for this subject's download pacing, or undefined
   * when `pace` will not throttle it. A throttled transfer holds its chunks for a long time,
   * so routes should read `min(--read-buffer-size, chunkBytes(subject))`: with 256 KiB reads
   * 200 transfers at 64 KiB/s pin ~150 MiB; with the hint, ~20 MiB.
   */
  chunkBytes(subject: TransferSubject): number | undefined;
}

/** No limits: admit at once, streams unchanged. */
export function createUnlimitedTransferControl(): TransferControl {
  const release: ReleasePermit = () => {};
  return {
    admit: async () => release,
    pace: (_subject, body) => body,
    paceUpload: (_subject, body) => body,
    pacer: () => undefined,
    chunkBytes: () => undefined,
  };
}
