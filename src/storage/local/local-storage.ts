/**
 * Local-disk storage: the embedded default. Second half of the path jail (SPEC §2):
 * hidden names are 404 unless `dotfiles: 'allow'`; a path whose real location (symlinks
 * resolved) is outside the root is 404; with `followSymlinks: 'never'` any symlink is 404.
 * Metadata is read from the same open handle the bytes come from.
 */
import { open, opendir, realpath, stat as fsStat, lstat, type FileHandle } from 'node:fs/promises';
import type { BigIntStats } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FerryError, errnoCode } from '../../core/errors.ts';
import type { SafePath } from '../../core/safe-path.ts';
import type { ByteRange, FileHandleReader, FileStat, ListEntry, ListOptions, ListResult, OpenReadOptions, Storage, WalkEntry } from '../types.ts';

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

function toFileStat(st: BigIntStats): FileStat {
  return {
    type: st.isDirectory() ? 'directory' : 'file',
    size: Number(st.size),
    mtimeMs: Number(st.mtimeNs / 1_000_000n),
    mtimeNs: st.mtimeNs,
    ino: st.ino,
    dev: st.dev,
    mode: Number(st.mode),
  };
}

function notFound(): FerryError {
  return new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
}

/** Maps filesystem errors on a user-supplied path to 404 (never leak which part failed). */
function mapFsError(err: unknown): unknown {
  const code = errnoCode(err);
  if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP' || code === 'EACCES' || code === 'ENAMETOOLONG' || code === 'EINVAL') return notFound();
  return err;
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

export class LocalStorage implements Storage {
  readonly #root: string;
  readonly #options: LocalStorageOptions;
  readonly #shared = new Map<string, SharedHandle>();

  private constructor(realRoot: string, options: LocalStorageOptions) {
    this.#root = realRoot;
    this.#options = options;
  }

  /** Resolves the root's real path once (no I/O in constructors). */
  static async create(options: LocalStorageOptions): Promise<LocalStorage> {
    const realRoot = await realpath(options.root);
    return new LocalStorage(realRoot, { ...options });
  }

  get root(): string { return this.#root; }

  localPath(p: SafePath): string {
    return path.join(this.#root, ...p.segments);
  }

  /** Resolves a SafePath to a real path inside the root, applying the jail rules, or throws 404. */
  async #resolve(p: SafePath): Promise<string> {
    if (p.hidden && this.#options.dotfiles === 'deny') throw notFound();
    const joined = path.join(this.#root, ...p.segments);
    let real: string;
    try {
      real = await realpath(joined);
    } catch (err) {
      throw mapFsError(err);
    }
    if (real !== this.#root && !real.startsWith(this.#root + path.sep)) throw notFound();
    if (this.#options.followSymlinks === 'never' && real !== joined) throw notFound();
    // A symlink that lands on a hidden name inside the root is still hidden.
    if (this.#options.dotfiles === 'deny' && real !== this.#root) {
      const rel = real.slice(this.#root.length + 1);
      if (rel.split(path.sep).some((s) => s.startsWith('.'))) throw notFound();
    }
    return real;
  }

  async stat(p: SafePath): Promise<FileStat> {
    const real = await this.#resolve(p);
    try {
      return toFileStat(await fsStat(real, { bigint: true }));
    } catch (err) {
      throw mapFsError(err);
    }
  }

  /**
   * Opens a file. With `openFileReuseMs`, concurrent requests for one path (64 download
   * managers' ranges on one ISO) share one open file for a short window instead of each
   * paying realpath + open + fstat + close: the nginx `open_file_cache` idea, but a handle
   * is never kept open without a reader, so deleted files free their space at once.
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
    const { handle, stat } = await this.#openFresh(p);
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

  async #openFresh(p: SafePath): Promise<{ handle: FileHandle; stat: FileStat }> {
    const real = await this.#resolve(p);
    let handle: FileHandle;
    try {
      handle = await open(real, 'r');
    } catch (err) {
      if (errnoCode(err) === 'EISDIR') throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'Path is a folder');
      if (errnoCode(err) === 'EMFILE' || errnoCode(err) === 'ENFILE') throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'Too many open files', { cause: err, headers: { 'retry-after': '1' } });
      throw mapFsError(err);
    }
    try {
      const stat = toFileStat(await handle.stat({ bigint: true }));
      if (stat.type === 'directory') throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'Path is a folder');
      return { handle, stat };
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * One page of a folder, sorted by name. Streams the directory with opendir and keeps only
   * the `limit` smallest names above the cursor (a bounded max-heap), so memory is O(limit)
   * whatever the folder's size, and paging stays correct while files come and go.
   */
  async list(dir: SafePath, options: ListOptions): Promise<ListResult> {
    const real = await this.#resolve(dir);
    const limit = options.limit;
    const entries: ListEntry[] = [];
    let cursor = options.after;
    // Names that turn out not to be listable (vanished, dangling or out-of-root links) are
    // skipped; another pass fills the page, so a page is short only at the end.
    for (;;) {
      const need = limit - entries.length;
      const { names, links } = await this.#smallestNames(real, cursor, need + 1, options.signal);
      for (let i = 0; i < names.length; i++) {
        if (entries.length === limit) return { entries, more: true };
        entries.push(...await this.#statNames(dir, real, [names[i]!], links));
      }
      if (names.length < need + 1) return { entries, more: false };
      if (entries.length === limit) return { entries, more: true };
      cursor = names.at(-1);
    }
  }

  /**
   * The `count` smallest visible names above `after`, sorted. Streams the directory with
   * opendir and keeps a bounded max-heap, so memory is O(count) whatever the folder's size.
   */
  async #smallestNames(real: string, after: string | undefined, count: number, signal?: AbortSignal): Promise<{ names: string[]; links: Set<string> }> {
    let d;
    try {
      d = await opendir(real, { bufferSize: 1024 });
    } catch (err) {
      if (errnoCode(err) === 'ENOTDIR') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', 'Path is not a folder');
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

  async *walk(dir: SafePath, options: { signal?: AbortSignal } = {}): AsyncGenerator<WalkEntry> {
    const real = await this.#resolve(dir);
    const top = toFileStat(await fsStat(real, { bigint: true }));
    if (top.type !== 'directory') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', 'Path is not a folder');
    const children = await this.#readAll(dir, options.signal);
    yield* this.#walkDir(dir, '', children, new Set([`${top.dev}:${top.ino}`]), options.signal);
  }

  /**
   * Depth first, names sorted at each level. Each folder is read once (the caller, a zip
   * plan, holds every entry anyway). `ancestors` holds the (dev, ino) of the folders on the
   * current path: a symlink that leads back into one of them is a cycle and is not followed.
   */
  async *#walkDir(dir: SafePath, prefix: string, entries: readonly ListEntry[], ancestors: Set<string>, signal?: AbortSignal): AsyncGenerator<WalkEntry> {
    for (const e of entries) {
      signal?.throwIfAborted();
      const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
      if (e.type !== 'directory') {
        yield { relative: rel, type: 'file', stat: e.stat };
        continue;
      }
      const id = `${e.stat.dev}:${e.stat.ino}`;
      if (ancestors.has(id)) continue;
      const child: SafePath = { segments: [...dir.segments, e.name], relative: dir.relative === '' ? e.name : `${dir.relative}/${e.name}`, hidden: dir.hidden || e.name.startsWith('.') };
      const grandchildren = await this.#readAll(child, signal);
      yield { relative: rel, type: 'directory', stat: e.stat, empty: grandchildren.length === 0 };
      ancestors.add(id);
      try {
        yield* this.#walkDir(child, rel, grandchildren, ancestors, signal);
      } finally {
        ancestors.delete(id);
      }
    }
  }

  /** Every visible entry of one folder, sorted, jail applied to symlinks. */
  async #readAll(dir: SafePath, signal?: AbortSignal): Promise<ListEntry[]> {
    const real = await this.#resolve(dir);
    const { names, links } = await this.#smallestNames(real, undefined, Number.POSITIVE_INFINITY, signal);
    return this.#statNames(dir, real, names, links);
  }

  async #statNames(dir: SafePath, real: string, names: readonly string[], links: ReadonlySet<string>): Promise<ListEntry[]> {
    const entries: ListEntry[] = [];
    for (const name of names) {
      try {
        let st: FileStat;
        if (links.has(name)) {
          // Only symlinks need the full jail check; plain entries of a jailed folder are inside.
          const child: SafePath = { segments: [...dir.segments, name], relative: dir.relative === '' ? name : `${dir.relative}/${name}`, hidden: dir.hidden || name.startsWith('.') };
          st = await this.stat(child);
        } else {
          st = toFileStat(await fsStat(path.join(real, name), { bigint: true }));
        }
        entries.push({ name, type: st.type, stat: st });
      } catch {
        // Vanished, dangling, or a link out of the root: not listed.
      }
    }
    return entries;
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
