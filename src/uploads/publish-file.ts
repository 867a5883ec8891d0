/**
 * Where an upload lands and how it gets there (issue 4 §4, §5).
 *
 * Target: the folder and name go through the same path jail as downloads: `parseDecodedPath`
 * (no `..`, `.`, NUL, backslashes), then the storage's half (symlinks resolving outside the
 * root, hidden names). The folder is opened by the storage backend and proven inside the root
 * through its descriptor; missing folders are created one level at a time inside their
 * verified parent; the file is linked or renamed into that very folder, never by path again.
 *
 * Publish: atomic. The finished data file is hard-linked under its name (`link(2)` fails with
 * EEXIST, so a file that appeared meanwhile is never clobbered), or renamed over the name when
 * overwriting is wanted. Either way a reader sees no file or the whole file. When the state dir
 * and the target are on different filesystems (EXDEV), the data is first copied to a hidden temp
 * file inside the target folder (noted in a journal first, so a crash leaves nothing that a
 * start-up sweep does not remove), made durable, and published from there.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { FerryError, errnoCode } from '../core/errors.ts';
import { parseDecodedPath, type SafePath } from '../core/safe-path.ts';
import type { LocalFolderHandle, Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import { conflictName } from './conflict-name.ts';
import { decidePublishTemp } from './decide-sweep.ts';

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
 * Opens the target folder for publishing, creating missing folders, proven inside the root:
 * the storage backend opens each level through its parent's verified descriptor, so a folder
 * swapped for a symlink meanwhile cannot redirect the write (docs/security.md). Close it after.
 */
export async function ensureTargetFolder(storage: Storage, folder: SafePath, signal?: AbortSignal): Promise<LocalFolderHandle> {
  if (storage.openFolder === undefined) throw new FerryError('FERRY_ERR_STORAGE_UNAVAILABLE', 'this storage backend does not accept uploads');
  try {
    return await storage.openFolder(folder, { create: true, ...(signal === undefined ? {} : { signal }) });
  } catch (err) {
    throw mapWriteError(err);
  }
}

/** Does a name exist in the folder (any type, links not followed)? */
export async function nameExists(folder: LocalFolderHandle, name: string): Promise<boolean> {
  return (await existingType(folder.entry(name))) !== undefined;
}

/**
 * Does anything at all stand at `folder/name` (links not followed, hidden or not)? False when
 * the folder itself is missing. For prechecks only; publishing decides again.
 */
