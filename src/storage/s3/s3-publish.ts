/**
 * Publishing a staged upload, removing a file and telling what stands at a path, on an
 * S3-compatible store.
 *
 * Publish seals the staged upload (s3-staging.ts), then copies it server-side to the target
 * key: CopyObject up to 5 GiB, a multipart upload of UploadPartCopy beyond. For `reject`,
 * `no-clobber` and `rename` the copy is a conditional write (`If-None-Match: *`): S3 refuses
 * it with 412 when the key exists, also when it appeared a moment before, so two uploads can
 * never both take a name. A HEAD before each attempt spares the copy when the name is visibly
 * taken (and keeps stores that ignore conditional writes, such as the s3rver test server,
 * correct for the sequential case). `overwrite` copies unconditionally. A key that is a
 * "folder" (a common prefix) is never published onto; an ancestor that is an object is
 * refused too (a file cannot hold files). The staging objects go afterwards.
 */
import { CopyObjectCommand, DeleteObjectCommand } from '@aws-sdk/client-s3';
import { FerryError } from '../../core/errors.ts';
import type { SafePath } from '../../core/safe-path.ts';
import type { FileStat, PublishMode, PublishOptions, PublishResult, StagedRef } from '../types.ts';
import type { S3Staging } from './s3-staging.ts';
import {
  MAX_PART_BYTES, call, checkKeyLength, copySource, hasKeysUnder, isConditionFailure, isReservedPath, mapWriteError, multipartCopy,
  sendOptions, stagedKey, type S3WriteContext,
} from './s3-write-kit.ts';

const MAX_RENAME_ATTEMPTS = 10_000;
const COMPOUND = /\.tar\.(?:gz|bz2|xz|zst|lz|lzma|z)$/i;

/**
 * The `n`-th name `rename` tries: `report.pdf`, `report (1).pdf`, … (`backup (1).tar.gz`),
 * within 255 bytes. Pure; the same rule as src/uploads/conflict-name.ts, which the storage
 * area may not import.
 */
export function conflictName(name: string, n: number): string {
  if (n === 0) return name;
  const compound = COMPOUND.exec(name);
  const dot = compound !== null && compound.index > 0 ? compound.index : name.lastIndexOf('.');
  const [stem, ext] = dot <= 0 ? [name, ''] : [name.slice(0, dot), name.slice(dot)];
  const suffix = ` (${n})`;
  let s = stem;
  while (Buffer.byteLength(s + suffix + ext) > 255 && s.length > 1) s = Array.from(s).slice(0, -1).join('');
  return `${s}${suffix}${ext}`;
}

function notFound(): FerryError {
  return new FerryError('FERRY_ERR_PATH_NOT_FOUND', 'No such file or folder');
}

/** HEAD of a key; undefined when nothing is there. */
async function headOrNothing(ctx: S3WriteContext, key: string, signal?: AbortSignal): Promise<FileStat | undefined> {
  try {
    return await ctx.headFile(key, signal);
  } catch (err) {
    if (err instanceof FerryError && err.code === 'FERRY_ERR_PATH_NOT_FOUND') return undefined;
    throw err;
  }
}

function keyOf(ctx: S3WriteContext, segments: readonly string[]): string {
  return ctx.prefix + segments.join('/');
}

/** Makes staged `source` the object at `target` (see the file comment and Storage.publish). */
export async function publishStaged(ctx: S3WriteContext, staging: S3Staging, source: StagedRef, target: SafePath, mode: PublishMode, options: PublishOptions = {}): Promise<PublishResult> {
  const signal = options.signal;
  const name = target.segments.at(-1);
  if (name === undefined) throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', 'the root is a folder');
  if (isReservedPath(target.segments)) throw notFound();
  const dir = target.segments.slice(0, -1);
  checkKeyLength(keyOf(ctx, target.segments));
  // Folders on the way are implicit in a key; an object in their place is a file, not a folder.
  await Promise.all(dir.map(async (_, i) => {
    if (await headOrNothing(ctx, keyOf(ctx, dir.slice(0, i + 1)), signal) !== undefined) {
      throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${dir.slice(0, i + 1).join('/')}" is a file, not a folder`);
    }
  }));
  const size = await staging.seal(source, signal);
  const from = stagedKey(ctx, source.id);
  for (let n = 0; n < MAX_RENAME_ATTEMPTS; n++) {
    const candidate = conflictName(name, n);
    const key = keyOf(ctx, [...dir, candidate]);
    checkKeyLength(key);
    if (await hasKeysUnder(ctx, `${key}/`, signal)) {
      if (mode === 'rename') continue;
      throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${candidate}" is a folder`);
    }
    const existing = await headOrNothing(ctx, key, signal);
    if (existing !== undefined && mode !== 'overwrite') {
      if (mode === 'rename') continue;
      throw taken(candidate, mode);
    }
    await options.beforeAttempt?.(candidate);
    const conditional = mode !== 'overwrite';
    try {
      if (size <= MAX_PART_BYTES) {
        await ctx.client.send(new CopyObjectCommand({
          Bucket: ctx.bucket, Key: key, CopySource: copySource(ctx.bucket, from), ...(conditional ? { IfNoneMatch: '*' } : {}),
        }), sendOptions(signal));
      } else {
        await multipartCopy(ctx, from, size, key, conditional, signal);
      }
    } catch (err) {
      // The name was taken between the HEAD and the copy: the conditional write refused it.
      if (conditional && isConditionFailure(err)) {
        if (mode === 'rename') continue;
        throw taken(candidate, mode);
      }
      throw mapWriteError(err, signal);
    }
    const stat = await ctx.headFile(key, signal);
    // What is left of the staged upload; the orphan sweep removes it if this fails.
    await staging.remove(source.id).catch(() => {});
    return { name: candidate, replaced: existing !== undefined, stat };
  }
  throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `no free name found for "${name}"`);
}

function taken(name: string, mode: PublishMode): FerryError {
  if (mode === 'no-clobber') return new FerryError('FERRY_ERR_PRECONDITION_FAILED', `"${name}" exists (If-None-Match: *)`);
  return new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${name}" exists (--on-conflict reject)`);
}

/** DeleteObject of a file; false when no object is there (a folder is never removed). */
export async function removeObject(ctx: S3WriteContext, path: SafePath, signal?: AbortSignal): Promise<boolean> {
  if (path.segments.length === 0 || isReservedPath(path.segments)) return false;
  const key = keyOf(ctx, path.segments);
  if (Buffer.byteLength(key) > 1024) return false;
  if (await headOrNothing(ctx, key, signal) === undefined) return false;
  await call(() => ctx.client.send(new DeleteObjectCommand({ Bucket: ctx.bucket, Key: key }), sendOptions(signal)), signal);
  return true;
}

/** An object is a file, a common prefix a folder; the reserved staging folder is `other`. */
export async function entryTypeOf(ctx: S3WriteContext, path: SafePath, signal?: AbortSignal): Promise<'file' | 'directory' | 'other' | undefined> {
  if (path.segments.length === 0) return 'directory';
  if (isReservedPath(path.segments)) return 'other';
  const key = keyOf(ctx, path.segments);
  if (Buffer.byteLength(key) > 1024) return undefined;
  if (await headOrNothing(ctx, key, signal) !== undefined) return 'file';
  return await hasKeysUnder(ctx, `${key}/`, signal) ? 'directory' : undefined;
}
