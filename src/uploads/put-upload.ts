/**
 * Plain streaming `PUT /files/{path}` (issue 4 §5, RFC 9110 §9.3.4): the body goes to a staged
 * upload (`storage.staging`; on local disk a temp file in the state dir), is checked against the size limit and any `Content-Digest` /
 * `Repr-Digest` (RFC 9530), made durable, and only then published at the path in one atomic
 * step, so the file appears whole or not at all. `If-None-Match: *` refuses to replace an
 * existing file (RFC 9110 §13.1.2), also against a file created concurrently (link(2) EEXIST).
 * A PUT names its target exactly: it replaces an existing file (201 new / 204 replaced);
 * `--on-conflict` is for tus uploads, whose names come from metadata.
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import { FerryError, errnoCode, isFerryError } from '../core/errors.ts';
import { channels, publish, type UploadEvent } from '../core/channels.ts';
import type { SafePath } from '../core/safe-path.ts';
import type { FileStat, StagedCheckpoint, StagedWriter, Storage } from '../storage/index.ts';
import { evaluatePreconditions, generateEtag } from '../http/index.ts';
import type { MetaStore } from '../meta/index.ts';
import { contentLength, header, tooLarge, type HeaderBag } from './decide-tus.ts';
import { parseDigestFields, VERIFIABLE_DIGESTS, type DigestAlgorithm } from './digest-fields.ts';
import { ingestBody } from './ingest-body.ts';
import { checkName, checkTargetFolder, entryExists, mapWriteError } from './publish-file.ts';
import { recordDigests } from './record-digests.ts';
import type { UploadLogger } from './tus-service.ts';
import { UploadStore } from './upload-store.ts';
import type { Readable } from 'node:stream';

export interface PutOptions {
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly store: UploadStore;
  readonly logger: UploadLogger;
  readonly maxUploadBytes: number | undefined;
  readonly dotfiles: 'allow' | 'deny';
}

export interface PutRequest {
  readonly target: SafePath;
  readonly headers: HeaderBag;
  /** undefined when the request has no body (an empty file). */
  readonly body: Readable | undefined;
  readonly signal: AbortSignal;
}

export interface PutResult {
  readonly created: boolean;
  readonly size: number;
  readonly sha256: string;
  /** ETag of the stored file (the one downloads send). */
  readonly etag: string | undefined;
}

/** Checks that need no body: limit by Content-Length (413 before reading), encoding, names, If-None-Match. */
export async function precheckPut(o: PutOptions, req: PutRequest): Promise<void> {
  const encoding = header(req.headers, 'content-encoding');
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new FerryError('FERRY_ERR_UPLOAD_ENCODING_UNSUPPORTED', `Content-Encoding ${encoding} is not accepted; send the bytes as they are to be stored`);
  }
  const cl = contentLength(req.headers);
  if (cl !== undefined && o.maxUploadBytes !== undefined && cl > o.maxUploadBytes) {
    throw tooLarge(o.maxUploadBytes, `Content-Length ${cl} is larger than --max-upload-size`);
  }
  if (req.target.segments.length === 0) throw new FerryError('FERRY_ERR_PATH_INVALID', 'PUT needs a file path');
  parseDigestFields(header(req.headers, 'content-digest'));
  parseDigestFields(header(req.headers, 'repr-digest'));
  const name = req.target.segments.at(-1)!;
  checkName(name, o.dotfiles);
  const folderText = req.target.segments.slice(0, -1).join('/');
  const folder = await checkTargetFolder(o.storage, folderText, o.dotfiles);
  await checkPutPreconditions(o, req.target, folder, req.headers);
}

/**
 * RFC 9110 §13.2.2 for a PUT, against the file now at the target (checked before the body is
 * read, and again just before publishing): If-Match (strong ETag comparison, or `*`: the file
 * must exist), If-Unmodified-Since, If-None-Match (`*`: the file must not exist; a listed tag
 * must not match). A false condition is 412 and nothing is stored. ETags are the ones
 * downloads send (src/http generateEtag).
 */
async function checkPutPreconditions(o: PutOptions, target: SafePath, folder: SafePath, headers: HeaderBag): Promise<void> {
  const conditional = {
    ifMatch: header(headers, 'if-match'),
    ifNoneMatch: header(headers, 'if-none-match'),
    ifUnmodifiedSince: header(headers, 'if-unmodified-since'),
  };
  if (conditional.ifMatch === undefined && conditional.ifNoneMatch === undefined && conditional.ifUnmodifiedSince === undefined) return;
  let current: FileStat | undefined;
  try {
    current = await o.storage.stat(target);
  } catch (err) {
    if (!isFerryError(err) || err.code !== 'FERRY_ERR_PATH_NOT_FOUND') throw err;
    // Something the jail hides is there (a link out of the root): never replaced.
    if (await entryExists(o.storage, folder, target.segments.at(-1)!)) throw err;
  }
  if (current === undefined) {
    // §13.1.1: "the condition is false if the origin server has no current representation".
    if (conditional.ifMatch !== undefined) throw new FerryError('FERRY_ERR_PRECONDITION_FAILED', 'the file does not exist (If-Match)');
    return;
  }
  const result = evaluatePreconditions('PUT', conditional, { etag: generateEtag(current), lastModifiedMs: current.mtimeMs });
  if (result.kind !== 'proceed') throw new FerryError('FERRY_ERR_PRECONDITION_FAILED', `the file does not satisfy ${result.by === 'if-none-match' ? 'If-None-Match' : result.by === 'if-match' ? 'If-Match' : 'If-Unmodified-Since'}`);
}

