/**
 * The persisted state of one tus upload (MetaStore namespace `tus-uploads`). The acknowledged
 * offset lives here, apart from the data file's size: bytes past `offset` in the data file were
 * never acknowledged and are cut off before the next write (crash safety, issue 4 §2).
 */
import type { StagedCheckpoint } from '../storage/index.ts';

export const UPLOAD_NAMESPACE = 'tus-uploads';

/**
 * - `receiving`: accepting PATCHes (also partial uploads).
 * - `waiting`: a final upload whose partials are not all complete (concatenation-unfinished).
 * - `assembling`: a final upload being concatenated.
 * - `publishing`: complete; being moved to its target.
 * - `done`: published (`target`), or a complete partial upload.
 * - tombstones answered 410: `terminated`, `expired`, `failed`, `consumed` (a partial that a
 *   final upload has taken in).
 */
export type UploadState = 'receiving' | 'waiting' | 'assembling' | 'publishing' | 'done' | 'terminated' | 'expired' | 'failed' | 'consumed';

export const GONE_STATES: ReadonlySet<UploadState> = new Set(['terminated', 'expired', 'failed', 'consumed']);

export interface UploadIntentRecord {
  readonly filename?: string;
  readonly folder: string;
  readonly sha256?: string;
}

export interface UploadRecord {
  readonly id: string;
  readonly createdAt: number;
  /** Epoch ms after which an unfinished upload is removed (refreshed by each PATCH). */
  readonly expiresAt: number;
  /** null while the length is deferred (creation-defer-length). */
  readonly length: number | null;
  /** Acknowledged, durable offset. */
  readonly offset: number;
  /**
   * The staged upload's checkpoint at `offset`, as the storage backend returned it (written in
   * the same record write as the offset). Absent in records of older versions: `{ offset }`.
   */
  readonly staged?: StagedCheckpoint;
  /** Upload-Metadata exactly as received (echoed by HEAD), or null. */
  readonly metadata: string | null;
  readonly intent: UploadIntentRecord;
  readonly concat: 'partial' | 'final' | null;
  /** Upload-Concat exactly as received (echoed by HEAD). */
  readonly concatHeader?: string;
  /** Final upload: its partial uploads' ids, in order. */
  readonly parts?: readonly string[];
  /** Partial upload: the final upload that takes it in. */
  readonly finalId?: string;
  /** Final upload, written by older versions (which assembled part by part): parts already in the data file, and its size after them. Unused now: an interrupted assembly is taken up again by one `staging.concat`. */
  readonly assembly?: { readonly part: number; readonly bytes: number };
  readonly state: UploadState;
  /** Published path relative to the root (once `publishing` or `done`). */
  readonly target?: string;
  /** Why a `failed` upload failed (safe for clients). */
  readonly reason?: string;
  /**
   * Who created it, for --max-pending-uploads-client: a hash of the client key (the token or
   * JWT identity, else the client address), never the name itself.
   */
  readonly owner?: string;
  /** Wall-clock ms of the last commit of data (after its fsync); see decide-sweep.ts isDataIdle. */
  readonly dataSyncedAt?: number;
}

/** Tombstones and finished records are kept this long so that clients get 410 / a complete offset. */
export const TOMBSTONE_TTL_MS = 7 * 24 * 3600 * 1000;

export function isGone(record: UploadRecord): boolean {
  return GONE_STATES.has(record.state);
}

/**
 * Unfinished: counts against --max-pending-uploads(-client). Finished (`done`) and tombstones
 * do not; an expired upload counts until the sweep turns it into a tombstone.
 */
export function isPending(record: UploadRecord): boolean {
  return !isGone(record) && record.state !== 'done';
}

/** Unfinished and past its expiry (done uploads and tombstones never expire this way). */
export function isExpired(record: UploadRecord, nowMs: number): boolean {
  return (record.state === 'receiving' || record.state === 'waiting') && record.expiresAt <= nowMs;
}
