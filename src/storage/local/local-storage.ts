/**
 * Local-disk storage: the embedded default. Second half of the path jail:
 * hidden names are 404 unless `dotfiles: 'allow'`; an object whose real location (symlinks
 * resolved) is outside the root is 404; with `followSymlinks: 'never'` any symlink is 404.
 * Metadata is read from the same open handle the bytes come from.
 *
 * The jail holds for the object that was actually opened, not for a path looked at earlier:
 * a path is opened first (O_NONBLOCK, so a FIFO cannot hang a thread; O_NOFOLLOW with
 * `never`), then the descriptor's own location is read back from `/proc/self/fd/N` and
 * checked. A local user who swaps a folder for a symlink between a check and an open (the
 * classic TOCTOU race, nginx's `disable_symlinks` problem) therefore gets a 404, never the
 * outside file. Folders are read, and uploads are created, through the verified folder's
 * descriptor (`/proc/self/fd/N/name`), never through its path again. Where `/proc/self/fd`
 * does not exist (not Linux), each open is checked by resolving the path again and comparing
 * the (dev, inode) of what was opened: best effort, documented in docs/security.md.
 */
import { mkdir, open, opendir, readlink, realpath, stat as fsStat, lstat, unlink, type FileHandle } from 'node:fs/promises';
import { constants as fsConstants, type BigIntStats } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FerryError, errnoCode } from '../../core/errors.ts';
import { toFileStat } from './file-stat.ts';
import { parseDecodedPath, type SafePath } from '../../core/safe-path.ts';
import type { ByteRange, LocalFolderHandle, FileHandleReader, FileStat, ListEntry, ListOptions, ListResult, OpenReadOptions, Storage, WalkEntry } from '../types.ts';
import type { PublishMode, PublishOptions, PublishResult, StagedRef, Staging } from '../types.ts';
import { LocalStaging } from './local-staging.ts';
import { publishStaged, sweepPublishTemps, type WriteJournal } from './local-publish.ts';
import { mapLocalWriteError } from './write-errors.ts';

export interface LocalStorageOptions {
  /** Absolute or relative root folder; created by the caller. */
  readonly root: string;
  readonly dotfiles: 'allow' | 'deny';
  readonly followSymlinks: 'inside' | 'never';
  /**
   * Concurrent opens of the same path within this many milliseconds of the first share one
   * open file (0 = every open is its own). The handle closes as soon as its last reader
   * closes, so an aborted download still releases it at once.
   */
  readonly openFileReuseMs?: number;
  /**
   * Where staged uploads live (the server: `<state-dir>/uploads`); created at start. Without
   * it the storage takes no writes (a read-only backup).
   */
  readonly stagingDir?: string;
  /** Where a cross-filesystem publish notes its temp copy (the server's meta store). */
  readonly journal?: WriteJournal;
}

/** One open file shared by the concurrent readers of a path (see openFileReuseMs). */
interface SharedHandle {
  readonly key: string;
  readonly handle: FileHandle;
  readonly stat: FileStat;
  readonly validUntilMs: number;
  refs: number;
}

const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
/** Linux PATH_MAX: a path this long cannot be opened by name. */
const PATH_MAX = 4096;

const { O_RDONLY, O_NONBLOCK, O_DIRECTORY, O_NOFOLLOW } = fsConstants;

/** Where the kernel tells what an open descriptor is (Linux); probed once per process. */
const PROC_FD = '/proc/self/fd';
let procFdWorks: Promise<boolean> | undefined;

function probeProcFd(): Promise<boolean> {
  procFdWorks ??= (async () => {
    try {
      const fh = await open('/', O_RDONLY | O_DIRECTORY);
      try {
        return (await readlink(`${PROC_FD}/${fh.fd}`)) === '/';
      } finally {
        await fh.close();
      }
    } catch {
      return false;
    }
  })();
  return procFdWorks;
}

/**
 * A folder opened and proven inside the root. Entries are reached through the descriptor
 * (`base` is `/proc/self/fd/N` on Linux), so swapping the folder's path for a symlink after
 * the check changes nothing. Close it when done.
 */
