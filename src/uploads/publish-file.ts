/**
 * Where an upload lands and how it gets there (issue 4 §4, §5).
 *
 * Target: the folder and name go through the same path jail as downloads: `parseDecodedPath`
 * (no `..`, `.`, NUL, backslashes), then the storage's half (symlinks resolving outside the
 * root, hidden names) via `storage.stat`; missing folders are created one segment at a time
 * below a folder that is already known to be inside the root.
 *
 * Publish: atomic. The finished data file is hard-linked under its name (`link(2)` fails with
 * EEXIST, so a file that appeared meanwhile is never clobbered), or renamed over the name when
 * overwriting is wanted. Either way a reader sees no file or the whole file. When the state dir
 * and the target are on different filesystems (EXDEV), the data is first copied to a hidden temp
 * file inside the target folder, made durable, and published from there.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, lstat, mkdir, open, realpath, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { FerryError, errnoCode } from '../core/errors.ts';
import { parseDecodedPath, type SafePath } from '../core/safe-path.ts';
import type { Storage } from '../storage/index.ts';
import { conflictName } from './conflict-name.ts';

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

function requireLocal(storage: Storage): (p: SafePath) => string {
  const lp = storage.localPath?.bind(storage);
  if (lp === undefined) throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'this storage backend does not accept uploads');
  return lp;
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
  const localPath = requireLocal(storage);
  for (let i = 1; i <= folder.segments.length; i++) {
    const prefix = parseDecodedPath(folder.segments.slice(0, i).join('/'));
    const st = await statOrMissing(storage, localPath, prefix);
    if (st === 'missing') break;
    if (st !== 'directory') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', `"${prefix.relative}" is not a folder`);
  }
  return folder;
}

/** 'missing' only when nothing at all is there; a name the jail refuses is 404. */
async function statOrMissing(storage: Storage, localPath: (p: SafePath) => string, p: SafePath): Promise<'file' | 'directory' | 'missing'> {
  try {
    return (await storage.stat(p)).type;
  } catch (err) {
    if (!(err instanceof FerryError) || err.code !== 'FERRY_ERR_PATH_NOT_FOUND') throw err;
    try {
      await lstat(localPath(p));
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return 'missing';
      throw err;
    }
    // Something is there that the jail hides (a link out of the root, a hidden name).
    throw err;
  }
}

/**
 * Creates the folder (and missing parents) and returns its real path, proven inside the root.
 */
export async function ensureTargetFolder(storage: Storage, folder: SafePath): Promise<string> {
  const localPath = requireLocal(storage);
  const root = await realpath(localPath(parseDecodedPath('')));
  for (let i = 1; i <= folder.segments.length; i++) {
    const prefix = parseDecodedPath(folder.segments.slice(0, i).join('/'));
    const st = await statOrMissing(storage, localPath, prefix);
    if (st === 'file') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', `"${prefix.relative}" is not a folder`);
    if (st === 'missing') {
      try {
        await mkdir(localPath(prefix));
      } catch (err) {
        if (errnoCode(err) !== 'EEXIST') throw mapWriteError(err);
      }
      // Re-check through the jail: what now exists there must be a folder inside the root.
      const again = await storage.stat(prefix);
      if (again.type !== 'directory') throw new FerryError('FERRY_ERR_PATH_NOT_DIRECTORY', `"${prefix.relative}" is not a folder`);
    }
  }
  const real = await realpath(localPath(folder));
  if (real !== root && !real.startsWith(root + path.sep)) throw new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
  return real;
}

/** Does a name exist in the folder (any type, links not followed)? */
export async function nameExists(folderReal: string, name: string): Promise<boolean> {
  try {
    await lstat(path.join(folderReal, name));
    return true;
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return false;
    throw err;
  }
}

export type PublishMode = ConflictPolicy | 'no-clobber';

export interface PublishResult {
  /** The name the file got (differs from the asked name after `rename`). */
  readonly name: string;
  /** An existing file was replaced (overwrite). */
  readonly replaced: boolean;
}

export interface PublishOptions {
  /** Called with each name before it is tried (crash recovery finds the file by it). */
  readonly beforeAttempt?: (name: string) => Promise<void>;
}

const MAX_RENAME_ATTEMPTS = 10_000;

/**
 * Moves `source` (a complete, fsynced file) to `folderReal/name` atomically under `mode`:
 * - `overwrite`: rename over whatever file is there (never over a folder).
 * - `reject` / `no-clobber`: the name must be free, else 409 / 412.
 * - `rename`: first free of `name`, `name (1)`, `name (2)`, …
 * `source` is gone afterwards. The folder entry is fsynced.
 */
export async function publishFile(source: string, folderReal: string, name: string, mode: PublishMode, options: PublishOptions = {}): Promise<PublishResult> {
  let src = source;
  let copied = false;
  try {
    for (let n = 0; n < MAX_RENAME_ATTEMPTS; n++) {
      const candidate = conflictName(name, n);
      const dest = path.join(folderReal, candidate);
      await options.beforeAttempt?.(candidate);
      try {
        if (mode === 'overwrite') {
          const existed = await existingType(dest);
          if (existed === 'directory') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a folder`);
          await rename(src, dest);
          await fsyncDir(folderReal);
          return { name: candidate, replaced: existed === 'file' };
        }
        await link(src, dest);
        await unlink(src);
        await fsyncDir(folderReal);
        return { name: candidate, replaced: false };
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EXDEV' && !copied) {
          // Different filesystems: copy next to the target once, then publish from there.
          src = await copyBeside(source, folderReal);
          copied = true;
          n--;
          continue;
        }
        if (code === 'EEXIST') {
          if (mode === 'rename') continue;
          if (mode === 'no-clobber') throw new FerryError('FERRY_ERR_PRECONDITION_FAILED', `"${candidate}" exists (If-None-Match: *)`);
          throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" exists (--on-conflict reject)`);
        }
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'ENOTDIR') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a folder`);
        throw mapWriteError(err);
      }
    }
    throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `no free name found for "${name}"`);
  } finally {
    if (copied) {
      await unlink(src).catch(() => {});
      await unlink(source).catch(() => {});
    }
  }
}

async function existingType(p: string): Promise<'file' | 'directory' | undefined> {
  try {
    const st = await lstat(p);
    return st.isDirectory() ? 'directory' : 'file';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function copyBeside(source: string, folderReal: string): Promise<string> {
  const tmp = path.join(folderReal, `.ferry-upload-${randomBytes(8).toString('hex')}.tmp`);
  // copyFile uses the kernel's copy (copy_file_range/sendfile; a reflink where supported).
  await copyFile(source, tmp, fsConstants.COPYFILE_EXCL).catch((err: unknown) => { throw mapWriteError(err); });
  const fh = await open(tmp, 'r+');
  try {
    await fh.datasync();
  } finally {
    await fh.close();
  }
  return tmp;
}

/** Makes a rename/link in `dir` durable (the directory entry itself). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on directories (EINVAL); the entry is then as durable as it gets.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'EBADF') throw err;
  } finally {
    await fh.close();
  }
}

/** ENOSPC/EDQUOT → 507 (the upload stays resumable); other errors pass through. */
export function mapWriteError(err: unknown): unknown {
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
    return new FerryError('FERRY_ERR_STORAGE_FULL', code === 'EFBIG' ? 'the file is larger than the filesystem allows' : 'no space left on the server; retry once space is freed', { cause: err });
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
