/**
 * The tus 1.0 server's behaviour, apart from HTTP: creating uploads, writing chunks durably
 * under the one-writer lock, concatenation, finalisation (digests, sha256 check, jail, conflict
 * policy, atomic publish), termination, expiry and crash recovery. Routes (tus-routes.ts) turn
 * requests into calls here and results into responses.
 *
 * Durability (issue 4 §2): a chunk's bytes are written to the upload's staged upload
 * (`storage.staging`) at the acknowledged offset, committed (local disk: `fdatasync`), and only
 * then is the new offset stored in the record, with the checkpoint the storage returned; 204
 * follows. The staged upload may hold more bytes than the record says (a crash mid-write);
 * opening it at the record's checkpoint cuts them off. Long bodies are checkpointed every
 * `checkpointBytes` the same way, so a server killed during a single 50 GB PATCH restarts with
 * most of it, never with more than was stored. No file is touched here: every byte goes
 * through Storage.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Readable } from 'node:stream';
import { FerryError, errnoCode, isFerryError } from '../core/errors.ts';
import { channels, publish, type UploadEvent } from '../core/channels.ts';
import { parseDecodedPath } from '../core/safe-path.ts';
import type { StagedCheckpoint, StagedWriter, Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import { createDigester, type Digester } from './checksum.ts';
import type { DigestResult, RunningDigest } from './digest-engine.ts';
import { checkAlive, decidePatch, header, overMaxUploadSize, tooLarge, type CreationPlan, type HeaderBag, type TusLimits } from './decide-tus.ts';
import { isDataIdle, isTempOrphan } from './decide-sweep.ts';
import { ingestBody } from './ingest-body.ts';
import { checkName, checkTargetFolder, childPath, entryExists, mapWriteError, type ConflictPolicy } from './publish-file.ts';
import { recordDigests } from './record-digests.ts';
import { CHECKSUM_ALGORITHMS, headerInvalid, parseUploadChecksum, uploadIdFromUrl, type ChecksumAlgorithm, type UploadChecksum } from './tus-headers.ts';
import type { UploadLock, UploadLocker } from './upload-lock.ts';
import { isExpired, isGone, isPending, type UploadRecord } from './upload-record.ts';
import { UploadStore, checkpointOf, stagedRef } from './upload-store.ts';

/** The logger a capability is handed (pino's Logger satisfies it). */
export interface UploadLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
  child(bindings: Record<string, unknown>): UploadLogger;
}

export interface TusServiceOptions {
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly store: UploadStore;
  readonly locker: UploadLocker;
  readonly logger: UploadLogger;
  readonly limits: TusLimits;
  /** --max-pending-uploads: unfinished uploads on the server (undefined = no cap). */
  readonly maxPending?: number | undefined;
  /** --max-pending-uploads-client: unfinished uploads per client. */
  readonly maxPendingPerClient?: number | undefined;
  readonly expiryMs: number;
  readonly lockWaitMs: number;
  readonly onConflict: ConflictPolicy;
  readonly dotfiles: 'allow' | 'deny';
  /** Durable progress inside one long PATCH (default 64 MiB). */
  readonly checkpointBytes?: number;
  readonly now?: () => number;
}

/** A request body to write. */
export interface BodyInput {
  readonly body: Readable;
  readonly headers: HeaderBag;
  /** Trailers, readable once the body has ended (checksum-trailer). */
  readonly trailers: () => HeaderBag;
  /** Aborts when the client goes away or the server shuts down. */
  readonly signal: AbortSignal;
}

export interface WriteOutcome {
  readonly record: UploadRecord;
  /** What to answer instead of success; the bytes that could be kept are kept. */
  readonly error: unknown;
  /** Another request took the upload over: cut this connection. */
  readonly takenOver: boolean;
  /** The whole body was read (otherwise close the connection after answering). */
  readonly bodyConsumed: boolean;
}

const DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024;

/** Sweep period: half the expiry, between 1 s and 15 min. */
export function sweepIntervalMs(expiryMs: number): number {
  return Math.min(15 * 60_000, Math.max(1000, Math.floor(expiryMs / 2)));
}

/**
 * The owner recorded with an upload for --max-pending-uploads-client: a hash of the client key
 * (`token:<name>`, `jwt:<sub>`, `ip:<address>`, as src/limits clientKeyOf), so that records do
 * not carry identities or addresses.
 */
export function uploadOwnerOf(clientKey: string): string {
  return createHash('sha256').update(clientKey).digest('base64url').slice(0, 22);
}

export interface SweepResult {
  readonly expired: number;
  readonly orphans: number;
  /** Files or uploads left alone because another live process may own them. */
  readonly kept: number;
}

/** `kill(pid, 0)`: ESRCH means no such process; EPERM means it exists (another user's). */
function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errnoCode(err) !== 'ESRCH';
  }
}

export function notFound(id: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_NOT_FOUND', `no upload ${id.length <= 64 ? id : `${id.slice(0, 64)}…`}`);
}

