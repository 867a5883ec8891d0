/**
 * Filesystem errors of the write half as Ferry errors: a full disk is 507 (the upload stays
 * resumable), a name the filesystem cannot hold is 400. Other errors pass through.
 */
import { FerryError, errnoCode } from '../../core/errors.ts';

export function mapLocalWriteError(err: unknown): unknown {
  if (err instanceof FerryError) return err;
  const code = errnoCode(err);
  if (code === 'ENOSPC' || code === 'EDQUOT' || code === 'EFBIG') {
    return new FerryError('FERRY_ERR_STORAGE_FULL', code === 'EFBIG' ? 'the file is larger than the filesystem allows' : 'no space left on the server; retry once space is freed', { cause: err });
  }
  if (code === 'ENAMETOOLONG') {
    return new FerryError('FERRY_ERR_PATH_INVALID', 'the name or path is longer than the filesystem allows', { cause: err });
  }
  return err;
}
