/**
 * Staged uploads on local disk: one data file per upload in the staging dir (the server uses
 * `<state-dir>/uploads`, where uploads always lived, so existing state dirs keep working):
 * `<id>.part` for tus uploads, `<id>.tmp` for PUT bodies (ids `put-<pid>-<hex>`).
 *
 * A checkpoint is `{ offset }`: the bytes up to it were written and fdatasync'ed. Opening at a
 * checkpoint cuts off anything past it (a crash between a write and the caller's commit); a
 * file shorter than its checkpoint (storage that lied about a sync) is
 * FERRY_ERR_UPLOAD_OFFSET_MISMATCH with `details.durable`. Writes are positional `writev(2)` at
 * the writer's offset; `commit` is an fdatasync that claims only the offset at the time it is
 * called, so it may run beside later writes.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, opendir, rename, stat as fsStat, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { FerryError, errnoCode } from '../../core/errors.ts';
import type { StagedCheckpoint, StagedEntry, StagedRef, StagedWriter, Staging } from '../types.ts';
import { mapLocalWriteError } from './write-errors.ts';

/** What callers may name a staged upload (types.ts: letters, digits, `-`, `_`; at most 64). */
const STAGED_ID = /^[A-Za-z0-9_-]{1,64}$/;
/** PUT bodies' ids (`put-<pid>-<hex>`, or `put-<hex>` from older versions): their files end in `.tmp`. */
const PUT_ID = /^put-(?:[1-9][0-9]{0,9}-)?[0-9a-f]+$/;
/** Data file names in the staging dir, and the id each stands for. */
const STAGED_FILE = /^([A-Za-z0-9_-]{1,64})\.part$|^(put-[0-9a-f-]{1,60})\.tmp$/;

export function checkStagedId(id: string): void {
  if (!STAGED_ID.test(id)) {
    throw new FerryError('FERRY_ERR_PATH_INVALID', `not a staged upload id: ${JSON.stringify(id.length <= 64 ? id : `${id.slice(0, 64)}…`)}`);
  }
}

function offsetMismatch(durable: number, claimed: number): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', `only ${durable} of ${claimed} acknowledged bytes are stored`, {
    headers: { 'upload-offset': String(durable) }, extra: { details: { durable } },
  });
}

export class LocalStaging implements Staging {
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Creates the staging dir (once, at start). */
  static async create(dir: string): Promise<LocalStaging> {
    await mkdir(dir, { recursive: true });
    return new LocalStaging(path.resolve(dir));
  }

  /** Where a staged upload's bytes are. PUT bodies keep their historical `.tmp` suffix. */
  file(id: string): string {
    checkStagedId(id);
    return path.join(this.dir, PUT_ID.test(id) ? `${id}.tmp` : `${id}.part`);
  }

  async open(id: string, checkpoint: StagedCheckpoint | undefined, options: { signal?: AbortSignal } = {}): Promise<StagedWriter> {
    const file = this.file(id);
    options.signal?.throwIfAborted();
    const claimed = checkpoint?.offset ?? 0;
    let fh: FileHandle;
    try {
      fh = await open(file, 'r+');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw mapLocalWriteError(err);
      // Nothing stored: fine for a new upload, a lie for one that claims durable bytes.
      if (claimed > 0) throw offsetMismatch(0, claimed);
      try {
        fh = await open(file, 'w+');
      } catch (e) {
        throw mapLocalWriteError(e);
      }
    }
    try {
      const size = (await fh.stat()).size;
      if (size < claimed) throw offsetMismatch(size, claimed);
      if (size > claimed) await fh.truncate(claimed);
    } catch (err) {
      await fh.close().catch(() => {});
      throw mapLocalWriteError(err);
    }
    return new LocalStagedWriter(id, fh, claimed);
  }

