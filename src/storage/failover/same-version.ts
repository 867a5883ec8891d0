/**
 * Whether the backup holds the very version of a file the primary was streaming, so a download
 * cut by the primary's failure may continue from the backup at the next byte (never mixing two
 * versions). Pure: it compares the two stats and decides; when it cannot prove "same", it says
 * "different" and the stream is cut.
 *
 * What counts as proof (docs/storage.md, "A download in flight when the primary dies"):
 * - both are files of the same size, and
 * - both backends give a strong validator (an object store's ETag): the ETags are equal; an
 *   ETag on one side only proves nothing about the other, so then
 * - the modification times are equal: to the nanosecond when neither side is an object store
 *   (a local mirror made with `rsync -a` / `cp -p` keeps them); when one side is (S3 gives
 *   Last-Modified in whole seconds), the same second, and the local side's mtime a whole
 *   second (a mirror made with `aws s3 sync` is given the object's Last-Modified as its mtime,
 *   which has no fraction; a file merely written in the same second almost always has one).
 *   A zero mtime (a backend that has none) proves nothing.
 */
import type { FileStat } from '../types.ts';

export type VersionVerdict =
  | { readonly same: true; readonly basis: 'size+etag' | 'size+mtime' }
  | { readonly same: false; readonly reason: string };

/** An mtime with no fraction of a second: one that was copied from a whole-second timestamp. */
function wholeSecond(stat: FileStat): boolean {
  return stat.mtimeNs % 1_000_000_000n === 0n;
}

export function decideSameVersion(primary: FileStat, backup: FileStat): VersionVerdict {
  if (primary.type !== 'file' || backup.type !== 'file') return { same: false, reason: 'not a file on both backends' };
  if (primary.size !== backup.size) return { same: false, reason: `sizes differ (${primary.size} and ${backup.size} bytes)` };
  if (primary.etag !== undefined && backup.etag !== undefined) {
    return primary.etag === backup.etag && primary.etag !== ''
      ? { same: true, basis: 'size+etag' }
      : { same: false, reason: 'ETags differ' };
  }
  if (primary.mtimeMs <= 0 || backup.mtimeMs <= 0) return { same: false, reason: 'no modification time to compare' };
  // An object store's stat carries an ETag; its Last-Modified has whole seconds only.
  const objectStore = primary.etag !== undefined || backup.etag !== undefined;
  const equal = objectStore
    ? Math.floor(primary.mtimeMs / 1000) === Math.floor(backup.mtimeMs / 1000) && wholeSecond(primary.etag === undefined ? primary : backup)
    : primary.mtimeNs === backup.mtimeNs;
  return equal ? { same: true, basis: 'size+mtime' } : { same: false, reason: 'modification times differ' };
}