/**
 * Receives, verifies and publishes. Throws the FerryError to answer; the staged body never
 * outlives it. `activeTemps` holds the staged ids of the PUTs in progress (the sweeper leaves them alone).
 */
export async function receivePut(o: PutOptions, req: PutRequest, activeTemps: Set<string>): Promise<PutResult> {
  const started = Date.now();
  const log = o.logger.child({ upload: 'put', path: req.target.relative });
  const temp = UploadStore.newTempId();
  activeTemps.add(temp);
  let published = false;
  /** Something was staged (the staging accepted the upload): removed unless published. */
  let staged = false;
  publish(channels.uploadActive, { delta: 1 });
  try {
    const wanted = new Map<DigestAlgorithm, Buffer>([...parseDigestFields(header(req.headers, 'content-digest')), ...parseDigestFields(header(req.headers, 'repr-digest'))]);
    const digest = o.store.digests.empty().fork();
    const extra = new Map<DigestAlgorithm, Hash>();
    for (const alg of wanted.keys()) if (alg !== 'sha-256') extra.set(alg, createHash(VERIFIABLE_DIGESTS[alg]));
    const writer: StagedWriter = await o.store.staging.open(temp, undefined).catch((err: unknown) => { throw mapWriteError(err); });
    staged = true;
    let size = 0;
    try {
      if (req.body !== undefined) {
        const limit = o.maxUploadBytes ?? Number.MAX_SAFE_INTEGER;
        const result = await ingestBody({
          writer, maxBytes: limit, body: req.body, signal: req.signal,
          tooLarge: () => tooLarge(limit, 'the body passed --max-upload-size'),
          observe: (chunk) => { for (const h of extra.values()) h.update(chunk); return digest.update(chunk); },
        });
        if (!result.complete) throw isFerryError(result.error) ? result.error : mapWriteError(result.error ?? new FerryError('FERRY_ERR_UPLOAD_INCOMPLETE'));
        size = result.bytesWritten;
      }
      const cl = contentLength(req.headers);
      if (cl !== undefined && cl !== size) throw new FerryError('FERRY_ERR_UPLOAD_INCOMPLETE', `received ${size} of ${cl} bytes`);
      let checkpoint: StagedCheckpoint | undefined;
      const { sha256, crc32 } = await digest.snapshot().result().catch(async () => {
        checkpoint = await writer.commit();
        return o.store.readDigest({ id: temp, checkpoint });
      });
      for (const [alg, expected] of wanted) {
        const actual = alg === 'sha-256' ? Buffer.from(sha256, 'hex') : extra.get(alg)!.digest();
        if (actual.length !== expected.length || !timingSafeEqual(actual, expected)) {
          throw new FerryError('FERRY_ERR_UPLOAD_DIGEST_MISMATCH', `the body does not match its ${alg} digest; nothing was stored`);
        }
      }
      checkpoint ??= await writer.commit().catch((err: unknown) => { throw mapWriteError(err); });
      await writer.close();
      const folder = await checkTargetFolder(o.storage, req.target.segments.slice(0, -1).join('/'), o.dotfiles);
      // Again, now that the body is in: the file may have changed while it streamed.
      await checkPutPreconditions(o, req.target, folder, req.headers);
      const noClobber = header(req.headers, 'if-none-match')?.trim() === '*';
      const res = await o.storage.publish({ id: temp, checkpoint }, req.target, noClobber ? 'no-clobber' : 'overwrite', { signal: req.signal });
      published = true;
      let etag: string | undefined;
      try {
        etag = generateEtag(res.stat);
        await recordDigests(o.meta, req.target.relative, res.stat, sha256, crc32);
      } catch (err) {
        log.warn({ err }, 'could not record the digests of the uploaded file');
      }
      publish<UploadEvent>(channels.upload, { kind: 'finished', protocol: 'put' });
      log.info({ event: 'finished', bytes: size, sha256, replaced: res.replaced, durationMs: Date.now() - started }, 'upload finished');
      return { created: !res.replaced, size, sha256, etag };
    } finally {
      await writer.close().catch(() => {});
    }
  } catch (err) {
    publish<UploadEvent>(channels.upload, { kind: 'failed', protocol: 'put' });
    const reason = isFerryError(err) ? err.code : errnoCode(err) ?? 'error';
    log.info({ event: 'failed', reason, durationMs: Date.now() - started }, 'upload failed; nothing was published');
    throw mapWriteError(err);
  } finally {
    publish(channels.uploadActive, { delta: -1 });
    if (staged && !published) await o.store.staging.remove(temp).catch(() => {});
    activeTemps.delete(temp);
  }
}
