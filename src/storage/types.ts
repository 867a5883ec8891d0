/**
 * The storage interface every backend implements (local disk now, S3 later). Paths are
 * SafePath values (src/core/safe-path.ts): already validated and decoded; the backend
 * enforces the other half of the jail (symlinks, dotfiles, the root).
 */
import type { Readable } from 'node:stream';
import type { SafePath } from '../core/safe-path.ts';

export interface FileStat {
  readonly type: 'file' | 'directory';
  readonly size: number;
  /** Modification time, milliseconds (integer part of mtimeNs / 1e6). */
  readonly mtimeMs: number;
  /** Modification time in nanoseconds (for validators that must change on every write). */
  readonly mtimeNs: bigint;
  /** Identity of the underlying object (inode on local disk, 0n where the backend has none). */
  readonly ino: bigint;
  readonly dev: bigint;
  /** Unix mode bits (permissions and type), 0 where the backend has none. */
  readonly mode: number;
  /**
   * A strong validator the backend guarantees for these exact bytes (opaque, without quotes):
   * the object's ETag on an object store. Absent on local disk, where (ino, size, mtimeNs)
   * is the validator. When present, HTTP ETags are derived from it (src/http/etag.ts).
   */
  readonly etag?: string;
}

export interface ByteRange {
  /** First byte, inclusive. */
  readonly start: number;
  /** Last byte, inclusive (RFC 9110 style). */
  readonly end: number;
}

export interface OpenReadOptions {
  readonly signal?: AbortSignal;
  /** Bytes per chunk. */
  readonly highWaterMark?: number;
}

/**
 * An open file: `stat` comes from the same handle the bytes are read from, so a file replaced
 * between stat and read cannot mix two versions. Several ranges may be read from one handle.
 * `close()` is idempotent; streams created by `openRead` do not close the handle.
 */
export interface FileHandleReader extends AsyncDisposable {
  readonly stat: FileStat;
  /** Streams `range` (whole file when omitted). Destroying the stream releases its buffers. */
  openRead(range?: ByteRange, options?: OpenReadOptions): Readable;
  /**
   * Positional read into a caller-owned buffer (no allocation per chunk, so hot paths can
   * reuse a buffer pool): resolves to the bytes read, 0 at end of file. Optional: remote
   * backends may only stream.
   */
  readAt?(buffer: Uint8Array, position: number): Promise<number>;
  /**
   * Starts reading `range` now and resolves once its first bytes are in (retries included),
   * or rejects with the backend's error, so a failing remote store can still be answered
   * with an error status before any header went out. The next `openRead` starting at
   * `range.start` continues that read. Optional: local disk has nothing to start.
   */
  prefetch?(range: ByteRange, options?: { signal?: AbortSignal }): Promise<void>;
  /** Re-reads the metadata from the open handle (e.g. to detect a file that changed mid-stream). */
  restat(): Promise<FileStat>;
  close(): Promise<void>;
}

export interface ListEntry {
  readonly name: string;
  readonly type: 'file' | 'directory';
  readonly stat: FileStat;
}

export interface ListOptions {
  /** Only names strictly greater than this (code-unit order), for cursor paging. */
  readonly after?: string;
  /** Most entries to return. */
  readonly limit: number;
  readonly signal?: AbortSignal;
}

export interface ListResult {
  /** Sorted by name (code-unit order). */
  readonly entries: readonly ListEntry[];
  /** True when more names follow the last entry. */
  readonly more: boolean;
}

export interface WalkEntry {
  /** Path relative to the walk's start, `/`-separated, no leading slash. */
  readonly relative: string;
  readonly type: 'file' | 'directory';
  readonly stat: FileStat;
  /** True for a directory with no visible children (zip needs explicit entries for them). */
  readonly empty?: boolean;
}

