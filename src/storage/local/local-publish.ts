/**
 * Publishing a staged upload on local disk: atomic, inside the verified target folder.
 *
 * The staged data file is hard-linked under its name (`link(2)` fails with EEXIST, so a file
 * that appeared meanwhile is never clobbered), or renamed over the name when overwriting is
 * wanted. Either way a reader sees no file or the whole file. Every name is reached through
 * the folder's verified descriptor (LocalStorage.openFolder), never by path again, so a folder
 * swapped for a symlink after the check cannot redirect the write. When the staging dir and the
 * target are on different filesystems (EXDEV), the data is first copied to a hidden temp file
 * inside the target folder (noted in the journal first, so a crash leaves nothing that
 * `sweepPublishTemps` does not remove), made durable, and published from there.
 *
 * A crash between `link(2)` and the removal of the staged file leaves the staged file with a
 * second link; publishing it again finds that link (same inode) among the candidate names and
 * finishes instead of publishing a second copy.
 */
import { constants as fsConstants } from 'node:fs';
import { copyFile, link, lstat, open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { FerryError, errnoCode } from '../../core/errors.ts';
import { conflictName } from '../conflict-name.ts';
import type { FileStat, LocalFolderHandle, PublishMode } from '../types.ts';
import { decidePublishTemp } from './decide-publish-temp.ts';
import { toFileStat } from './file-stat.ts';
import { mapLocalWriteError } from './write-errors.ts';

/**
 * Where a cross-filesystem publish notes its temp copy before creating it (the server hands
 * its meta store, which has this shape). Without one, nothing is noted.
 */
export interface WriteJournal {
  set(namespace: string, key: string, value: unknown): Promise<void>;
  delete(namespace: string, key: string): Promise<unknown>;
  list<T = unknown>(namespace: string, options?: { after?: string; limit?: number }): Promise<Array<{ key: string; value: T }>>;
}

export interface LocalPublishInput {
  /** The staged data file. */
  readonly source: string;
  /** Bytes committed (the staged checkpoint); undefined for an upload that never committed. */
  readonly offset: number | undefined;
  readonly folder: LocalFolderHandle;
  readonly name: string;
  readonly mode: PublishMode;
  readonly beforeAttempt?: ((name: string) => Promise<void>) | undefined;
  readonly journal?: WriteJournal | undefined;
  readonly signal?: AbortSignal | undefined;
}

export interface LocalPublishResult {
  readonly name: string;
  readonly replaced: boolean;
  readonly stat: FileStat;
}

const MAX_RENAME_ATTEMPTS = 10_000;

export async function publishStaged(input: LocalPublishInput): Promise<LocalPublishResult> {
  const { folder, name, mode } = input;
  const earlier = await prepareSource(input);
  if (earlier !== undefined) return earlier;
  let src = input.source;
  let temp: PublishTemp | undefined;
  try {
    for (let n = 0; n < MAX_RENAME_ATTEMPTS; n++) {
      input.signal?.throwIfAborted();
      const candidate = conflictName(name, n);
      const dest = folder.entry(candidate);
      await input.beforeAttempt?.(candidate);
      try {
        if (mode === 'overwrite') {
          const existed = await existingType(dest);
          if (existed === 'directory') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a folder`);
          // A link (to anywhere, hidden by the jail or not) is never replaced by an upload.
          if (existed === 'symlink') throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a symbolic link; uploads never replace links`);
          await rename(src, dest);
          await folder.sync();
          return { name: candidate, replaced: existed === 'file', stat: await statEntry(dest) };
        }
        await link(src, dest);
        await unlink(src);
        await folder.sync();
        return { name: candidate, replaced: false, stat: await statEntry(dest) };
      } catch (err) {
        const code = errnoCode(err);
        if (code === 'EXDEV' && temp === undefined) {
          // Different filesystems: copy next to the target once, then publish from there.
          temp = await copyBeside(input.source, folder, input.journal);
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
        throw mapLocalWriteError(err);
      }
    }
    throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `no free name found for "${name}"`);
  } finally {
    if (temp !== undefined) {
      await unlink(temp.path).catch(() => {});
      await unlink(input.source).catch(() => {});
      await temp.forget();
    }
  }
}

/**
 * Makes the staged file exactly its checkpoint (an upload that never wrote gets an empty file),
 * or finds where an interrupted publish already linked it (then that is the result).
 * A staged file that is gone although bytes were committed is FERRY_ERR_UPLOAD_NOT_FOUND: it was
 * published and the record not yet updated (the caller looks at its recorded target).
 */
async function prepareSource(input: LocalPublishInput): Promise<LocalPublishResult | undefined> {
  const offset = input.offset ?? 0;
  let fh;
  try {
    fh = await open(input.source, 'r+');
  } catch (err) {
    if (errnoCode(err) !== 'ENOENT') throw mapLocalWriteError(err);
    if (offset > 0) throw new FerryError('FERRY_ERR_UPLOAD_NOT_FOUND', 'the staged upload is gone (published already?)');
    fh = await open(input.source, 'w').catch((e: unknown) => { throw mapLocalWriteError(e); });
  }
  try {
    const st = await fh.stat({ bigint: true });
    if (st.size < BigInt(offset)) {
      throw new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', `only ${st.size} of ${offset} acknowledged bytes are stored`, { extra: { details: { durable: Number(st.size) } } });
    }
    if (st.size > BigInt(offset)) {
      await fh.truncate(offset);
      await fh.datasync();
    }
    if (st.nlink > 1n) {
      for (let n = 0; n < MAX_RENAME_ATTEMPTS; n++) {
        const candidate = conflictName(input.name, n);
        const dest = input.folder.entry(candidate);
        const other = await lstat(dest, { bigint: true }).catch(() => undefined);
        if (other === undefined) break;
        if (other.ino === st.ino && other.dev === st.dev) {
          await unlink(input.source).catch(() => {});
          await input.folder.sync();
          return { name: candidate, replaced: false, stat: toFileStat(other) };
        }
      }
    }
    return undefined;
  } catch (err) {
    throw mapLocalWriteError(err);
  } finally {
    await fh.close().catch(() => {});
  }
}

async function statEntry(p: string): Promise<FileStat> {
  return toFileStat(await lstat(p, { bigint: true }));
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

async function copyBeside(source: string, folder: LocalFolderHandle, journal: WriteJournal | undefined): Promise<PublishTemp> {
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
    throw mapLocalWriteError(err);
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
export async function sweepPublishTemps(
  openFolder: (relative: string) => Promise<LocalFolderHandle>,
  journal: WriteJournal,
  nowMs = Date.now(),
): Promise<number> {
  let removed = 0;
  let after: string | undefined;
  for (;;) {
    const page = await journal.list<PublishTempNote>(PUBLISH_TEMP_NAMESPACE, { limit: 100, ...(after === undefined ? {} : { after }) });
    if (page.length === 0) return removed;
    for (const { key, value } of page) {
      after = key;
      if (!TEMP_NAME.test(value.name)) {
        await journal.delete(PUBLISH_TEMP_NAMESPACE, key);
        continue;
      }
      let folder: LocalFolderHandle | undefined;
      try {
        folder = await openFolder(value.folder);
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
