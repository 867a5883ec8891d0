export type { Storage, LocalFolderHandle, FileStat, FileHandleReader, ByteRange, ListEntry, ListOptions, ListResult, OpenReadOptions, WalkEntry } from './types.ts';
export { LocalStorage, type LocalStorageOptions, type LocalFolder } from './local/local-storage.ts';
import { LocalStorage, type LocalStorageOptions } from './local/local-storage.ts';

/** The embedded default backend. */
export function createLocalStorage(options: LocalStorageOptions): Promise<LocalStorage> {
  return LocalStorage.create(options);
}
