/**
 * Upload state: one staged upload per upload in the storage's staging area (`storage.staging`;
 * on local disk `<state-dir>/uploads/<id>.part`) and one record per upload in the meta store.
 * Ids are checked against UPLOAD_ID before they are ever used.
 *
 * Also keeps, in memory, the running sha-256/CRC-32 of each upload's acknowledged prefix, so
 * the whole-file digests are computed while receiving. After a restart that state is gone; the
 * digests are then computed by reading the staged bytes once at the end (logged).
 */
import { createHash, randomBytes } from 'node:crypto';
import { FerryError } from '../core/errors.ts';
import { crc32 } from 'node:zlib';
import type { MetaStore } from '../meta/index.ts';
import type { StagedCheckpoint, StagedRef, Staging } from '../storage/index.ts';
import type { DigestEngine, DigestResult, FileDigestState } from './digest-engine.ts';
import { isUploadId } from './tus-headers.ts';
import { TOMBSTONE_TTL_MS, UPLOAD_NAMESPACE, isGone, isPending, type UploadRecord } from './upload-record.ts';

/** partial id → final id that took it in (setIfAbsent makes the claim atomic). */
const FINAL_OF_NAMESPACE = 'tus-final-of';
/**
 * Unfinished uploads, counted for --max-pending-uploads: id → {owner, at}. Kept beside the
 * records (not derived by reading them all) so that a creation counts in one index range scan.
 */
const PENDING_NAMESPACE = 'tus-pending';
/** The same per owner (--max-pending-uploads-client): `tus-pending:<owner>`, id → 1. */
const pendingOfOwner = (owner: string): string => `${PENDING_NAMESPACE}:${owner}`;
/** An index entry without a record is normal while insert() runs; only older ones are stale. */
const PENDING_STALE_MS = 60_000;

interface PendingEntry {
  readonly owner: string | null;
  readonly at: number;
}

/**
 * What a record says is durable in its staged upload: the checkpoint stored with the offset;
 * records of older versions have only the offset (`{ offset }`); undefined for an upload that
 * never committed anything.
 */
export function checkpointOf(record: UploadRecord): StagedCheckpoint | undefined {
  if (record.staged !== undefined) return record.staged;
  return record.offset === 0 ? undefined : { offset: record.offset };
}

/** The staged upload behind a record, at its checkpoint. */
export function stagedRef(record: UploadRecord): StagedRef {
  return { id: record.id, checkpoint: checkpointOf(record) };
}

export class UploadStore {
  readonly #meta: MetaStore;
  readonly #digests = new Map<string, FileDigestState>();
  readonly digests: DigestEngine;
  readonly staging: Staging;

  constructor(meta: MetaStore, digests: DigestEngine, staging: Staging) {
    this.#meta = meta;
    this.digests = digests;
    this.staging = staging;
  }

  static newId(): string {
    return randomBytes(16).toString('base64url');
  }

  /**
   * A fresh staged id for a PUT body: `put-<pid>-<random>` (on local disk the file
   * `put-<pid>-<random>.tmp`). The pid tells a sweep in another process sharing the state dir
   * whose upload it is (decide-sweep.ts).
   */
  static newTempId(): string {
    return `put-${process.pid}-${randomBytes(12).toString('hex')}`;
  }

  async get(id: string): Promise<UploadRecord | undefined> {
    if (!isUploadId(id)) return undefined;
    return this.#meta.get<UploadRecord>(UPLOAD_NAMESPACE, id);
  }

  /**
   * Stores a new upload and counts it as pending (index first: a crash in between leaves an
   * over-count that the sweep repairs, never an upload that escapes the caps).
   */
  async insert(record: UploadRecord): Promise<void> {
    const entry: PendingEntry = { owner: record.owner ?? null, at: Date.now() };
    await this.#meta.set(PENDING_NAMESPACE, record.id, entry);
    if (record.owner !== undefined) await this.#meta.set(pendingOfOwner(record.owner), record.id, 1);
    await this.#meta.set(UPLOAD_NAMESPACE, record.id, record);
  }

