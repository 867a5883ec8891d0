/**
 * A backend that could not be built at start (its store was unreachable), built again on the
 * next call: each call first tries to build it (one attempt at a time) and fails with the
 * build's error until one succeeds. Lets a failover store start degraded on its backup and
 * take the primary back when it answers (the breaker decides when a call is made).
 */
import type { SafePath } from '../../core/safe-path.ts';
import type { Readable } from 'node:stream';
import type { FileHandleReader, FileStat, ListOptions, ListResult, PresignGetOptions, PublishMode, PublishOptions, PublishResult, StagedCheckpoint, StagedEntry, StagedRef, StagedWriter, Staging, Storage, WalkEntry } from '../types.ts';

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
  async presignGet(path: SafePath, options: PresignGetOptions): Promise<string | undefined> { return (await this.#get()).presignGet?.(path, options); }

  readonly staging: Staging = {
    open: async (id: string, checkpoint: StagedCheckpoint | undefined, options?: { signal?: AbortSignal }): Promise<StagedWriter> => (await this.#get()).staging.open(id, checkpoint, options),
    read: async (source: StagedRef, options?: { signal?: AbortSignal }): Promise<Readable> => (await this.#get()).staging.read(source, options),
    concat: async (target: string, parts: readonly StagedRef[], options?: { signal?: AbortSignal }): Promise<StagedCheckpoint> => (await this.#get()).staging.concat(target, parts, options),
    remove: async (id: string, options?: { signal?: AbortSignal }): Promise<void> => { await (await this.#get()).staging.remove(id, options); },
    list: (options?: { signal?: AbortSignal }): AsyncIterable<StagedEntry> => {
      const get = (): Promise<Storage> => this.#get();
      return (async function* () { yield* (await get()).staging.list(options); })();
    },
  };

  async publish(source: StagedRef, target: SafePath, mode: PublishMode, options?: PublishOptions): Promise<PublishResult> { return (await this.#get()).publish(source, target, mode, options); }
  async remove(path: SafePath, options?: { signal?: AbortSignal }): Promise<boolean> { return (await this.#get()).remove(path, options); }
  async entryType(path: SafePath, options?: { signal?: AbortSignal }): Promise<'file' | 'directory' | 'other' | undefined> { return (await this.#get()).entryType(path, options); }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#inner?.close?.();
  }
}
