/**
 * Upload state on disk: one data file per upload in `<state-dir>/uploads/<id>.part` and one
 * record per upload in the meta store. Ids are checked against UPLOAD_ID before they are ever
 * joined to a path, so a crafted id cannot name another file.
 *
 * Also keeps, in memory, the running sha-256/CRC-32 of each upload's acknowledged prefix, so
 * the whole-file digests are computed while receiving. After a restart that state is gone; the
 * digests are then computed by reading the data file once at the end (logged).
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { errnoCode } from '../core/errors.ts';
import { crc32 } from 'node:zlib';
import type { MetaStore } from '../meta/index.ts';
import type { DigestEngine, DigestResult, FileDigestState } from './digest-engine.ts';
import { isUploadId } from './tus-headers.ts';
import { TOMBSTONE_TTL_MS, UPLOAD_NAMESPACE, isGone, type UploadRecord } from './upload-record.ts';

/** partial id → final id that took it in (setIfAbsent makes the claim atomic). */
const FINAL_OF_NAMESPACE = 'tus-final-of';

export class UploadStore {
  readonly dir: string;
  readonly #meta: MetaStore;
  readonly #digests = new Map<string, FileDigestState>();
  readonly digests: DigestEngine;

  private constructor(dir: string, meta: MetaStore, digests: DigestEngine) {
    this.dir = dir;
    this.#meta = meta;
    this.digests = digests;
  }

  static async create(meta: MetaStore, stateDir: string, digests: DigestEngine): Promise<UploadStore> {
    const dir = path.join(stateDir, 'uploads');
    await mkdir(dir, { recursive: true });
    return new UploadStore(dir, meta, digests);
  }

  static newId(): string {
    return randomBytes(16).toString('base64url');
  }

  dataPath(id: string): string {
    if (!isUploadId(id)) throw new Error(`not an upload id: ${JSON.stringify(id)}`);
    return path.join(this.dir, `${id}.part`);
  }

  /** A fresh temp file name for PUT bodies. */
  tempPath(): string {
    return path.join(this.dir, `put-${randomBytes(12).toString('hex')}.tmp`);
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    if (!isUploadId(id)) return undefined;
    return this.#meta.get<UploadRecord>(UPLOAD_NAMESPACE, id);
  }

  /** Tombstones and finished uploads are kept for a while (410 / complete HEAD), then dropped. */
  async put(record: UploadRecord): Promise<void> {
    const keep = isGone(record) || record.state === 'done';
    await this.#meta.set(UPLOAD_NAMESPACE, record.id, record, keep ? { ttlMs: TOMBSTONE_TTL_MS } : {});
  }

  async *all(): AsyncGenerator<UploadRecord> {
    let after: string | undefined;
    for (;;) {
      const page = await this.#meta.list<UploadRecord>(UPLOAD_NAMESPACE, { limit: 500, ...(after === undefined ? {} : { after }) });
      for (const row of page) yield row.value;
      if (page.length < 500) return;
      after = page.at(-1)?.key;
    }
  }

  async claimPartial(partialId: string, finalId: string): Promise<boolean> {
    if (await this.#meta.setIfAbsent(FINAL_OF_NAMESPACE, partialId, finalId, { ttlMs: TOMBSTONE_TTL_MS })) return true;
    return (await this.#meta.get<string>(FINAL_OF_NAMESPACE, partialId)) === finalId;
  }

  async releasePartial(partialId: string): Promise<void> {
    await this.#meta.delete(FINAL_OF_NAMESPACE, partialId);
  }

  async finalOf(partialId: string): Promise<string | undefined> {
    return this.#meta.get<string>(FINAL_OF_NAMESPACE, partialId);
  }

  /** Opens (creating if needed) the data file for writing at any position. */
  async openData(id: string): Promise<FileHandle> {
    const p = this.dataPath(id);
    try {
      return await open(p, 'r+');
    } catch (err) {
      if (errnoCode(err) !== 'ENOENT') throw err;
      return open(p, 'w+');
    }
  }

  async removeData(id: string): Promise<void> {
    this.#digests.delete(id);
    await unlink(this.dataPath(id)).catch((err: unknown) => { if (errnoCode(err) !== 'ENOENT') throw err; });
  }

  digest(id: string): FileDigestState | undefined {
    return this.#digests.get(id);
  }

  setDigest(id: string, state: FileDigestState | undefined): void {
    if (state === undefined) this.#digests.delete(id);
    else this.#digests.set(id, state);
  }

  /** The digests of the first `length` bytes of a data file, read from disk (after a restart). */
  async readDigest(file: string, length: number, signal?: AbortSignal): Promise<DigestResult> {
    const sha = createHash('sha256');
    let crc = 0;
    let bytes = 0;
    if (length > 0) {
      const stream = createReadStream(file, { start: 0, end: length - 1, highWaterMark: 1024 * 1024, ...(signal === undefined ? {} : { signal }) });
      for await (const chunk of stream) {
        sha.update(chunk as Buffer);
        crc = crc32(chunk as Buffer, crc);
        bytes += (chunk as Buffer).length;
      }
    }
    if (bytes !== length) throw new Error(`data file ${path.basename(file)} is shorter than its acknowledged offset`);
    return { sha256: sha.digest('hex'), crc32: crc >>> 0 };
  }
}
