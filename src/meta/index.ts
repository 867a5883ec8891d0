export type { MetaStore } from './types.ts';
export { SqliteMetaStore } from './embedded/sqlite-meta.ts';
import { SqliteMetaStore } from './embedded/sqlite-meta.ts';

/** The embedded default: SQLite in the state dir. */
export function createEmbeddedMeta(stateDir: string): Promise<SqliteMetaStore> {
  return SqliteMetaStore.create(stateDir);
}