export interface Storage {
  /** Metadata of a file or folder. Throws FERRY_ERR_PATH_NOT_FOUND when missing, hidden or outside the root. */
  stat(path: SafePath): Promise<FileStat>;
  /** Opens a file for reading (FERRY_ERR_PATH_IS_DIRECTORY for folders). */
  open(path: SafePath): Promise<FileHandleReader>;
  /** One sorted page of a folder's visible entries; memory bounded by `limit`, not by the folder size. */
  list(dir: SafePath, options: ListOptions): Promise<ListResult>;
  /**
   * Every visible file and folder below `dir`, depth first, names sorted at each level
   * (deterministic order). Symlinks follow the jail rules.
   */
  walk(dir: SafePath, options?: { signal?: AbortSignal }): AsyncIterable<WalkEntry>;
  /**
   * Readiness probe: the root is reachable. Throws when the backend cannot serve; resolves to
   * a StorageHealth when it serves degraded (a failover store whose primary is down).
   */
  check(): Promise<StorageHealth | undefined | void>;
  /** Releases what the backend holds for the process (an object store's socket pool). Idempotent. */
  close?(): Promise<void>;
  // --- the write half ------------------------------------------------------------

  /** Where uploads gather their bytes before they become files (tus parts, PUT bodies). */
  readonly staging: Staging;
  /**
   * Makes a staged upload the file at `target`, atomically (a reader sees no file or the
   * whole file), under `mode`:
   * - `overwrite`: replaces a file that is there (never a folder, never a symbolic link);
   * - `reject` / `no-clobber`: the name must be free, else FERRY_ERR_UPLOAD_CONFLICT (409) /
   *   FERRY_ERR_PRECONDITION_FAILED (412) — also against a file created meanwhile (local:
   *   link(2) EEXIST; object store: a conditional write);
   * - `rename`: the first free of `name`, `name (1)`, `name (2)`, …
   * Missing folders on the way are created. The staged upload is gone afterwards (on success).
   */
  publish(source: StagedRef, target: SafePath, mode: PublishMode, options?: PublishOptions): Promise<PublishResult>;
  /** Removes a file. Resolves false when nothing was there. Never removes a folder. */
  remove(path: SafePath, options?: { signal?: AbortSignal }): Promise<boolean>;
  /**
   * What stands at `path`, jail aside, links not followed: for upload prechecks, which must
   * refuse to replace what the jail hides (a link out of the root, a hidden name). `other`
   * is anything neither a plain file nor a folder. undefined when nothing is there.
   */
  entryType(path: SafePath, options?: { signal?: AbortSignal }): Promise<'file' | 'directory' | 'other' | undefined>;

  /**
   * A URL a client may GET the file's bytes from directly, without credentials, for
   * `expiresInSeconds` (an object store's presigned URL; --s3-redirect). Makes no request to
   * the store. Resolves undefined when the backend should not hand one out now. Optional:
   * backends without URLs (local disk) have none.
   */
  presignGet?(path: SafePath, options: PresignGetOptions): Promise<string | undefined>;
}

/** Options of Storage.presignGet. */
export interface PresignGetOptions {
  /** How long the URL stays valid, in whole seconds. */
  readonly expiresInSeconds: number;
  /** A Content-Disposition the store is to answer with (a `?download` request). */
  readonly contentDisposition?: string;
}

/** What a backend that serves, but not at full strength, says from `check()`. */
export interface StorageHealth {
  /** The backend that is down while another one serves (`primary`). */
  readonly degraded: string;
}

/** A folder opened for writing by the local backend (LocalStorage.openFolder). */
export interface LocalFolderHandle {
  readonly relative: string;
  /** Where it was when verified (for logs only). */
  readonly real: string;
  /** A path that reaches `name` inside this very folder. */
  entry(name: string): string;
  sync(): Promise<void>;
  close(): Promise<void>;
}

// --- the write half ----------------------------------------------------------------

/**
 * What a staged upload's last commit made durable, as the backend needs it to continue: the
 * caller stores it with its own record (the tus upload record) in the same write as the
 * offset, so record and bytes never disagree after a crash. `state` is the backend's own
 * (JSON-safe; an object store keeps its multipart upload id, part count and tail there).
 */
