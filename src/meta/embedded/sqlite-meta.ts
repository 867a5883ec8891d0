/**
 * Embedded MetaStore: one SQLite file in --state-dir (node:sqlite, synchronous and fast for
 * small records). WAL journal so readers never block the writer; expired rows are filtered on
 * read and swept on write.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { DatabaseSync, type StatementSync } from 'node:sqlite';
import type { MetaStore } from '../types.ts';

export class SqliteMetaStore implements MetaStore {
  readonly #db: DatabaseSync;
  readonly #get: StatementSync;
  readonly #set: StatementSync;
  readonly #insert: StatementSync;
  readonly #delete: StatementSync;
  readonly #list: StatementSync;
  readonly #sweep: StatementSync;
  readonly #count: StatementSync;
  #closed = false;
  #writes = 0;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#get = db.prepare('SELECT value FROM kv WHERE ns = ? AND key = ? AND (expires_at IS NULL OR expires_at > ?)');
    this.#set = db.prepare('INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at');
    this.#insert = db.prepare('INSERT INTO kv (ns, key, value, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (ns, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at WHERE kv.expires_at IS NOT NULL AND kv.expires_at <= ?');
    this.#delete = db.prepare('DELETE FROM kv WHERE ns = ? AND key = ?');
    this.#list = db.prepare('SELECT key, value FROM kv WHERE ns = ? AND key > ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY key LIMIT ?');
    this.#sweep = db.prepare('DELETE FROM kv WHERE expires_at IS NOT NULL AND expires_at <= ?');
    // The primary key (ns, key) makes this a range scan of the namespace's index entries.
    this.#count = db.prepare('SELECT COUNT(*) AS n FROM kv WHERE ns = ? AND (expires_at IS NULL OR expires_at > ?)');
  }

  /** Opens (creating if needed) `<stateDir>/meta.sqlite`; `':memory:'` for an in-memory store. */
  static async create(stateDir: string | ':memory:'): Promise<SqliteMetaStore> {
    let file = ':memory:';
    if (stateDir !== ':memory:') {
      mkdirSync(stateDir, { recursive: true });
      file = path.join(stateDir, 'meta.sqlite');
    }
    const db = new DatabaseSync(file);
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;');
    db.exec('CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, expires_at INTEGER, PRIMARY KEY (ns, key)) WITHOUT ROWID');
    return new SqliteMetaStore(db);
  }

  async get<T = unknown>(namespace: string, key: string): Promise<T | undefined> {
    const row = this.#get.get(namespace, key, Date.now()) as { value: string } | undefined;
    return row === undefined ? undefined : (JSON.parse(row.value) as T);
  }

  async set(namespace: string, key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<void> {
    this.#set.run(namespace, key, JSON.stringify(value), options.ttlMs === undefined ? null : Date.now() + options.ttlMs);
    this.#maybeSweep();
  }

  async setIfAbsent(namespace: string, key: string, value: unknown, options: { ttlMs?: number } = {}): Promise<boolean> {
    const now = Date.now();
    const r = this.#insert.run(namespace, key, JSON.stringify(value), options.ttlMs === undefined ? null : now + options.ttlMs, now);
    return Number(r.changes) > 0;
  }

  async delete(namespace: string, key: string): Promise<boolean> {
    return Number(this.#delete.run(namespace, key).changes) > 0;
  }

  async list<T = unknown>(namespace: string, options: { after?: string; limit?: number } = {}): Promise<Array<{ key: string; value: T }>> {
    const rows = this.#list.all(namespace, options.after ?? '', Date.now(), options.limit ?? 1000) as Array<{ key: string; value: string }>;
    return rows.map((r) => ({ key: r.key, value: JSON.parse(r.value) as T }));
  }

  async count(namespace: string): Promise<number> {
    const row = this.#count.get(namespace, Date.now()) as { n: number | bigint };
    return Number(row.n);
  }

  #maybeSweep(): void {
    if (++this.#writes % 1000 === 0) this.#sweep.run(Date.now());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  async [Symbol.asyncDispose](): Promise<void> { await this.close(); }
}
