/**
 * Where an upload lands (issue 4 §4, §5): the checks before any byte is received, and the
 * error mapping of the write path. Publishing itself is `storage.publish` (src/storage): atomic,
 * under the conflict policy, inside the jail (local disk: link/rename into the folder opened
 * through verified descriptors, a journalled copy across filesystems).
 *
 * Target: the folder and name go through the same path jail as downloads: `parseDecodedPath`
 * (no `..`, `.`, NUL, backslashes), then the storage's half (symlinks resolving outside the
 * root, hidden names), which `storage.entryType` reports as `other` so that an upload never
 * replaces what the jail hides.
 */
import { FerryError, errnoCode } from '../core/errors.ts';
import { parseDecodedPath, type SafePath } from '../core/safe-path.ts';
import type { Storage } from '../storage/index.ts';

export type ConflictPolicy = 'rename' | 'reject' | 'overwrite';

export interface TargetFolder {
  readonly folder: SafePath;
}

/** Joins a folder and a name into the file's SafePath. */
export function childPath(folder: SafePath, name: string): SafePath {
  return {
    segments: [...folder.segments, name],
    relative: folder.relative === '' ? name : `${folder.relative}/${name}`,
    hidden: folder.hidden || name.startsWith('.'),
  };
}

/** Validates a file name for the jail (one segment, not hidden unless dotfiles are allowed). */
export function checkName(name: string, dotfiles: 'allow' | 'deny'): void {
  const p = parseDecodedPath(name);
  if (p.segments.length !== 1) throw new FerryError('FERRY_ERR_PATH_INVALID', 'a file name must be a single path segment');
  if (p.hidden && dotfiles === 'deny') throw new FerryError('FERRY_ERR_PATH_INVALID', 'names starting with "." are not accepted (--dotfiles deny)');
}

/**
 * Checks a target folder without creating anything: every existing prefix must be a folder
 * inside the root (storage jail); the first missing one and all below it will be created at
 * publish time.
 */
export async function checkTargetFolder(storage: Storage, folderText: string, dotfiles: 'allow' | 'deny'): Promise<SafePath> {
  const folder = parseDecodedPath(folderText);
  if (folder.hidden && dotfiles === 'deny') throw new FerryError('FERRY_ERR_PATH_INVALID', 'folders starting with "." are not accepted (--dotfiles deny)');
  for (let i = 1; i <= folder.segments.length; i++) {
    const prefix = parseDecodedPath(folder.segments.slice(0, i).join('/'));
    const type = await storage.entryType(prefix);
    if (type === undefined) break;
    // Something is there that the jail hides (a link out of the root, a hidden name): 404, as for reads.
    if (type === 'other') throw new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
    if (type !== 'directory') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', `"${prefix.relative}" is not a folder`);
  }
  return folder;
}

/**
 * Does anything at all stand at `folder/name` (a file, a folder, or what the jail hides)? For
 * prechecks only; publishing decides again.
 */
export async function entryExists(storage: Storage, folder: SafePath, name: string): Promise<boolean> {
  return (await storage.entryType(childPath(folder, name))) !== undefined;
}

/** ENOSPC/EDQUOT → 507 (the upload stays resumable), ENAMETOOLONG → 400; other errors pass through. */
export function mapWriteError(err: unknown): unknown {
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
    return new FerryError('FERRY_ERR_STORAGE_FULL', code === 'EFBIG' ? 'the file is larger than the filesystem allows' : 'no space left on the server; retry once space is freed', { cause: err });
  }
  if (code === 'ENAMETOOLONG') {
    return new FerryError('FERRY_ERR_PATH_INVALID', 'the name or path is longer than the filesystem allows', { cause: err });
  }
  if (err instanceof Error && /SQLITE_FULL|database or disk is full/i.test(err.message)) {
    return new FerryError('FERRY_ERR_STORAGE_FULL', 'no space left for the upload state; retry once space is freed', { cause: err });
  }
  return err;
}

export function isStorageFull(err: unknown): boolean {
  const mapped = mapWriteError(err);
  return mapped instanceof FerryError && mapped.code === 'FERRY_ERR_STORAGE_FULL';
}