  async read(source: StagedRef, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    const file = this.file(source.id);
    const length = source.checkpoint?.offset ?? 0;
    if (length === 0) return Readable.from([]);
    const size = await fsStat(file).then((s) => s.size, (err: unknown) => {
      if (errnoCode(err) === 'ENOENT') return 0;
      throw err;
    });
    if (size < length) throw offsetMismatch(size, length);
    return createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1024 * 1024, ...(options.signal === undefined ? {} : { signal: options.signal }) });
  }

  /**
   * Concatenation by moving and appending: when `parts[0]` is not `target` itself, its data
   * file becomes the target's by rename (no copy); the others are appended with bounded
   * buffers, then the target is fdatasync'ed, and only then each appended part is removed. So
   * after a crash the same call can simply run again: a part that is missing was already
   * taken in (its bytes are durable in the target), and the target is cut back to where the
   * part starts before it is appended again.
   */
  async concat(target: string, parts: readonly StagedRef[], options: { signal?: AbortSignal } = {}): Promise<StagedCheckpoint> {
    const targetFile = this.file(target);
    for (const part of parts) this.file(part.id);
    let position = 0;
    let rest = parts;
    const first = parts[0];
    if (first !== undefined) {
      position = first.checkpoint?.offset ?? 0;
      rest = parts.slice(1);
      if (first.id !== target) {
        try {
          await rename(this.file(first.id), targetFile);
        } catch (err) {
          // Already moved by an earlier attempt, or an empty part that never got a data file.
          if (errnoCode(err) !== 'ENOENT') throw mapLocalWriteError(err);
        }
      }
    }
    const fh = await open(targetFile, 'a+').then(async (h) => { await h.close(); return open(targetFile, 'r+'); }).catch((err: unknown) => { throw mapLocalWriteError(err); });
    const appended: string[] = [];
    try {
      const size = (await fh.stat()).size;
      if (size < position) throw offsetMismatch(size, position);
      for (const part of rest) {
        options.signal?.throwIfAborted();
        const length = part.checkpoint?.offset ?? 0;
        const source = this.file(part.id);
        let src: FileHandle | undefined;
        try {
          src = await open(source, 'r');
        } catch (err) {
          if (errnoCode(err) !== 'ENOENT') throw err;
        }
        if (src === undefined) {
          // Taken in by an earlier attempt (parts go only after the target was synced), or empty.
          const now = (await fh.stat()).size;
          if (length > 0 && now < position + length) throw new FerryError('FERRY_ERR_INTERNAL', `staged part ${part.id} is missing`);
          position += length;
          continue;
        }
        try {
          await fh.truncate(position);
          await copyRange(src, fh, length, position, options.signal);
        } finally {
          await src.close();
        }
        position += length;
        appended.push(source);
      }
      await fh.truncate(position);
      await fh.datasync();
    } catch (err) {
      throw mapLocalWriteError(err);
    } finally {
      await fh.close().catch(() => {});
    }
    for (const source of appended) await unlink(source).catch(() => {});
    return { offset: position };
  }

  async remove(id: string): Promise<void> {
    try {
      await unlink(this.file(id));
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }

  async *list(options: { signal?: AbortSignal } = {}): AsyncGenerator<StagedEntry> {
    let d;
    try {
      d = await opendir(this.dir, { bufferSize: 256 });
    } catch (err) {
      if (errnoCode(err) === 'ENOENT') return;
      throw err;
    }
    for await (const ent of d) {
      options.signal?.throwIfAborted();
      const m = STAGED_FILE.exec(ent.name);
      if (m === null || (m[2] !== undefined && !PUT_ID.test(m[2]))) continue;
      const st = await fsStat(path.join(this.dir, ent.name)).catch(() => undefined);
      if (st === undefined || !st.isFile()) continue;
      yield { id: (m[1] ?? m[2])!, modifiedMs: st.mtimeMs };
    }
  }
}

const COPY_CHUNK = 1024 * 1024;

/** Copies the first `length` bytes of `src` to `dst` at `position`, one reused buffer. */
async function copyRange(src: FileHandle, dst: FileHandle, length: number, position: number, signal?: AbortSignal): Promise<void> {
  const buf = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, length)));
  let done = 0;
  while (done < length) {
    signal?.throwIfAborted();
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, length - done), done);
    if (bytesRead === 0) throw new FerryError('FERRY_ERR_INTERNAL', 'a staged part is shorter than its checkpoint');
    let off = 0;
    while (off < bytesRead) {
      const { bytesWritten } = await dst.write(buf, off, bytesRead - off, position + done + off);
      if (bytesWritten <= 0) throw new FerryError('FERRY_ERR_INTERNAL', 'a write to the staged data made no progress');
      off += bytesWritten;
    }
    done += bytesRead;
  }
}

/** One writer per upload (the caller's lock); positional writes at `offset`. */
class LocalStagedWriter implements StagedWriter {
  readonly id: string;
  readonly #fh: FileHandle;
  #offset: number;
  #committed: StagedCheckpoint;
  #closed = false;

  constructor(id: string, fh: FileHandle, offset: number) {
    this.id = id;
    this.#fh = fh;
    this.#offset = offset;
    this.#committed = { offset };
  }

  get offset(): number { return this.#offset; }
  get committed(): StagedCheckpoint { return this.#committed; }

  /**
   * One `writev(2)` per call, repeated over what a short write left. `offset` moves with every
   * byte that reached the file, also when a later call fails (ENOSPC mid-way): a caller that
   * keeps what arrived sees exactly how much did.
   */
  async write(buffers: readonly Buffer[]): Promise<void> {
    let pending = buffers.filter((b) => b.length > 0);
    while (pending.length > 0) {
      let bytesWritten: number;
      try {
        ({ bytesWritten } = await this.#fh.writev(pending, this.#offset));
      } catch (err) {
        throw mapLocalWriteError(err);
      }
      if (bytesWritten <= 0) throw new FerryError('FERRY_ERR_INTERNAL', 'a write to the upload data made no progress');
      this.#offset += bytesWritten;
      let left = bytesWritten;
      const rest: Buffer[] = [];
      for (const b of pending) {
        if (left >= b.length) left -= b.length;
        else if (left > 0) { rest.push(b.subarray(left)); left = 0; }
        else rest.push(b);
      }
      pending = rest;
    }
  }

  /** fdatasync covers every write issued before it; it claims no more than the offset now. */
  async commit(): Promise<StagedCheckpoint> {
    const offset = this.#offset;
    try {
      await this.#fh.datasync();
    } catch (err) {
      throw mapLocalWriteError(err);
    }
    if (offset >= this.#committed.offset) this.#committed = { offset };
    return { offset };
  }

  async rollback(): Promise<void> {
    await this.#fh.truncate(this.#committed.offset).catch((err: unknown) => { throw mapLocalWriteError(err); });
    this.#offset = this.#committed.offset;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#fh.close();
  }
}
