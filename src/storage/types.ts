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
  /**
   * Local path of a file for backends that have one (uploads publish by rename inside the
   * same filesystem). Does not check existence. Undefined for remote backends.
   */
  localPath?(path: SafePath): string;
  /**
   * Opens a folder to create files in, proven inside the root (missing folders created when
   * `create`), for backends on a local filesystem. Entries are reached through the opened
   * folder, never through its path again. Undefined for remote backends.
   */
  openFolder?(path: SafePath, options: { create: boolean; signal?: AbortSignal }): Promise<LocalFolderHandle>;
}

/** What a backend that serves, but not at full strength, says from `check()`. */
export interface StorageHealth {
  /** The backend that is down while another one serves (`primary`). */
  readonly degraded: string;
}

/** A folder opened for writing by a local backend (see Storage.openFolder). */
export interface LocalFolderHandle {
  readonly relative: string;
  /** Where it was when verified (for logs only). */
  readonly real: string;
  /** A path that reaches `name` inside this very folder. */
  entry(name: string): string;
  sync(): Promise<void>;
  close(): Promise<void>;
}