export class TusService {
  readonly #o: TusServiceOptions;
  readonly #store: UploadStore;
  readonly #now: () => number;
  readonly #checkpointBytes: number;
  /** Uploads whose last PATCH ended cleanly in this process (a PATCH on any other at offset > 0 is a resume). */
  readonly #cleanEnds = new Set<string>();
  /** Background finishing work (assembly, recovery), so shutdown can wait for it. */
  readonly #background = new Set<Promise<unknown>>();
  /** Serialises count-then-insert, so concurrent creations cannot all slip under a cap. */
  #admission: Promise<unknown> = Promise.resolve();

  constructor(options: TusServiceOptions) {
    this.#o = options;
    this.#store = options.store;
    this.#now = options.now ?? Date.now;
    this.#checkpointBytes = options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES;
  }

  get store(): UploadStore { return this.#store; }

  // --- creation --------------------------------------------------------------

  /**
   * §Creation. Checks the target up front (jail, `--on-conflict reject`) so that a client never
   * uploads 50 GB to learn at the end that the name was refused.
   */
  async create(plan: CreationPlan, baseUrl: string, body: BodyInput | undefined, owner: string): Promise<{ record: UploadRecord; outcome: WriteOutcome | undefined }> {
    if (plan.kind === 'final') return { record: await this.#createFinal(plan, baseUrl, owner), outcome: undefined };
    if (plan.kind === 'single') await this.#checkTarget(plan.intent);
    const now = this.#now();
    const record: UploadRecord = {
      owner,
      id: UploadStore.newId(),
      createdAt: now,
      expiresAt: now + this.#o.expiryMs,
      length: plan.length,
      offset: 0,
      metadata: plan.metadata,
      intent: plan.kind === 'single' ? compactIntent(plan.intent) : { folder: '' },
      concat: plan.kind === 'partial' ? 'partial' : null,
      ...(plan.kind === 'partial' ? { concatHeader: 'partial' } : {}),
      state: 'receiving',
    };
    await this.#admit(record);
    this.#event(record, 'created', { length: record.length, deferred: record.length === null, partial: record.concat === 'partial' });
    if (record.length === 0 && plan.kind === 'single') {
      // An empty file is complete at creation.
      const lock = await this.#o.locker.acquire(record.id, { waitMs: this.#o.lockWaitMs });
      try {
        return { record: await this.#finishIfComplete(record), outcome: undefined };
      } finally {
        await lock.release();
      }
    }
    if (!plan.withUpload || body === undefined) return { record, outcome: undefined };
    // §Creation With Upload: "similar rules as for the PATCH request and response apply".
    const outcome = await this.#patchLocked(record.id, body, true);
    return { record: outcome.record, outcome };
  }

  /**
   * Stores a new upload if the caps allow it (--max-pending-uploads-client first: a client at
   * its own cap learns that it is the one to act, by finishing or terminating uploads).
   */
  async #admit(record: UploadRecord): Promise<void> {
    const run = this.#admission.then(async () => {
      const { maxPending, maxPendingPerClient } = this.#o;
      const retryAfter = { 'retry-after': String(Math.ceil(sweepIntervalMs(this.#o.expiryMs) / 1000)) };
      if (maxPendingPerClient !== undefined && record.owner !== undefined && (await this.#store.pendingCount(record.owner)) >= maxPendingPerClient) {
        throw new FerryError('FERRY_ERR_UPLOAD_PENDING_CLIENT', `this client has ${maxPendingPerClient} unfinished uploads (--max-pending-uploads-client); finish or terminate (DELETE) some, or wait for them to expire`, {
          headers: retryAfter, extra: { limit: maxPendingPerClient },
        });
      }
      if (maxPending !== undefined && (await this.#store.pendingCount()) >= maxPending) {
        this.#o.logger.warn({ event: 'pending-cap', limit: maxPending }, 'upload refused: the server holds --max-pending-uploads unfinished uploads');
        throw new FerryError('FERRY_ERR_UPLOAD_PENDING_GLOBAL', `the server holds ${maxPending} unfinished uploads (--max-pending-uploads); try again later`, {
          headers: retryAfter, extra: { limit: maxPending },
        });
      }
      await this.#store.insert(record).catch((err: unknown) => { throw mapWriteError(err); });
    });
    this.#admission = run.catch(() => {});
    await run;
  }

  async #checkTarget(intent: CreationPlan['intent']): Promise<void> {
    const folder = await checkTargetFolder(this.#o.storage, intent.folder, this.#o.dotfiles);
    if (intent.filename !== undefined) checkName(intent.filename, this.#o.dotfiles);
    if (this.#o.onConflict === 'reject' && intent.filename !== undefined) {
      if (await entryExists(this.#o.storage, folder, intent.filename)) {
        throw new FerryError('FERRY_ERR_UPLOAD_CONFLICT', `"${childPath(folder, intent.filename).relative}" exists (--on-conflict reject)`);
      }
    }
  }

  /**
   * §Concatenation: a final upload of partial uploads, in the given order. Each partial is
   * claimed by exactly one final upload (atomically); posting the same list again returns the
   * same final upload, so a client that lost the answer can simply retry.
   */
  async #createFinal(plan: Extract<CreationPlan, { kind: 'final' }>, baseUrl: string, owner: string): Promise<UploadRecord> {
    await this.#checkTarget(plan.intent);
    const ids: string[] = [];
    for (const url of plan.urls) {
      const id = uploadIdFromUrl(url, `${baseUrl}/uploads/`);
      if (id === undefined) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', `"${url}" is not an upload URL of this server`);
      ids.push(id);
    }
    if (new Set(ids).size !== ids.length) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'a partial upload is listed twice');
    const now = this.#now();
    let total = 0;
    let claimedBy: string | undefined;
    for (const id of ids) {
      const part = await this.#store.get(id);
      if (part === undefined) throw new FerryError('FERRY_ERR_UPLOAD_NOT_FOUND', `partial upload ${id} does not exist`);
      const owner = await this.#store.finalOf(id);
      if (owner !== undefined) {
        claimedBy ??= owner;
        if (owner !== claimedBy) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', `partial upload ${id} already belongs to another final upload`);
        continue;
      }
      checkAlive(part, now);
      if (part.concat !== 'partial') throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', `upload ${id} is not a partial upload (Upload-Concat: partial)`);
      if (part.length === null) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', `partial upload ${id} has no length yet`);
      total += part.length;
    }
    if (claimedBy !== undefined) {
      const existing = await this.#store.get(claimedBy);
      if (existing?.parts?.join(' ') !== ids.join(' ')) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'some partial uploads already belong to another final upload');
      if (isGone(existing)) checkAlive(existing, now);
      return existing.state === 'done' ? existing : this.#assemble(existing.id);
    }
    if (this.#o.limits.maxUploadBytes !== undefined && total > this.#o.limits.maxUploadBytes) {
      throw overMaxUploadSize(this.#o.limits.maxUploadBytes, `the partial uploads add up to ${total} bytes`);
    }
    const record: UploadRecord = {
      owner,
      id: UploadStore.newId(),
      createdAt: now,
      expiresAt: now + this.#o.expiryMs,
      length: total,
      offset: 0,
      metadata: plan.metadata,
      intent: compactIntent(plan.intent),
      concat: 'final',
      concatHeader: plan.concatHeader,
      parts: ids,
      state: 'waiting',
    };
    await this.#admit(record);
    const claimed: string[] = [];
    for (const id of ids) {
      if (!(await this.#store.claimPartial(id, record.id))) {
        // Lost a race with another final for the same partials: give back what this one took.
        for (const c of claimed) await this.#store.releasePartial(c);
        await this.#store.put({ ...record, state: 'failed', reason: 'a partial upload was claimed concurrently' });
        throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', `partial upload ${id} already belongs to another final upload`);
      }
      claimed.push(id);
    }
    this.#event(record, 'created', { length: total, final: true, parts: ids.length });
    return this.#assemble(record.id);
  }

  // --- HEAD ------------------------------------------------------------------

  /** The record for HEAD; kicks unfinished background work (e.g. after a restart). */
  async head(id: string): Promise<UploadRecord> {
    const record = await this.#store.get(id);
    if (record === undefined) throw notFound(id);
    checkAlive(record, this.#now());
    if ((record.state === 'assembling' || record.state === 'publishing') && !this.#o.locker.isLocked(id)) {
      this.#inBackground(record.concat === 'final' ? this.#assemble(id) : this.#finishLockedFromScratch(id));
    }
    return record;
  }

  // --- PATCH -----------------------------------------------------------------

  async patch(id: string, input: BodyInput): Promise<WriteOutcome> {
    const early = await this.#store.get(id);
    if (early === undefined) throw notFound(id);
    // Fail fast without taking the lock (415, 410, 403, 409, 413 on the committed state).
    decidePatch(early, input.headers, this.#o.limits, this.#now());
    return this.#patchLocked(id, input, false);
  }

  async #patchLocked(id: string, input: BodyInput, creation: boolean): Promise<WriteOutcome> {
    const takeover = new FerryError('FERRY_ERR_UPLOAD_LOCKED', 'another request took this upload over');
    const stop = new AbortController();
    const lock = await this.#o.locker.acquire(id, {
      waitMs: this.#o.lockWaitMs,
      signal: input.signal,
      onReleaseRequested: () => { stop.abort(takeover); },
    }).catch((err: unknown) => {
      if (isFerryError(err) && err.code === 'FERRY_ERR_UPLOAD_LOCKED') publish<UploadEvent>(channels.upload, { kind: 'lock-conflict', protocol: 'tus' });
      throw err;
    });
    let outcome: WriteOutcome;
    try {
      const record = await this.#store.get(id);
      if (record === undefined) throw notFound(id);
      const plan = creation
        ? { offset: 0, declareLength: undefined, maxBytes: record.length ?? this.#o.limits.maxUploadBytes ?? Number.MAX_SAFE_INTEGER, length: record.length, checksum: parseUploadChecksum(header(input.headers, 'upload-checksum')), checksumInTrailer: false }
        : decidePatch(record, input.headers, this.#o.limits, this.#now());
      if (record.state !== 'receiving') {
        // Complete already (done, or publishing after a transient failure): nothing to write;
        // a PATCH at the final offset is acknowledged and retries a pending publish.
        return { record: await this.#finishIfComplete(record), error: undefined, takenOver: false, bodyConsumed: false };
      }
      if (!creation && record.offset > 0 && !this.#cleanEnds.has(id)) this.#event(record, 'resumed', { offset: record.offset });
      this.#cleanEnds.delete(id);
      outcome = await this.#writeChunk(record, plan, input, AbortSignal.any([stop.signal, input.signal]), stop.signal);
      if (outcome.error === undefined && outcome.bodyConsumed) this.#cleanEnds.add(id);
      if (outcome.error === undefined) {
        try {
          outcome = { ...outcome, record: await this.#finishIfComplete(outcome.record) };
        } catch (err) {
          outcome = { ...outcome, error: err };
        }
      }
    } finally {
      await lock.release();
    }
    const r = outcome.record;
    if (r.concat === 'partial' && r.length !== null && r.offset === r.length) {
      const finalId = await this.#store.finalOf(r.id);
      if (finalId !== undefined) this.#inBackground(this.#assemble(finalId));
    }
    return outcome;
  }

  /**
   * Writes one body at the record's offset and commits what may be kept:
   * - complete and (no checksum, or the checksum matches): all of it;
   * - checksum mismatch / unverifiable: nothing (§Checksum: "the uploaded chunk MUST be
   *   discarded, and the upload and its offset MUST NOT be updated");
   * - cut short (client gone, taken over, disk full): all that reached the disk (§PATCH: "The
   *   Server SHOULD always attempt to store as much of the received data as possible");
   * - past the length: nothing beyond the last checkpoint.
   */
  async #writeChunk(record: UploadRecord, plan: ReturnType<typeof decidePatch>, input: BodyInput, signal: AbortSignal, takeoverSignal: AbortSignal): Promise<WriteOutcome> {
    const id = record.id;
    let current: UploadRecord = { ...record, length: plan.length };
    let writer: StagedWriter;
    try {
      writer = await this.#store.staging.open(id, checkpointOf(record));
    } catch (err) {
      const durable = isFerryError(err) && err.code === 'FERRY_ERR_UPLOAD_OFFSET_MISMATCH' ? durableOf(err) : undefined;
      if (durable === undefined) throw mapWriteError(err);
      // The storage lost acknowledged bytes (it lied about a sync): report what is really there.
      current = { ...current, offset: durable, staged: { offset: durable } };
      await this.#store.put(current);
      this.#store.setDigest(id, undefined);
      const error = new FerryError('FERRY_ERR_UPLOAD_OFFSET_MISMATCH', `only ${durable} bytes are stored`, { headers: { 'upload-offset': String(durable) } });
      return { record: current, error, takenOver: false, bodyConsumed: false };
    }
    publish(channels.uploadActive, { delta: 1 });
    try {
      const committed = this.#store.digest(id) ?? (record.offset === 0 ? this.#store.digests.empty() : undefined);
      const running: RunningDigest | undefined = committed?.offset === record.offset ? committed.fork() : undefined;
      const chunkDigests = new Map<ChecksumAlgorithm, Digester>();
      if (plan.checksum !== undefined) chunkDigests.set(plan.checksum.algorithm, createDigester(plan.checksum.algorithm));
      else if (plan.checksumInTrailer) for (const a of CHECKSUM_ALGORITHMS) chunkDigests.set(a, createDigester(a));
      const verify = chunkDigests.size > 0;
      const result = await ingestBody({
        writer,
        maxBytes: plan.maxBytes,
        tooLarge: () => tooLarge(plan.length ?? plan.maxBytes + record.offset, 'the body passes the upload length'),
        body: input.body,
        signal,
        observe: (chunk) => {
          for (const d of chunkDigests.values()) d.update(chunk);
          return running?.update(chunk);
        },
        // A chunk with a checksum is all-or-nothing: no checkpoints inside it.
        ...(verify ? {} : {
          checkpoint: {
            everyBytes: this.#checkpointBytes,
            run: async (commit) => {
              // Taken now, with the commit: the writes that follow are not part of what it claims.
              const snapshot = running?.snapshot();
              const cp = await commit;
              current = { ...current, offset: cp.offset, staged: cp, expiresAt: this.#now() + this.#o.expiryMs, dataSyncedAt: Date.now() };
              await this.#store.put(current);
              if (snapshot !== undefined) this.#store.setDigest(id, snapshot);
            },
          },
        }),
      });
      const takenOver = takeoverSignal.aborted;
      let error: unknown = result.error;
      const checkpointed = current.offset - record.offset;
      let keep = result.bytesWritten;
      if (result.complete) {
        if (verify) {
          const expected = plan.checksum ?? trailerChecksum(input.trailers());
          if (expected === undefined) {
            error = headerInvalid('Trailer announced Upload-Checksum but no such trailer arrived');
            keep = checkpointed;
          } else {
            const actual = chunkDigests.get(expected.algorithm)!.digest();
            if (actual.length !== expected.digest.length || !timingSafeEqual(actual, expected.digest)) {
              error = new FerryError('FERRY_ERR_UPLOAD_CHECKSUM_MISMATCH', `the ${expected.algorithm} checksum of the chunk does not match; the chunk was discarded`, { headers: { 'upload-offset': String(record.offset) } });
              keep = checkpointed;
              this.#event(record, 'checksum-mismatch', { algorithm: expected.algorithm, offset: record.offset });
            }
          }
        }
      } else if (verify || (isFerryError(error) && error.code === 'FERRY_ERR_UPLOAD_TOO_LARGE')) {
        keep = checkpointed;
      }
      if (error !== undefined && !isFerryError(error)) error = mapWriteError(error);
      const newOffset = record.offset + keep;
      // Back to the last commit (which is where `keep` ends when not everything is kept).
      if (keep < result.bytesWritten) await writer.rollback().catch(() => {});
      const lengthChanged = plan.declareLength !== undefined && record.length === null;
      if (newOffset !== current.offset || lengthChanged) {
        try {
          const cp = await writer.commit();
          current = { ...current, offset: cp.offset, staged: cp, expiresAt: this.#now() + this.#o.expiryMs, dataSyncedAt: Date.now() };
          await this.#store.put(current);
          if (keep === result.bytesWritten && running !== undefined) this.#store.setDigest(id, running.snapshot());
        } catch (err) {
          // The new offset is not durable: fall back to what is.
          // (The staged bytes past it are dropped when the upload is opened at its checkpoint next.)
          current = (await this.#store.get(id)) ?? record;
          error ??= mapWriteError(err);
          if (!isFerryError(error)) error = mapWriteError(error);
        }
      } else if (keep === result.bytesWritten && running !== undefined) {
        this.#store.setDigest(id, running.snapshot());
      }
      if (!result.complete && !takenOver && error !== undefined) {
        const why = isFerryError(error) ? error.code : errnoCode(error) ?? String(error);
        this.#log(record).info({ event: 'interrupted', offset: current.offset, bytes: keep, reason: why }, 'upload request ended early');
      }
      if (takenOver) this.#log(record).info({ event: 'taken-over', offset: current.offset }, 'upload request handed the upload to a newer request');
      return { record: current, error, takenOver, bodyConsumed: result.complete };
    } catch (err) {
      return { record: current, error: mapWriteError(err), takenOver: false, bodyConsumed: false };
    } finally {
      publish(channels.uploadActive, { delta: -1 });
      await writer.close().catch(() => {});
    }
  }

  // --- finishing -------------------------------------------------------------

  /** Publishes a complete non-concatenation upload (caller holds the lock). */
  async #finishIfComplete(record: UploadRecord): Promise<UploadRecord> {
    if (record.concat !== null || record.length === null || record.offset !== record.length) return record;
    if (record.state !== 'receiving' && record.state !== 'publishing') return record;
    return this.#finalize(record);
  }

  async #finishLockedFromScratch(id: string): Promise<void> {
    const lock = await this.#o.locker.acquire(id, { waitMs: 0, polite: true });
    try {
      const record = await this.#store.get(id);
      if (record !== undefined) await this.#finishIfComplete(record);
    } finally {
      await lock.release();
    }
  }

  /**
   * Finalisation (issue 4 §4): digests (computed while receiving, else read once), the optional
   * `sha256` metadata check, the jail, the conflict policy, the atomic publish, the digests
   * recorded for Repr-Digest and zips. Caller holds the lock.
   */
  async #finalize(record: UploadRecord): Promise<UploadRecord> {
    const id = record.id;
    const length = record.length ?? record.offset;
    const log = this.#log(record);
    if (record.state === 'publishing' && record.target !== undefined) {
      const recovered = await this.#recoverPublish(record);
      if (recovered !== undefined) return recovered;
    }
    const state = this.#store.digest(id);
    let digest: DigestResult | undefined = state?.offset === length ? await state.result().catch(() => undefined) : undefined;
    if (digest === undefined) {
      log.info({ event: 'digest-from-disk', bytes: length }, 'computing the upload digests from the stored data (no running state, e.g. after a restart)');
      digest = await this.#store.readDigest(stagedRef({ ...record, offset: length }));
    }
    const { sha256, crc32 } = digest;
    if (record.intent.sha256 !== undefined && record.intent.sha256 !== sha256) {
      await this.#fail(record, 'sha256 metadata does not match the uploaded data');
      throw new FerryError('FERRY_ERR_UPLOAD_FILE_DIGEST_MISMATCH', `the uploaded data has sha256 ${sha256}, the metadata said ${record.intent.sha256}; nothing was published`);
    }
    let publishing: UploadRecord = { ...record, offset: length, state: 'publishing' };
    await this.#store.put(publishing);
    let result;
    let folder;
    try {
      folder = await checkTargetFolder(this.#o.storage, record.intent.folder, this.#o.dotfiles);
      const name = record.intent.filename ?? id;
      checkName(name, this.#o.dotfiles);
      const target = folder;
      result = await this.#o.storage.publish(stagedRef(publishing), childPath(folder, name), this.#o.onConflict, {
        beforeAttempt: async (candidate) => {
          publishing = { ...publishing, target: childPath(target, candidate).relative };
          await this.#store.put(publishing);
        },
      });
    } catch (err) {
      const mapped = mapWriteError(err);
      if (isFerryError(mapped) && mapped.statusCode < 500) {
        await this.#fail(record, mapped.message);
      } else {
        // Transient (disk full, I/O): stays `publishing`; a later request or restart retries.
        log.warn({ event: 'publish-retry', err: mapped }, 'publishing the upload failed; it will be retried');
      }
      throw mapped;
    }
    const rel = childPath(folder, result.name);
    try {
      await recordDigests(this.#o.meta, rel.relative, result.stat, sha256, crc32);
    } catch (err) {
      log.warn({ err }, 'could not record the digests of the uploaded file');
    }
    const done: UploadRecord = { ...publishing, state: 'done', target: rel.relative };
    await this.#store.put(done);
    this.#store.setDigest(id, undefined);
    this.#cleanEnds.delete(id);
    this.#event(done, 'finished', { bytes: length, target: rel.relative, sha256, replaced: result.replaced, durationMs: this.#now() - record.createdAt });
    return done;
  }

  /**
   * A crash after the staged upload became the file, before the record said so: the staged
   * upload is gone and a file stands at the recorded target. (A crash between the storage's own
   * steps, e.g. link(2) and the removal of the staged file, is finished by `storage.publish`.)
   */
  async #recoverPublish(record: UploadRecord): Promise<UploadRecord | undefined> {
    if (record.target === undefined) return undefined;
    let target;
    try {
      target = parseDecodedPath(record.target);
    } catch {
      return undefined;
    }
    if ((await this.#o.storage.entryType(target).catch(() => undefined)) !== 'file') return undefined;
    try {
      const probe = await this.#store.staging.read(stagedRef({ ...record, offset: record.length ?? record.offset }));
      probe.destroy();
      return undefined; // still staged: publish it (again)
    } catch (err) {
      if (!isFerryError(err) || err.code !== 'FERRY_ERR_UPLOAD_OFFSET_MISMATCH') return undefined;
    }
    const done: UploadRecord = { ...record, state: 'done', offset: record.length ?? record.offset, target: target.relative };
    await this.#store.put(done);
    this.#event(done, 'finished', { bytes: done.offset, target: done.target, recovered: true });
    return done;
  }

  async #fail(record: UploadRecord, reason: string): Promise<void> {
    await this.#store.removeData(record.id).catch(() => {});
    await this.#store.put({ ...record, state: 'failed', reason });
    this.#cleanEnds.delete(record.id);
    this.#event(record, 'failed', { reason });
  }

  /**
   * Concatenation: `storage.staging.concat` makes the partials' staged uploads the final's (local
   * disk: the first by rename, no copy, the others appended; an object store: server-side
   * copies); a crash during it leaves the record `assembling` and the next attempt calls it
   * again. Then the final is published like any upload and the partial uploads are consumed.
   */
  async #assemble(finalId: string): Promise<UploadRecord> {
    const lock = await this.#o.locker.acquire(finalId, { waitMs: this.#o.lockWaitMs, polite: true });
    try {
      let record = await this.#store.get(finalId);
      if (record === undefined) throw notFound(finalId);
      if (record.state === 'done' || isGone(record)) return record;
      if (record.state === 'publishing') return await this.#finalize(record);
      const ids = record.parts ?? [];
      const parts: UploadRecord[] = [];
      let allComplete = true;
      let aliveUntil = record.expiresAt;
      for (const id of ids) {
        const part = await this.#store.get(id);
        if (part === undefined || isGone(part) || (record.state === 'waiting' && isExpired(part, this.#now()))) {
          await this.#fail(record, `partial upload ${id} is gone`);
          throw new FerryError('FERRY_ERR_UPLOAD_GONE', `partial upload ${id} is gone`);
        }
        if (part.offset !== part.length) allComplete = false;
        aliveUntil = Math.max(aliveUntil, part.expiresAt);
        parts.push(part);
      }
      if (!allComplete && record.state === 'waiting') {
        // concatenation-unfinished: the final lives as long as its partial uploads do.
        if (aliveUntil !== record.expiresAt) { record = { ...record, expiresAt: aliveUntil }; await this.#store.put(record); }
        return record;
      }
      record = { ...record, state: 'assembling' };
      await this.#store.put(record);
      // The final's digests continue from the first part's running state over the others'
      // bytes (read once before they are taken in), so no read of the whole file is needed.
      const first = parts[0];
      const d = first === undefined ? undefined : this.#store.digest(first.id);
      let running: RunningDigest | undefined = first !== undefined && d?.offset === (first.length ?? 0) ? d.fork() : undefined;
      const bytes = parts.reduce((n, p) => n + (p.length ?? 0), 0);
      const partLocks: UploadLock[] = [];
      let staged: StagedCheckpoint;
      try {
        for (const part of parts) partLocks.push(await this.#o.locker.acquire(part.id, { waitMs: this.#o.lockWaitMs }));
        for (const part of parts.slice(1)) if (running !== undefined) running = await this.#digestPart(part, running);
        // One call: the storage takes the parts in (local disk: the first by rename, the others
        // appended; an object store: server-side part copies). Called again after a crash, it
        // finishes what an interrupted call began.
        staged = await this.#store.staging.concat(finalId, parts.map((p) => stagedRef(p)));
      } catch (err) {
        throw mapWriteError(err);
      } finally {
        for (const l of partLocks) await l.release();
      }
      if (staged.offset !== bytes) throw new FerryError('FERRY_ERR_INTERNAL', `the assembled upload has ${staged.offset} bytes, its parts ${bytes}`);
      this.#store.setDigest(finalId, running?.snapshot());
      record = { ...record, offset: bytes, ...(staged === undefined ? {} : { staged }), state: 'publishing' };
      await this.#store.put(record);
      const done = await this.#finalize(record);
      for (const part of parts) {
        await this.#store.removeData(part.id).catch(() => {});
        await this.#store.put({ ...part, state: 'consumed' });
      }
      return done;
    } finally {
      await lock.release();
    }
  }

  /**
   * Continues the final's running digest over a part's staged bytes, read once before they are
   * appended (so the final's digests need no read of the whole file at the end). undefined when
   * the part cannot be read (taken in already by an interrupted assembly).
   */
  async #digestPart(part: UploadRecord, running: RunningDigest): Promise<RunningDigest | undefined> {
    try {
      const stream = await this.#store.staging.read(stagedRef(part));
      for await (const chunk of stream) {
        const wait = running.update(chunk as Buffer);
        if (wait !== undefined) await wait;
      }
      return running;
    } catch {
      return undefined;
    }
  }

  // --- DELETE ----------------------------------------------------------------

  /** §Termination: frees the upload; later requests get 410. A final takes its partials with it. */
  async terminate(id: string): Promise<void> {
    const early = await this.#store.get(id);
    if (early === undefined) throw notFound(id);
    checkAlive(early, this.#now());
    const lock = await this.#o.locker.acquire(id, { waitMs: this.#o.lockWaitMs });
    try {
      const record = await this.#store.get(id);
      if (record === undefined) throw notFound(id);
      if (isGone(record)) checkAlive(record, this.#now());
      await this.#store.removeData(id);
      await this.#store.put({ ...record, state: 'terminated' });
      this.#cleanEnds.delete(id);
      for (const partId of record.parts ?? []) {
        const part = await this.#store.get(partId);
        await this.#store.removeData(partId);
        if (part !== undefined && !isGone(part)) await this.#store.put({ ...part, state: 'terminated' });
      }
      this.#event(record, 'terminated', {});
    } finally {
      await lock.release();
    }
  }

  // --- hygiene ---------------------------------------------------------------

  /**
   * Removes expired unfinished uploads (their data, and a tombstone so they answer 410), data
   * files nobody owns and PUT temp files left by a crash; repairs the pending-upload index.
   * Uploads being written by this process are skipped (the writer holds the lock); files that
   * another live process sharing the state dir may be writing are left alone (decide-sweep.ts).
   */
  async sweep(activeTempIds: ReadonlySet<string>): Promise<SweepResult> {
    const now = this.#now();
    let expired = 0;
    let kept = 0;
    // What the staging area holds, with when each was last written (listed once per sweep).
    const staged = new Map<string, number>();
    for await (const e of this.#store.staging.list()) staged.set(e.id, e.modifiedMs);
    const live = new Set<string>();
    for await (const record of this.#store.all()) {
      if (isExpired(record, now)) {
        const r = await this.#expire(record.id, staged.get(record.id));
        if (r === 'expired') { expired++; staged.delete(record.id); continue; }
        if (r === 'in-use') kept++;
      }
      if (isPending(record)) live.add(record.id);
    }
    await this.#store.reconcilePending(live);
    let orphans = 0;
    for (const [id, modifiedMs] of staged) {
      if (/^[A-Za-z0-9_-]{22}$/.test(id)) {
        if (!live.has(id) && (await this.#removeOrphan(id))) orphans++;
        continue;
      }
      if (!id.startsWith('put-')) continue;
      const orphan = isTempOrphan({
        name: id, mtimeMs: modifiedMs, nowMs: Date.now(), ownPid: process.pid, active: activeTempIds.has(id), isProcessAlive: processExists,
      });
      if (!orphan) { kept++; continue; }
      await this.#store.staging.remove(id).catch(() => {});
      orphans++;
    }
    return { expired, orphans, kept };
  }

  /** A data file whose upload is gone or finished (checked again under the lock: it may be new). */
  async #removeOrphan(id: string): Promise<boolean> {
    let lock: UploadLock;
    try {
      lock = await this.#o.locker.acquire(id, { waitMs: 0, polite: true });
    } catch {
      return false;
    }
    try {
      const record = await this.#store.get(id);
      if (record !== undefined && !isGone(record) && record.state !== 'done') return false;
      // A final upload that took a partial's data keeps it under its own id; a done partial has none.
      await this.#store.staging.remove(id).catch(() => {});
      return true;
    } finally {
      await lock.release();
    }
  }

  async #expire(id: string, dataModifiedMs: number | undefined): Promise<'expired' | 'in-use' | 'not-expired'> {
    let lock: UploadLock;
    try {
      lock = await this.#o.locker.acquire(id, { waitMs: 0, polite: true });
    } catch {
      return 'in-use';
    }
    try {
      const record = await this.#store.get(id);
      if (record === undefined || !isExpired(record, this.#now())) return 'not-expired';
      // The lock is this process's only: another one sharing the state dir may be writing it.
      if (!isDataIdle(dataModifiedMs, record.dataSyncedAt, Date.now())) return 'in-use';
      if (record.concat === 'final' && record.state === 'waiting') {
        // Lives as long as its partial uploads: re-check them.
        let until = record.expiresAt;
        for (const partId of record.parts ?? []) {
          const part = await this.#store.get(partId);
          if (part !== undefined && !isGone(part)) until = Math.max(until, part.expiresAt);
        }
        if (until > this.#now()) { await this.#store.put({ ...record, expiresAt: until }); return 'not-expired'; }
        for (const partId of record.parts ?? []) await this.#store.releasePartial(partId);
      }
      await this.#store.removeData(id);
      await this.#store.put({ ...record, state: 'expired' });
      this.#cleanEnds.delete(id);
      this.#event(record, 'expired', { offset: record.offset });
      return 'expired';
    } finally {
      await lock.release();
    }
  }

  /** After a restart: finish what was complete but not yet published, resume assemblies. */
  async recover(): Promise<void> {
    for await (const record of this.#store.all()) {
      if (record.state === 'assembling' || (record.state === 'publishing' && record.concat === 'final')) {
        await this.#assemble(record.id).catch((err: unknown) => { this.#log(record).warn({ err }, 'could not resume the assembly of a final upload'); });
      } else if (record.concat === null && (record.state === 'publishing' || (record.state === 'receiving' && record.length !== null && record.offset === record.length))) {
        await this.#finishLockedFromScratch(record.id).catch((err: unknown) => { this.#log(record).warn({ err }, 'could not finish an upload after a restart'); });
      }
    }
  }

  #inBackground(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => { this.#o.logger.warn({ err }, 'background upload work failed'); });
    this.#background.add(p);
    void p.finally(() => { this.#background.delete(p); });
  }

  /** Waits for background work (assembly, recovery) to settle. */
  async drain(): Promise<void> {
    while (this.#background.size > 0) await Promise.allSettled([...this.#background]);
  }

  #log(record: UploadRecord): UploadLogger {
    return this.#o.logger.child({ uploadId: record.id });
  }

  #event(record: UploadRecord, kind: UploadEvent['kind'], fields: Record<string, unknown>): void {
    publish<UploadEvent>(channels.upload, { kind, protocol: 'tus' });
    const log = this.#log(record);
    const msg = `upload ${kind}`;
    if (kind === 'failed') log.warn({ event: kind, ...fields }, msg);
    else log.info({ event: kind, ...fields }, msg);
  }
}

/** `details.durable` of a staged upload that holds fewer bytes than its checkpoint (types.ts Staging.open). */
function durableOf(err: FerryError): number | undefined {
  const details = err.extra.details;
  const durable = typeof details === 'object' && details !== null ? (details as { durable?: unknown }).durable : undefined;
  return typeof durable === 'number' && Number.isSafeInteger(durable) && durable >= 0 ? durable : undefined;
}

function trailerChecksum(trailers: HeaderBag): UploadChecksum | undefined {
  return parseUploadChecksum(header(trailers, 'upload-checksum'));
}

function compactIntent(intent: CreationPlan['intent']): UploadRecord['intent'] {
  return {
    folder: intent.folder,
    ...(intent.filename === undefined ? {} : { filename: intent.filename }),
    ...(intent.sha256 === undefined ? {} : { sha256: intent.sha256 }),
  };
}