  /**
   * Tombstones and finished uploads are kept for a while (410 / complete HEAD), then dropped,
   * and stop counting as pending. A tombstone keeps only what a 410 needs: the client-chosen
   * metadata is dropped, so that create-and-terminate does not leave kilobytes per upload.
   */
  async put(record: UploadRecord): Promise<void> {
    if (isPending(record)) {
      await this.#meta.set(UPLOAD_NAMESPACE, record.id, record);
      return;
    }
    const stored: UploadRecord = isGone(record) ? { ...record, metadata: null, intent: { folder: '' } } : record;
    await this.#meta.set(UPLOAD_NAMESPACE, record.id, stored, { ttlMs: TOMBSTONE_TTL_MS });
    await this.#forgetPending(record.id, record.owner);
  }

  async #forgetPending(id: string, owner: string | null | undefined): Promise<void> {
    if (owner !== undefined && owner !== null) await this.#meta.delete(pendingOfOwner(owner), id);
    await this.#meta.delete(PENDING_NAMESPACE, id);
  }

  /** Unfinished uploads: all of them, or those of one owner. */
  async pendingCount(owner?: string): Promise<number> {
    return this.#meta.count(owner === undefined ? PENDING_NAMESPACE : pendingOfOwner(owner));
  }

  /**
   * Repairs the pending index against the records (the sweep calls it): entries whose upload
   * is finished, gone or missing are dropped; pending uploads missing from it (a crash between
   * the writes, or records of an older version) are added. Each fix re-reads the record.
   */
  async reconcilePending(pending: ReadonlySet<string>): Promise<{ dropped: number; added: number }> {
    let dropped = 0;
    let added = 0;
    const indexed = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.#meta.list<PendingEntry>(PENDING_NAMESPACE, { limit: 500, ...(after === undefined ? {} : { after }) });
      for (const { key, value } of page) {
        indexed.add(key);
        if (pending.has(key)) continue;
        const record = await this.get(key);
        const stale = record === undefined ? Date.now() - value.at >= PENDING_STALE_MS : !isPending(record);
        if (stale) { await this.#forgetPending(key, value.owner); dropped++; }
      }
      if (page.length < 500) break;
      after = page.at(-1)?.key;
    }
    for (const id of pending) {
      if (indexed.has(id)) continue;
      const record = await this.get(id);
      if (record === undefined || !isPending(record)) continue;
      await this.#meta.set(PENDING_NAMESPACE, id, { owner: record.owner ?? null, at: Date.now() } satisfies PendingEntry);
      if (record.owner !== undefined) await this.#meta.set(pendingOfOwner(record.owner), id, 1);
      added++;
    }
    return { dropped, added };
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

  /** Removes an upload's staged bytes and its running digests (idempotent). */
  async removeData(id: string): Promise<void> {
    this.#digests.delete(id);
    if (!isUploadId(id)) throw new Error(`not an upload id: ${JSON.stringify(id)}`);
    await this.staging.remove(id);
  }

  digest(id: string): FileDigestState | undefined {
    return this.#digests.get(id);
  }

  setDigest(id: string, state: FileDigestState | undefined): void {
    if (state === undefined) this.#digests.delete(id);
    else this.#digests.set(id, state);
  }

  /** The digests of a staged upload's committed bytes, read back (after a restart). */
  async readDigest(source: StagedRef, signal?: AbortSignal): Promise<DigestResult> {
    const length = source.checkpoint?.offset ?? 0;
    const sha = createHash('sha256');
    let crc = 0;
    let bytes = 0;
    if (length > 0) {
      const stream = await this.staging.read(source, signal === undefined ? {} : { signal });
      for await (const chunk of stream) {
        sha.update(chunk as Buffer);
        crc = crc32(chunk as Buffer, crc);
        bytes += (chunk as Buffer).length;
      }
    }
    if (bytes !== length) throw new FerryError('FERRY_ERR_INTERNAL', `the staged data of ${source.id} is shorter than its acknowledged offset`);
    return { sha256: sha.digest('hex'), crc32: crc >>> 0 };
  }
}
