/**
 * A backend that could not be built at start (its store was unreachable), built again on the
 * next call: each call first tries to build it (one attempt at a time) and fails with the
 * build's error until one succeeds. Lets a failover store start degraded on its backup and
 * take the primary back when it answers (the breaker decides when a call is made).
 */
import type { SafePath } from '../../core/safe-path.ts';
import type { FileHandleReader, FileStat, ListOptions, ListResult, Storage, WalkEntry } from '../types.ts';

export class DeferredStorage implements Storage {
  readonly #build: () => Promise<Storage>;
  #inner: Storage | undefined;
  #pending: Promise<Storage> | undefined;
  #closed = false;

  constructor(build: () => Promise<Storage>) {
    this.#build = build;
  }

  #get(): Promise<Storage> {
    if (this.#inner !== undefined) return Promise.resolve(this.#inner);
    this.#pending ??= this.#build().then(
      async (storage) => {
        this.#pending = undefined;
        // Closed while building: release what was built.
        if (this.#closed) { await storage.close?.(); throw new Error('storage closed'); }
        this.#inner = storage;
        return storage;
      },
      (err: unknown) => { this.#pending = undefined; throw err; },
    );
    return this.#pending;
  }

  async stat(path: SafePath): Promise<FileStat> { return (await this.#get()).stat(path); }
  async open(path: SafePath): Promise<FileHandleReader> { return (await this.#get()).open(path); }
  async list(dir: SafePath, options: ListOptions): Promise<ListResult> { return (await this.#get()).list(dir, options); }
  async *walk(dir: SafePath, options?: { signal?: AbortSignal }): AsyncIterable<WalkEntry> { yield* (await this.#get()).walk(dir, options); }
  async check(): Promise<void> { await (await this.#get()).check(); }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inner?.close?.();
  }
}