export interface StagedCheckpoint {
  /** Bytes made durable. */
  readonly offset: number;
  readonly state?: Readonly<Record<string, string | number | boolean | null>>;
}

/** A staged upload named by the caller's id, at a checkpoint. */
export interface StagedRef {
  readonly id: string;
  /** undefined for an upload that never committed (nothing durable: an empty file). */
  readonly checkpoint: StagedCheckpoint | undefined;
}

/**
 * Staged uploads: bytes that become a file only when published. Ids are chosen by the caller
 * (letters, digits, `-`, `_`; at most 64 characters) and checked by the backend.
 */
export interface Staging {
  /**
   * Opens staged upload `id` for appending at `checkpoint` (undefined: a new, empty upload).
   * Anything stored past the checkpoint (a crash between the backend's write and the caller's
   * commit) is dropped. Fewer durable bytes than the checkpoint claims (storage that lied
   * about a sync) is FERRY_ERR_UPLOAD_OFFSET_MISMATCH with `details.durable` = what is there.
   */
  open(id: string, checkpoint: StagedCheckpoint | undefined, options?: { signal?: AbortSignal }): Promise<StagedWriter>;
  /**
   * Streams the committed bytes of an upload that takes no more writes (digests after a
   * restart, assembly): a backend may seal the upload to read it (an object store completes
   * its multipart upload); only `publish`, `concat` and `remove` may follow.
   */
  read(source: StagedRef, options?: { signal?: AbortSignal }): Promise<Readable>;
  /**
   * Makes staged `target` the concatenation of `parts` in order (tus concatenation). The parts
   * are consumed (gone afterwards); resolves the target's checkpoint. Object stores copy
   * server-side where they can.
   */
  concat(target: string, parts: readonly StagedRef[], options?: { signal?: AbortSignal }): Promise<StagedCheckpoint>;
  /** Removes a staged upload and everything it holds (an object store aborts its multipart upload). Idempotent. */
  remove(id: string, options?: { signal?: AbortSignal }): Promise<void>;
  /** Every staged upload there is, with when it was last written: the orphan sweep's input. */
  list(options?: { signal?: AbortSignal }): AsyncIterable<StagedEntry>;
}

export interface StagedEntry {
  readonly id: string;
  readonly modifiedMs: number;
}

/**
 * Appends to one staged upload. One writer per upload at a time (the caller's upload lock).
 * `write` resolves once the backend has taken the bytes (not yet durable); `commit` makes all
 * bytes written before the call durable (it may run beside later writes: they are not part of
 * its checkpoint); `rollback` forgets everything written since the last commit. A backend may
 * hold up to one part in memory (an object store's minimum part size) before it writes it.
 */
export interface StagedWriter {
  readonly id: string;
  /** Bytes written so far, committed or not (where the next write lands). */
  readonly offset: number;
  /** The last commit (or the checkpoint it was opened at). */
  readonly committed: StagedCheckpoint;
  /** Appends `buffers` (by reference: the caller does not reuse them) at `offset`. */
  write(buffers: readonly Buffer[]): Promise<void>;
  commit(): Promise<StagedCheckpoint>;
  rollback(): Promise<void>;
  /** Releases the writer; uncommitted bytes may be lost. Idempotent. */
  close(): Promise<void>;
}

export type PublishMode = 'rename' | 'reject' | 'overwrite' | 'no-clobber';

export interface PublishOptions {
  /** Called with each name before it is tried (crash recovery finds the file by it). */
  readonly beforeAttempt?: (name: string) => Promise<void>;
  readonly signal?: AbortSignal;
}

export interface PublishResult {
  /** The name the file got (differs from the asked one after `rename`). */
  readonly name: string;
  /** An existing file was replaced (`overwrite`). */
  readonly replaced: boolean;
  /** The published file's metadata (its validator is what downloads send). */
  readonly stat: FileStat;
}
