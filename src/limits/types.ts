/**
 * The seam between traffic control and the routes that move bytes. Routes call `admit`
 * before the body starts and `pace` around the body stream; the default implementation
 * (no limits configured) admits at once and returns the stream unchanged.
 * The in-process implementation lives here; a Redis-backed one can implement the same.
 */
import type { Readable } from 'node:stream';
import type { Identity } from '../core/access.ts';

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
  /** Paces a download body (bytes/s per transfer, per client, per role, global). */
  pace(subject: TransferSubject, body: Readable, signal: AbortSignal): Readable;
  /** Paces an upload body (ingest limits). */
  paceUpload(subject: TransferSubject, body: Readable, signal: AbortSignal): Readable;
}

/** No limits: admit at once, streams unchanged. */
export function createUnlimitedTransferControl(): TransferControl {
  const release: ReleasePermit = () => {};
  return {
    admit: async () => release,
    pace: (_subject, body) => body,
    paceUpload: (_subject, body) => body,
  };
}