export type LocalFolder = LocalFolderHandle;

function notFound(): FerryError {
  return new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
}

/** Maps filesystem errors on a user-supplied path to 404 (never leak which part failed). */
function mapFsError(err: unknown): unknown {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EACCES' || code === 'ENAMETOOLONG' || code === 'EINVAL' || code === 'ENXIO') return notFound();
  if (code === 'EMFILE' || code === 'ENFILE') return new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'Too many open files', { cause: err, headers: { 'retry-after': '1' } });
  return err;
}

/** What one verified open found. */
interface Verified {
  readonly handle: FileHandle;
  readonly stat: FileStat;
  readonly real: string;
}

class LocalFileReader implements FileHandleReader {
  readonly #handle: FileHandle;
  readonly #release: () => Promise<void>;
  #stat: FileStat;
  #closed = false;

  constructor(handle: FileHandle, stat: FileStat, release: () => Promise<void>) {
    this.#handle = handle;
    this.#stat = stat;
    this.#release = release;
  }

  get stat(): FileStat { return this.#stat; }

  openRead(range?: ByteRange, options: OpenReadOptions = {}): Readable {
    const start = range?.start ?? 0;
    const end = range?.end ?? this.#stat.size - 1;
    const hwm = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
    return createRangeStream(this.#handle, start, end, hwm, options.signal);
  }

  /** Positional read into the caller's buffer (no allocation): bytes read, 0 at end of file. */
  async readAt(buffer: Uint8Array, position: number): Promise<number> {
    const { bytesRead } = await this.#handle.read(buffer, 0, buffer.length, position);
    return bytesRead;
  }

  async restat(): Promise<FileStat> {
    this.#stat = toFileStat(await this.#handle.stat({ bigint: true }));
    return this.#stat;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#release();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}

/**
 * A pull-based positional reader over a shared FileHandle: reads [start, end] in chunks of
 * `hwm` bytes, only when the consumer asks (backpressure), never closes the handle.
 * Each chunk is a fresh buffer because the socket may hold it until written.
 */
function createRangeStream(handle: FileHandle, start: number, end: number, hwm: number, signal?: AbortSignal): Readable {
  let position = start;
  const stream = new Readable({
    highWaterMark: hwm,
    signal,
    read(size) {
      const remaining = end - position + 1;
      if (remaining <= 0) { this.push(null); return; }
      const want = Math.min(remaining, Math.max(size, hwm));
      const buf = Buffer.allocUnsafe(want);
      handle.read(buf, 0, want, position).then(({ bytesRead }) => {
        if (stream.destroyed) return;
        if (bytesRead === 0) {
          // The file shrank under us: fail loudly rather than send a short body as complete.
          this.destroy(new FerryError('FERRY_ERR_STORAGE_CHANGED', 'File shrank while it was being read'));
          return;
        }
        position += bytesRead;
        this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
        if (position > end) this.push(null);
      }, (err: unknown) => { this.destroy(err as Error); });
    },
  });
  return stream;
}

/** `(dev, inode)` as one key, for cycle detection. */
function identity(st: FileStat): string {
  return `${st.dev}:${st.ino}`;
}

function childOf(dir: SafePath, name: string): SafePath {
  return { segments: [...dir.segments, name], relative: dir.relative === '' ? name : `${dir.relative}/${name}`, hidden: dir.hidden || name.startsWith('.') };
}

export class LocalStorage implements Storage {
  // --- the write half (local-staging.ts, local-publish.ts) ---------------------------

  /** Staged uploads in the staging dir; refused when the storage was built without one (a read-only backup). */
  get staging(): Staging {
    return this.#staging ?? NO_STAGING;
  }

  /**
   * Publishes a staged upload at `target`, atomically, inside the folder opened (and created
   * level by level) through verified descriptors; see local-publish.ts.
   */
  async publish(source: StagedRef, target: SafePath, mode: PublishMode, options: PublishOptions = {}): Promise<PublishResult> {
    const staging = this.#requireStaging();
    const name = target.segments.at(-1);
    if (name === undefined) throw new FerryError('FERRY_ERR_PATH_INVALID', 'a file needs a name');
    if (target.hidden && this.#options.dotfiles === 'deny') throw new FerryError('FERRY_ERR_PATH_INVALID', 'names starting with "." are not accepted (--dotfiles deny)');
    const sourceFile = staging.file(source.id);
    let folder: LocalFolder;
    try {
      folder = await this.openFolder(parentOf(target), { create: true, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    } catch (err) {
      throw mapLocalWriteError(err);
    }
    try {
      return await publishStaged({
        source: sourceFile, offset: source.checkpoint?.offset, folder, name, mode,
        beforeAttempt: options.beforeAttempt, journal: this.#options.journal, signal: options.signal,
      });
    } finally {
      await folder.close();
    }
  }

  /** Unlinks a file through its verified folder; never a folder, a link or a hidden name. */
  async remove(target: SafePath, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    const name = target.segments.at(-1);
    if (name === undefined) throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'the root is a folder');
    if (target.hidden && this.#options.dotfiles === 'deny') throw notFound();
    let folder: LocalFolder;
    try {
      folder = await this.openFolder(parentOf(target), { create: false, ...(options.signal === undefined ? {} : { signal: options.signal }) });
    } catch (err) {
      if (err instanceof FerryError && (err.code === 'FERRY_ERR_PATH_NOT_FOUND' || err.code === 'FERRY_ERR_PATH_NOT_DIRECTORY')) return false;
      throw err;
    }
    try {
      const entry = folder.entry(name);
      const st = await lstat(entry).catch((err: unknown) => { if (errnoCode(err) === 'ENOENT') return undefined; throw err; });
      if (st === undefined) return false;
      if (st.isDirectory()) throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', `"${target.relative}" is a folder; folders are never removed`);
      if (!st.isFile()) throw notFound();
      try {
        await unlink(entry);
      } catch (err) {
        if (errnoCode(err) === 'ENOENT') return false;
        throw err;
      }
      await folder.sync();
      return true;
    } finally {
      await folder.close();
    }
  }

  /**
   * What stands at `p`: through the jail first (a link inside the root counts as what it
   * points to); something the jail hides (a link out of the root, a hidden name, a FIFO) is
   * `other`, so an upload never replaces it. By path: for prechecks only, publishing decides
   * again through the verified folder.
   */
  async entryType(p: SafePath, _options?: { signal?: AbortSignal }): Promise<'file' | 'directory' | 'other' | undefined> {
    try {
      return (await this.stat(p)).type;
    } catch (err) {
      if (!(err instanceof FerryError) || err.code !== 'FERRY_ERR_PATH_NOT_FOUND') throw err;
    }
    try {
      await lstat(this.localPath(p));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return undefined;
    }
    return 'other';
  }

  /**
   * Removes the cross-filesystem temp copies a killed process left in target folders (noted in
   * the journal); 0 without a journal. The upload sweeper calls it through
   * `sweepWriteLeftovers`.
   */
  async sweepWriteLeftovers(nowMs = Date.now()): Promise<number> {
    const journal = this.#options.journal;
    if (journal === undefined) return 0;
    return sweepPublishTemps((relative) => this.openFolder(parseDecodedPath(relative), { create: false }), journal, nowMs);
  }

  #requireStaging(): LocalStaging {
    if (this.#staging === undefined) throw noStaging();
    return this.#staging;
  }

  readonly #root: string;
  readonly #options: LocalStorageOptions;
  readonly #shared = new Map<string, SharedHandle>();
  /** Opens are verified through /proc/self/fd (race-free) rather than by resolving the path again. */
  readonly #proc: boolean;

  readonly #staging: LocalStaging | undefined;

  private constructor(realRoot: string, options: LocalStorageOptions, proc: boolean, staging: LocalStaging | undefined) {
    this.#staging = staging;
    this.#root = realRoot;
    this.#options = options;
    this.#proc = proc;
  }

  /** Resolves the root's real path once and probes /proc/self/fd (no I/O in constructors). */
  static async create(options: LocalStorageOptions): Promise<LocalStorage> {
    const realRoot = await realpath(options.root);
    const staging = options.stagingDir === undefined ? undefined : await LocalStaging.create(options.stagingDir);
    return new LocalStorage(realRoot, { ...options }, await probeProcFd(), staging);
  }

  get root(): string { return this.#root; }

  /**
   * How an opened object is proven inside the root: `descriptor` (its location read back from
   * /proc/self/fd; immune to path swaps) or `path` (resolved again and compared by inode; best
   * effort, where /proc is missing).
   */
  get verification(): 'descriptor' | 'path' { return this.#proc ? 'descriptor' : 'path'; }

  /** Where a path would be on disk, for messages and prechecks only: never open by it. */
  localPath(p: SafePath): string {
    return path.join(this.#root, ...p.segments);
  }

  /** The jail's rule for an object found at `real`, asked for as `joined` (pure). */
  #allowed(real: string, joined: string): boolean {
    if (real !== this.#root && !real.startsWith(this.#root + path.sep)) return false;
    if (this.#options.followSymlinks === 'never' && real !== joined) return false;
    // A symlink that lands on a hidden name inside the root is still hidden.
    if (this.#options.dotfiles === 'deny' && real !== this.#root) {
      const rel = real.slice(this.#root.length + 1);
      if (rel.split(path.sep).some((s) => s.startsWith('.'))) return false;
    }
    return true;
  }

  /**
   * Opens `target` (a path, or `/proc/self/fd/N/name` below a verified folder) and proves that
   * the object actually opened is allowed; `joined` is where the request said it is. Only
   * regular files and folders are ever opened for a client (a FIFO, socket or device is 404).
   * `'missing'` when nothing is at `target`.
   */
  async #openAt(target: string, joined: string): Promise<Verified | 'missing'> {
    let flags = O_RDONLY | O_NONBLOCK;
    if (this.#options.followSymlinks === 'never') flags |= O_NOFOLLOW;
    let handle: FileHandle;
    try {
      handle = await open(target, flags);
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return 'missing';
      throw mapFsError(err);
    }
    try {
      const st = await handle.stat({ bigint: true });
      if (!st.isFile() && !st.isDirectory()) throw notFound();
      const real = await this.#whereIs(handle, st, target);
      if (real === undefined || !this.#allowed(real, joined)) throw notFound();
      return { handle, stat: toFileStat(st), real };
    } catch (err) {
      await handle.close().catch(() => {});
      throw mapFsError(err);
    }
  }

  /** Where the object behind `handle` is now, or undefined when it has no name any more. */
  async #whereIs(handle: FileHandle, st: BigIntStats, target: string): Promise<string | undefined> {
    if (this.#proc) {
      const real = await readlink(`${PROC_FD}/${handle.fd}`);
      // Deleted since it was opened: reads back as "… (deleted)", and there is nothing to serve.
      return st.nlink === 0n ? undefined : real;
    }
    const real = await realpath(target);
    const again = await fsStat(real, { bigint: true });
    return again.dev === st.dev && again.ino === st.ino ? real : undefined;
  }

  /** Opens a SafePath through the jail: 404 when missing, hidden or not allowed. */
  async #openPath(p: SafePath): Promise<Verified> {
    if (p.hidden && this.#options.dotfiles === 'deny') throw notFound();
    const joined = this.localPath(p);
    const v = await this.#openAt(joined, joined);
    if (v === 'missing') throw notFound();
    return v;
  }

  /** A path that reaches entries of an opened folder through its descriptor. */
  #base(v: Verified): string {
    return this.#proc ? `${PROC_FD}/${v.handle.fd}` : v.real;
  }

  async stat(p: SafePath): Promise<FileStat> {
    const v = await this.#openPath(p);
    await v.handle.close();
    return v.stat;
  }

  /**
   * Opens a file. With `openFileReuseMs`, concurrent requests for one path (64 download
   * managers' ranges on one ISO) share one open file for a short window instead of each
   * paying open + fstat + close: the nginx `open_file_cache` idea, but a handle is never kept
   * open without a reader, so deleted files free their space at once.
   * Within the window a replaced file is seen at the next window (as with nginx).
   */
  async open(p: SafePath): Promise<FileHandleReader> {
    if (p.hidden && this.#options.dotfiles === 'deny') throw notFound();
    const reuseMs = this.#options.openFileReuseMs ?? 0;
    if (reuseMs > 0) {
      const hit = this.#shared.get(p.relative);
      if (hit !== undefined && performance.now() < hit.validUntilMs) {
        hit.refs++;
        return new LocalFileReader(hit.handle, hit.stat, () => this.#releaseShared(hit));
      }
    }
    const { handle, stat } = await this.#openFile(p);
    if (reuseMs <= 0) return new LocalFileReader(handle, stat, () => handle.close());
    const entry: SharedHandle = { key: p.relative, handle, stat, validUntilMs: performance.now() + reuseMs, refs: 1 };
    // An expired entry it replaces stays open until its own readers close it.
    this.#shared.set(p.relative, entry);
    return new LocalFileReader(handle, stat, () => this.#releaseShared(entry));
  }

  async #releaseShared(entry: SharedHandle): Promise<void> {
    if (--entry.refs > 0) return;
    if (this.#shared.get(entry.key) === entry) this.#shared.delete(entry.key);
    await entry.handle.close();
  }

  async #openFile(p: SafePath): Promise<{ handle: FileHandle; stat: FileStat }> {
    const v = await this.#openPath(p);
    if (v.stat.type === 'directory') {
      await v.handle.close();
      throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'Path is a folder');
    }
    return { handle: v.handle, stat: v.stat };
  }

  /** Opens a folder through the jail (FERRY_ERR_PATH_NOT_DIRECTORY for a file). */
  async #openDirectory(p: SafePath): Promise<Verified> {
    const v = await this.#openPath(p);
    if (v.stat.type !== 'directory') {
      await v.handle.close();
      throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', 'Path is not a folder');
    }
    return v;
  }

  /**
   * One page of a folder, sorted by name. Streams the directory with opendir and keeps only
   * the `limit` smallest names above the cursor (a bounded max-heap), so memory is O(limit)
   * whatever the folder's size, and paging stays correct while files come and go.
   */
  async list(dir: SafePath, options: ListOptions): Promise<ListResult> {
    const folder = await this.#openDirectory(dir);
    try {
      const base = this.#base(folder);
      const limit = options.limit;
      const entries: ListEntry[] = [];
      let cursor = options.after;
      // Names that turn out not to be listable (vanished, dangling or out-of-root links) are
      // skipped; another pass fills the page, so a page is short only at the end.
      for (;;) {
        const need = limit - entries.length;
        const { names, links } = await this.#smallestNames(base, cursor, need + 1, options.signal);
        for (let i = 0; i < names.length; i++) {
          if (entries.length === limit) return { entries, more: true };
          entries.push(...await this.#statNames(dir, base, [names[i]!], links));
        }
        if (names.length < need + 1) return { entries, more: false };
        if (entries.length === limit) return { entries, more: true };
        cursor = names.at(-1);
      }
    } finally {
      await folder.handle.close();
    }
  }

  /**
   * The `count` smallest visible names above `after`, sorted. Streams the directory with
   * opendir and keeps a bounded max-heap, so memory is O(count) whatever the folder's size.
   */
  async #smallestNames(base: string, after: string | undefined, count: number, signal?: AbortSignal): Promise<{ names: string[]; links: Set<string> }> {
    let d;
    try {
      d = await opendir(base, { bufferSize: 1024 });
    } catch (err) {
      throw mapFsError(err);
    }
    const heap = new MaxNameHeap();
    const links = new Set<string>();
    for await (const ent of d) {
      signal?.throwIfAborted();
      const name = ent.name;
      if (this.#options.dotfiles === 'deny' && name.startsWith('.')) continue;
      if (after !== undefined && !(name > after)) continue;
      if (heap.size < count) heap.push(name);
      else if (name < heap.peek()!) { links.delete(heap.pop()!); heap.push(name); }
      else continue;
      if (ent.isSymbolicLink()) links.add(name);
    }
    return { names: heap.drainSorted(), links };
  }

  /**
   * Every visible file and folder below `dir`, depth first, names sorted at each level.
   * Iterative (an explicit stack, not nested generators), so a deep tree costs linear work,
   * and each folder is opened through the jail as it is reached, so one swapped for a symlink
   * meanwhile is skipped, never followed out. `ancestors` holds the (dev, ino) of the folders
   * on the current path: a symlink that leads back into one of them is a cycle, not followed.
   */
  async *walk(dir: SafePath, options: { signal?: AbortSignal } = {}): AsyncGenerator<WalkEntry> {
    const signal = options.signal;
    const top = await this.#readFolder(dir, signal);
    interface Frame { readonly dir: SafePath; readonly prefix: string; readonly entries: readonly ListEntry[]; next: number; readonly id: string }
    const ancestors = new Set<string>([identity(top.stat)]);
    const stack: Frame[] = [{ dir, prefix: '', entries: top.entries, next: 0, id: identity(top.stat) }];
    while (stack.length > 0) {
      const frame = stack[stack.length - 1]!;
      if (frame.next >= frame.entries.length) {
        stack.pop();
        ancestors.delete(frame.id);
        continue;
      }
      signal?.throwIfAborted();
      const e = frame.entries[frame.next++]!;
      const rel = frame.prefix === '' ? e.name : `${frame.prefix}/${e.name}`;
      if (e.type !== 'directory') {
        yield { relative: rel, type: 'file', stat: e.stat };
        continue;
      }
      const id = identity(e.stat);
      if (ancestors.has(id)) continue;
      const child = childOf(frame.dir, e.name);
      if (Buffer.byteLength(this.localPath(child)) >= PATH_MAX) {
        throw new FerryError('FERRY_ERR_PATH_INVALID', `"${child.relative.slice(0, 200)}…" is nested too deep to be read (over ${PATH_MAX} bytes)`);
      }
      let children: readonly ListEntry[];
      try {
        children = (await this.#readFolder(child, signal)).entries;
      } catch (err) {
        // Vanished, or no longer allowed (swapped for a link out of the root): not walked.
        if (err instanceof FerryError && (err.code === 'FERRY_ERR_PATH_NOT_FOUND' || err.code === 'FERRY_ERR_PATH_NOT_DIRECTORY')) continue;
        throw err;
      }
      yield { relative: rel, type: 'directory', stat: e.stat, empty: children.length === 0 };
      ancestors.add(id);
      stack.push({ dir: child, prefix: rel, entries: children, next: 0, id });
    }
  }

  /** A folder's own stat and every visible entry, sorted, jail applied to each. */
  async #readFolder(dir: SafePath, signal?: AbortSignal): Promise<{ stat: FileStat; entries: ListEntry[] }> {
    const folder = await this.#openDirectory(dir);
    try {
      const base = this.#base(folder);
      const { names, links } = await this.#smallestNames(base, undefined, Number.POSITIVE_INFINITY, signal);
      return { stat: folder.stat, entries: await this.#statNames(dir, base, names, links) };
    } finally {
      await folder.handle.close();
    }
  }

  /**
   * Stats names of a folder opened at `base`. Plain entries are looked at through the folder's
   * descriptor without following links (they are inside by construction); a symlink, or an
   * entry that became one since it was listed, gets the full jail check.
   */
  async #statNames(dir: SafePath, base: string, names: readonly string[], links: ReadonlySet<string>): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    for (const name of names) {
      try {
        let st: FileStat;
        const lst = links.has(name) ? undefined : await lstat(`${base}/${name}`, { bigint: true });
        if (lst === undefined || lst.isSymbolicLink()) {
          st = await this.stat(childOf(dir, name));
        } else if (lst.isFile() || lst.isDirectory()) {
          st = toFileStat(lst);
        } else {
          continue; // FIFOs, sockets, devices: never served, not listed.
        }
        entries.push({ name, type: st.type, stat: st });
      } catch {
        // Vanished, dangling, or a link out of the root: not listed.
      }
    }
    return entries;
  }

  /**
   * Opens the folder `p` to create files in, proven inside the root. Missing folders are
   * created one level at a time, each inside the verified descriptor of its parent and
   * verified in turn, so a path swapped for a symlink meanwhile cannot redirect a write.
   * Linear in the depth. Close the folder when done.
   */
  async openFolder(p: SafePath, options: { create: boolean; signal?: AbortSignal }): Promise<LocalFolder> {
    if (p.hidden && this.#options.dotfiles === 'deny') throw notFound();
    const root = await this.#openAt(this.#root, this.#root);
    if (root === 'missing') throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'Storage root is not reachable');
    let current: Verified = root;
    try {
      let joined = this.#root;
      for (let i = 0; i < p.segments.length; i++) {
        options.signal?.throwIfAborted();
        const name = p.segments[i]!;
        joined = `${joined}${path.sep}${name}`;
        const at = `${this.#base(current)}/${name}`;
        let next = await this.#openAt(at, joined);
        if (next === 'missing') {
          if (!options.create) throw notFound();
          try {
            await mkdir(at);
          } catch (err) {
            if (errnoCode(err) !== 'EEXIST') throw err;
          }
          next = await this.#openAt(at, joined);
          if (next === 'missing') throw notFound();
        }
        const opened: Verified = next;
        await current.handle.close();
        current = opened;
        if (current.stat.type !== 'directory') {
          throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', `"${p.segments.slice(0, i + 1).join('/')}" is not a folder`);
        }
      }
    } catch (err) {
      await current.handle.close().catch(() => {});
      throw err;
    }
    return this.#folder(p.relative, current);
  }

  #folder(relative: string, v: Verified): LocalFolder {
    const base = this.#base(v);
    let closed = false;
    return {
      relative,
      real: v.real,
      entry: (name) => `${base}/${name}`,
      async sync() {
        try {
          await v.handle.sync();
        } catch (err) {
          // Some filesystems refuse fsync on directories (EINVAL); the entry is then as durable as it gets.
          if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'EBADF') throw err;
        }
      },
      async close() {
        if (closed) return;
        closed = true;
        await v.handle.close();
      },
    };
  }

  async check(): Promise<void> {
    try {
      await lstat(this.#root);
    } catch (err) {
      throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'Storage root is not reachable', { cause: err });
    }
  }
}

/** A binary max-heap of strings (code-unit order). */
class MaxNameHeap {
  readonly #a: string[] = [];
  get size(): number { return this.#a.length; }
  peek(): string | undefined { return this.#a[0]; }
  push(v: string): void {
    const a = this.#a;
    a.push(v);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (a[p]! >= a[i]!) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): string | undefined {
    const a = this.#a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && a[l]! > a[m]!) m = l;
        if (r < a.length && a[r]! > a[m]!) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
  drainSorted(): string[] {
    return [...this.#a].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0));
  }
}

function noStaging(): FerryError {
  return new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'this storage takes no uploads (built without a staging dir)');
}

/** The staging of a storage built without a staging dir: refuses everything, lists nothing. */
const NO_STAGING: Staging = {
  open: () => Promise.reject(noStaging()),
  read: () => Promise.reject(noStaging()),
  concat: () => Promise.reject(noStaging()),
  remove: () => Promise.reject(noStaging()),
  list: () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.resolve({ done: true as const, value: undefined }) }) }),
};

function parentOf(p: SafePath): SafePath {
  const segments = p.segments.slice(0, -1);
  return { segments, relative: segments.join('/'), hidden: segments.some((s) => s.startsWith('.')) };
}
