/**
 * Small persistent records (CRC cache, upload state, task state): a namespaced key-value
 * store with optional expiry. Embedded backend: SQLite in --state-dir (node:sqlite).
 * A Redis backend will implement the same interface and pass the same conformance suite.
 */
export interface MetaStore extends AsyncDisposable {
  get<T = unknown>(namespace: string, key: string): Promise<T | undefined>;
  /** Stores a JSON-serialisable value; `ttlMs` makes it expire. */
  set(namespace: string, key: string, value: unknown, options?: { ttlMs?: number }): Promise<void>;
  delete(namespace: string, key: string): Promise<boolean>;
  /** Keys and values in a namespace, ordered by key; `after` for paging. */
  list<T = unknown>(namespace: string, options?: { after?: string; limit?: number }): Promise<Array<{ key: string; value: T }>>;
  /** Atomically sets only when absent; returns whether it set. */
  setIfAbsent(namespace: string, key: string, value: unknown, options?: { ttlMs?: number }): Promise<boolean>;
  /** How many live (not expired) keys a namespace holds; for caps, so it must not read the values. */
  count(namespace: string): Promise<number>;
  close(): Promise<void>;
}