export async function entryExists(storage: Storage, folder: SafePath, name: string): Promise<boolean> {
  if (storage.openFolder === undefined) return false;
  let dir: LocalFolderHandle;
  try {
    dir = await storage.openFolder(folder, { create: false });
  } catch {
    return false;
  }
  try {
    return await nameExists(dir, name);
  } finally {
    await dir.close();
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
  /**
   * Where a cross-filesystem publish notes its temp file before creating it, so a start-up
   * sweep can remove it after a crash (sweepPublishTemps). Without it, nothing is noted.
   */
  readonly journal?: MetaStore;
}

const MAX_RENAME_ATTEMPTS = 10_000;

/**
 * Moves `source` (a complete, fsynced file) into `folder` as `name`, atomically, under `mode`:
 * - `overwrite`: rename over whatever file is there (never over a folder or a symlink).
 * - `reject` / `no-clobber`: the name must be free, else 409 / 412.
 * - `rename`: first free of `name`, `name (1)`, `name (2)`, …
 * Every name is reached through the folder's verified descriptor. `source` is gone afterwards.
 * The folder entry is fsynced.
 */
export async function publishFile(source: string, folder: LocalFolderHandle, name: string, mode: PublishMode, options: PublishOptions = {}): Promise<PublishResult> {
  let src = source;
  let temp: PublishTemp | undefined;
  try {
    for (let n = 0; n < MAX_RENAME_ATTEMPTS; n++) {
      const candidate = conflictName(name, n);
      const dest = folder.entry(candidate);
      await options.beforeAttempt?.(candidate);
      try {
        if (mode === 'overwrite') {
          const existed = await existingType(dest);
          if (existed === 'directory') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a folder`);
          // A link (to anywhere, hidden by the jail or not) is never replaced by an upload.
          if (existed === 'symlink') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a symbolic link; uploads never replace links`);
          await rename(src, dest);
          await folder.sync();
          return { name: candidate, replaced: existed === 'file' };
        }
        await link(src, dest);
        await unlink(src);
        await folder.sync();
        return { name: candidate, replaced: false };
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EXDEV' && temp === undefined) {
          // Different filesystems: copy next to the target once, then publish from there.
          temp = await copyBeside(source, folder, options.journal);
          src = temp.path;
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
    if (temp !== undefined) {
      await unlink(temp.path).catch(() => {});
      await unlink(source).catch(() => {});
      await temp.forget();
    }
  }
}

async function existingType(p: string): Promise<'file' | 'directory' | 'symlink' | undefined> {
  try {
    const st = await lstat(p);
    return st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'file';
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Cross-filesystem temp files: where they are noted, and which this process is writing. */
const PUBLISH_TEMP_NAMESPACE = 'publish-temp';
const TEMP_NAME = /^\.ferry-upload-[0-9a-f]{16}\.tmp$/;
const activePublishTemps = new Set<string>();

interface PublishTempNote {
  /** Folder relative to the root. */
  readonly folder: string;
  readonly name: string;
  readonly pid: number;
  readonly createdAt: number;
}

interface PublishTemp {
  readonly path: string;
  forget(): Promise<void>;
}

async function copyBeside(source: string, folder: LocalFolderHandle, journal: MetaStore | undefined): Promise<PublishTemp> {
  const name = `.ferry-upload-${randomBytes(8).toString('hex')}.tmp`;
  const tmp = folder.entry(name);
  // Noted before it exists: a crash at any point after this leaves a note the sweep acts on.
  const note: PublishTempNote = { folder: folder.relative, name, pid: process.pid, createdAt: Date.now() };
  await journal?.set(PUBLISH_TEMP_NAMESPACE, name, note);
  activePublishTemps.add(name);
  const forget = async (): Promise<void> => {
    activePublishTemps.delete(name);
    await journal?.delete(PUBLISH_TEMP_NAMESPACE, name).catch(() => false);
  };
  try {
    // copyFile uses the kernel's copy (copy_file_range/sendfile; a reflink where supported).
    await copyFile(source, tmp, fsConstants.COPYFILE_EXCL);
    const fh = await open(tmp, 'r+');
    try {
      await fh.datasync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    await forget();
    throw mapWriteError(err);
  }
  return { path: tmp, forget };
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Removes the cross-filesystem temp copies that a killed process left in target folders (noted
 * in the journal before they were created), by the rule of `decidePublishTemp`: never one whose
 * writer may still be alive (a draining previous server, another instance on the state dir),
 * nor one written within the last hour. Returns how many files were removed.
 */
export async function sweepPublishTemps(storage: Storage, journal: MetaStore, nowMs = Date.now()): Promise<number> {
  let removed = 0;
  let after: string | undefined;
  for (;;) {
    const page = await journal.list<PublishTempNote>(PUBLISH_TEMP_NAMESPACE, { limit: 100, ...(after === undefined ? {} : { after }) });
    if (page.length === 0) return removed;
    for (const { key, value } of page) {
      after = key;
      if (!TEMP_NAME.test(value.name) || storage.openFolder === undefined) {
        await journal.delete(PUBLISH_TEMP_NAMESPACE, key);
        continue;
      }
      let folder: LocalFolderHandle | undefined;
      try {
        folder = await storage.openFolder(parseDecodedPath(value.folder), { create: false });
      } catch {
        // The folder is gone (or no longer inside the root): so is the copy.
      }
      try {
        const st = folder === undefined ? undefined : await lstat(folder.entry(value.name)).catch(() => undefined);
        const decision = decidePublishTemp({
          pid: value.pid, mtimeMs: st?.isFile() === true ? st.mtimeMs : undefined, nowMs,
          ownPid: process.pid, active: activePublishTemps.has(value.name), isProcessAlive: processAlive,
        });
        if (decision === 'keep') continue;
        if (decision === 'delete' && folder !== undefined) {
          await unlink(folder.entry(value.name));
          removed++;
        }
        await journal.delete(PUBLISH_TEMP_NAMESPACE, key);
      } finally {
        await folder?.close();
      }
    }
  }
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
