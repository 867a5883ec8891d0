/**
 * A small tus 1.0.0 client on undici (the engine behind `ferry put`): creation, resumable
 * PATCHes with a checksum each (checksum extension), parallel parts through the concatenation
 * extension when the server announces it, retries with backoff, progress events, and a resume
 * state in a state folder. The upload URLs are the only thing the state must remember; the
 * offsets always come from the server (HEAD), which is the source of truth in tus.
 *
 * Protocol: https://tus.io/protocols/resumable-upload (1.0.0).
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { sleep } from '../core/abort.ts';
import { FerryError } from '../core/errors.ts';
import type { TransferEvent } from './events.ts';
import { SpeedMeter } from './events.ts';
import { createAgent, createRequestIdentity, headerValue, redactUrl, send, type ClientResponse, type RequestIdentity } from './http-client.ts';
import { createTokenBucket, unlimited, type RateLimiter } from './rate-limiter.ts';
import { describeNetworkError, isCode, judgeFailure, localIoError, remoteStatusError, RemoteStatusError } from './remote-errors.ts';
import { writeResumeStateFile } from './state-file.ts';
import { backoffDelayMs, isRetryableNetworkError } from './retry-policy.ts';

export const TUS_VERSION = '1.0.0';
export const MAX_PARALLEL = 16;
const MIB = 1024 * 1024;
/** Parts smaller than this are not worth their own upload. */
const MIN_PART_BYTES = 4 * MIB;

export interface UploadOptions {
  readonly file: string;
  /** The tus creation URL, e.g. `http://host/uploads/`. */
  readonly endpoint: string | URL;
  /** Target folder on the server (`path` metadata). */
  readonly folder?: string;
  /** Target file name (`filename` metadata); default the local name. */
  readonly name?: string;
  /** Parallel partial uploads joined by concatenation (1..16). Default 1. */
  readonly parallel?: number;
  /** Bytes per PATCH (each carries its own checksum). Default 8 MiB. */
  readonly chunkBytes?: number;
  /** `Upload-Checksum` algorithm: auto = sha256 if offered, else sha1, else none. */
  readonly checksum?: 'auto' | 'sha256' | 'sha1' | 'none';
  /** Whole-file sha-256 if already known (skips hashing; the server verifies it). */
  readonly sha256?: string;
  readonly headers?: readonly (readonly [string, string])[];
  readonly limitRateBytesPerSec?: number;
  readonly retries?: number;
  readonly retryBaseMs?: number;
  readonly retryMaxMs?: number;
  readonly maxRetryAfterMs?: number;
  readonly idleTimeoutMs?: number;
  readonly connectTimeoutMs?: number;
  /** Folder for resume states (one small JSON file per upload). */
  readonly stateDir: string;
  readonly progressIntervalMs?: number;
  readonly signal?: AbortSignal;
  readonly onEvent?: (event: TransferEvent) => void;
  readonly dispatcher?: Dispatcher;
}

export interface UploadResult {
  /** The upload resource (the final one when concatenated). */
  readonly uploadUrl: string;
  /** Where the server published the file, when it says (`Ferry-File`), else null. */
  readonly fileUrl: string | null;
  readonly sizeBytes: number;
  /** Whole-file sha-256 sent for the server to verify, when known. */
  readonly sha256: string | null;
  /** Bytes the server already had from an earlier run. */
  readonly resumedBytes: number;
  readonly durationMs: number;
}

export const UPLOAD_STATE_FORMAT = 'ferry-upload-state';

/** `<stateDir>/<key>.json`: what a later run needs to continue. */
export interface UploadState {
  readonly format: typeof UPLOAD_STATE_FORMAT;
  readonly version: 1;
  readonly file: string;
  readonly sizeBytes: number;
  readonly mtimeMs: number;
  readonly endpoint: string;
  readonly folder: string;
  readonly name: string;
  readonly concat: boolean;
  /** Parts in file order; `url` is set once the server created it. */
  readonly parts: readonly { readonly start: number; readonly end: number; readonly url: string | null }[];
  readonly finalUrl: string | null;
  readonly createdAt: string;
}

interface Capabilities {
  readonly extensions: ReadonlySet<string>;
  readonly algorithms: ReadonlySet<string>;
  readonly maxSizeBytes: number | undefined;
}

interface Part {
  readonly start: number;
  readonly end: number;
  url: URL | undefined;
  /** Bytes the server has confirmed. */
  offset: number;
  /** Bytes of the PATCH in flight that have been handed to the socket. */
  inFlight: number;
}

/** Uploads `options.file`; resolves when the server has the whole file (and published it). */
export async function upload(options: UploadOptions): Promise<UploadResult> {
  let endpoint: URL;
  try {
    endpoint = new URL(typeof options.endpoint === 'string' ? options.endpoint : options.endpoint.href);
  } catch {
    throw new FerryError('FERRY_ERR_CLIENT_BAD_URL', `not a URL: ${JSON.stringify(String(options.endpoint))}`);
  }
  if (endpoint.protocol !== 'http:' && endpoint.protocol !== 'https:') throw new FerryError('FERRY_ERR_CLIENT_BAD_URL', `unsupported scheme ${endpoint.protocol}`);
  const parallel = options.parallel ?? 1;
  if (!Number.isInteger(parallel) || parallel < 1 || parallel > MAX_PARALLEL) throw new FerryError('FERRY_ERR_BAD_REQUEST', `parallel must be an integer from 1 to ${MAX_PARALLEL}`);
  const { url, identity } = createRequestIdentity(endpoint, options.headers ?? []);
  const ownAgent = options.dispatcher === undefined
    ? createAgent({ connections: parallel + 1, connectTimeoutMs: options.connectTimeoutMs ?? 10_000, idleTimeoutMs: options.idleTimeoutMs ?? 30_000 })
    : undefined;
  try {
    return await new Upload(options, url, identity, options.dispatcher ?? ownAgent!, parallel).run();
  } finally {
    await ownAgent?.destroy().catch(() => {});
  }
}

class Upload {
  readonly #o: UploadOptions;
  readonly #endpoint: URL;
  readonly #identity: RequestIdentity;
  readonly #dispatcher: Dispatcher;
  readonly #parallel: number;
  readonly #signal: AbortSignal;
  readonly #limiter: RateLimiter;
  readonly #startedAt = performance.now();

  constructor(o: UploadOptions, endpoint: URL, identity: RequestIdentity, dispatcher: Dispatcher, parallel: number) {
    this.#o = o;
    this.#endpoint = endpoint;
    this.#identity = identity;
    this.#dispatcher = dispatcher;
    this.#parallel = parallel;
    this.#signal = o.signal ?? new AbortController().signal;
    this.#limiter = o.limitRateBytesPerSec !== undefined && o.limitRateBytesPerSec > 0 ? createTokenBucket({ rateBytesPerSec: o.limitRateBytesPerSec }) : unlimited;
  }

  #emit(event: TransferEvent): void {
    try { this.#o.onEvent?.(event); } catch { /* a listener's bug must not break the upload */ }
  }

  async run(): Promise<UploadResult> {
    const o = this.#o;
    const file = path.resolve(o.file);
    let st;
    try {
      st = await stat(file);
    } catch (err) {
      throw localIoError(err, file, undefined);
    }
    if (!st.isFile()) throw new FerryError('FERRY_ERR_CLIENT_LOCAL_IO', `${file} is not a regular file`);
    const size = st.size;
    const name = o.name ?? path.basename(file);
    const folder = (o.folder ?? '').replace(/^\/+|\/+$/g, '');
    const key = createHash('sha256').update(JSON.stringify([this.#endpoint.href, file, size, st.mtimeMs, folder, name])).digest('hex').slice(0, 32);
    const statePath = path.join(o.stateDir, `${key}.json`);

    const caps = await this.#retrying(() => this.#capabilities());
    if (!caps.extensions.has('creation')) throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', `${redactUrl(this.#endpoint)} does not offer the tus creation extension`);
    if (caps.maxSizeBytes !== undefined && size > caps.maxSizeBytes) {
      throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', `the file (${size} bytes) is larger than the server's Tus-Max-Size (${caps.maxSizeBytes} bytes)`);
    }
    const concat = size > 0 && caps.extensions.has('concatenation');
    if (this.#parallel > 1 && !concat) this.#emit({ type: 'warning', message: 'the server does not offer tus concatenation: uploading over one connection' });
    const algorithm = chooseChecksum(o.checksum ?? 'auto', caps);

    // Resume state: reuse the uploads a previous run created, if they still exist.
    let state = await readUploadState(statePath);
    if (state !== undefined && (state.file !== file || state.sizeBytes !== size || state.mtimeMs !== st.mtimeMs || state.endpoint !== this.#endpoint.href || state.concat !== concat)) state = undefined;
    const parts: Part[] = state !== undefined
      ? state.parts.map((p) => ({ start: p.start, end: p.end, url: p.url === null ? undefined : new URL(p.url), offset: 0, inFlight: 0 }))
      : planParts(size, concat ? this.#parallel : 1).map((r) => ({ ...r, url: undefined, offset: 0, inFlight: 0 }));
    let finalUrl = state?.finalUrl === null || state?.finalUrl === undefined ? undefined : new URL(state.finalUrl);
    const createdAt = state?.createdAt ?? new Date().toISOString();
    const save = async (): Promise<void> => {
      const s: UploadState = {
        format: UPLOAD_STATE_FORMAT, version: 1, file, sizeBytes: size, mtimeMs: st.mtimeMs, endpoint: this.#endpoint.href, folder, name, concat,
        parts: parts.map((p) => ({ start: p.start, end: p.end, url: p.url?.href ?? null })), finalUrl: finalUrl?.href ?? null, createdAt,
      };
      try {
        await mkdir(o.stateDir, { recursive: true });
        await writeResumeStateFile(statePath, s);
      } catch (err) {
        this.#emit({ type: 'warning', message: `cannot save the upload state ${statePath}: ${(err as Error).message}` });
      }
    };

    // A finished final upload from an earlier run: nothing left to send.
    if (finalUrl !== undefined) {
      const head = await this.#retrying(() => this.#head(finalUrl!)).catch((err: unknown) => {
        if (err instanceof RemoteStatusError && (err.status === 404 || err.status === 410)) return undefined;
        throw err;
      });
      if (head !== undefined && head.offset === size) {
        await rm(statePath, { force: true });
        return this.#done(finalUrl, head.fileUrl, size, null, size);
      }
      finalUrl = undefined;
    }

    for (const part of parts) {
      if (part.url === undefined) continue;
      const head = await this.#retrying(() => this.#head(part.url!)).catch((err: unknown) => {
        if (err instanceof RemoteStatusError && (err.status === 404 || err.status === 410 || err.status === 403)) return undefined;
        throw err;
      });
      if (head === undefined || head.length !== part.end - part.start) {
        part.url = undefined;
        part.offset = 0;
      } else {
        part.offset = head.offset;
      }
    }
    const resumedBytes = parts.reduce((sum, p) => sum + p.offset, 0);
    if (state !== undefined && resumedBytes > 0) this.#emit({ type: 'resume', verifiedBytes: resumedBytes, discardedBytes: 0 });

    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (err) {
      throw localIoError(err, file, undefined);
    }
    const stopTimers = this.#startTimers(() => parts.reduce((s, p) => s + p.offset + p.inFlight, 0), size, () => parts.filter((p) => p.inFlight > 0 || (p.offset < p.end - p.start)).length);
    try {
      const metadata: Record<string, string> = { filename: name };
      if (folder !== '') metadata.path = folder;
      for (const part of parts) {
        if (part.url !== undefined) continue;
        part.url = await this.#retrying(() => this.#create(concat
          ? { 'upload-concat': 'partial', 'upload-length': String(part.end - part.start) }
          : { 'upload-length': String(size), 'upload-metadata': encodeMetadata(o.sha256 === undefined ? metadata : { ...metadata, sha256: o.sha256 }) }));
        part.offset = 0;
        await save();
      }
      await save();
      this.#emit({
        type: 'start', url: redactUrl(this.#endpoint), finalUrl: redactUrl(parts[0]?.url ?? this.#endpoint), output: folder === '' ? name : `${folder}/${name}`,
        sizeBytes: size, mode: parts.length > 1 ? 'segmented' : 'single', segments: parts.length, resumedBytes, validator: null,
      });

      const runCtl = new AbortController();
      const onAbort = (): void => { runCtl.abort(this.#signal.reason); };
      this.#signal.addEventListener('abort', onAbort, { once: true });
      let sha256: string | undefined = o.sha256?.toLowerCase();
      try {
        const hashing = concat && sha256 === undefined ? hashWholeFile(fh, size, runCtl.signal) : Promise.resolve(sha256);
        hashing.catch(() => {});
        await Promise.all(parts.map((part) => this.#uploadPart(fh, part, algorithm, runCtl.signal).catch((err: unknown) => {
          runCtl.abort(err);
          throw err;
        })));
        sha256 = await hashing;
      } catch (err) {
        if (this.#signal.aborted) throw new FerryError('FERRY_ERR_CLIENT_ABORTED', `upload interrupted; run the same command again to continue (state in ${statePath})`, { cause: err });
        throw err;
      } finally {
        this.#signal.removeEventListener('abort', onAbort);
      }

      const after = await stat(file).catch(() => undefined);
      if (after === undefined || after.size !== size || after.mtimeMs !== st.mtimeMs) {
        await rm(statePath, { force: true });
        throw new FerryError('FERRY_ERR_PUT_FILE_CHANGED', `${file} changed while it was being uploaded; run the command again to upload the new content`);
      }

      let resultUrl = parts[0]!.url!;
      let fileUrl: string | null = null;
      if (concat) {
        const list = parts.map((p) => concatReference(p.url!, this.#endpoint)).join(' ');
        const meta = sha256 === undefined ? metadata : { ...metadata, sha256 };
        const created = await this.#retrying(() => this.#create({ 'upload-concat': `final;${list}`, 'upload-metadata': encodeMetadata(meta) }, true));
        finalUrl = created;
        await save();
        resultUrl = created;
        const head = await this.#retrying(() => this.#head(created)).catch(() => undefined);
        fileUrl = head?.fileUrl ?? null;
      } else {
        const head = await this.#retrying(() => this.#head(resultUrl)).catch(() => undefined);
        fileUrl = head?.fileUrl ?? null;
      }
      await rm(statePath, { force: true });
      return this.#done(resultUrl, fileUrl, size, sha256 ?? null, resumedBytes);
    } finally {
      stopTimers();
      await fh.close().catch(() => {});
    }
  }

  #done(uploadUrl: URL, fileUrl: string | null, size: number, sha256: string | null, resumedBytes: number): UploadResult {
    const durationMs = Math.round(performance.now() - this.#startedAt);
    const shown = fileUrl ?? redactUrl(uploadUrl);
    this.#emit({ type: 'done', output: shown, sizeBytes: size, durationMs, networkBytes: size - resumedBytes, sha256 });
    return { uploadUrl: uploadUrl.href, fileUrl, sizeBytes: size, sha256, resumedBytes, durationMs };
  }

  async #request(method: Dispatcher.HttpMethod, url: URL, headers: Record<string, string>, body?: Dispatcher.DispatchOptions['body'], signal?: AbortSignal): Promise<ClientResponse> {
    return await send({
      dispatcher: this.#dispatcher, url, identity: this.#identity, method, maxRedirects: 0,
      headers: { 'tus-resumable': TUS_VERSION, ...headers }, ...(body === undefined ? {} : { body }), signal: signal ?? this.#signal,
    });
  }

  async #capabilities(): Promise<Capabilities> {
    const res = await this.#request('OPTIONS', this.#endpoint, {});
    if (res.status !== 200 && res.status !== 204) {
      if (res.status === 404 || res.status === 405) {
        await res.body.dump().catch(() => {});
        throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', `${redactUrl(this.#endpoint)} is not a tus endpoint (OPTIONS answered ${res.status})`);
      }
      throw await remoteStatusError(res.status, res.url, res.headers, res.body);
    }
    await res.body.dump().catch(() => {});
    const versions = list(headerValue(res.headers, 'tus-version'));
    if (!versions.has(TUS_VERSION)) throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', `${redactUrl(this.#endpoint)} does not speak tus ${TUS_VERSION} (Tus-Version: ${headerValue(res.headers, 'tus-version') ?? 'none'})`);
    const max = headerValue(res.headers, 'tus-max-size');
    return {
      extensions: list(headerValue(res.headers, 'tus-extension')),
      algorithms: list(headerValue(res.headers, 'tus-checksum-algorithm')),
      maxSizeBytes: max !== undefined && /^\d+$/.test(max.trim()) ? Number(max) : undefined,
    };
  }

  /** POST to the creation URL → the new upload's URL (§Creation: 201 + Location). */
  async #create(headers: Record<string, string>, isFinal = false): Promise<URL> {
    const res = await this.#request('POST', this.#endpoint, headers);
    const location = headerValue(res.headers, 'location');
    if (res.status !== 201) throw await remoteStatusError(res.status, res.url, res.headers, res.body);
    await res.body.dump().catch(() => {});
    if (location === undefined) throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `the server created ${isFinal ? 'the final ' : 'an '}upload without a Location`);
    return new URL(location, this.#endpoint);
  }

  async #head(url: URL): Promise<{ offset: number; length: number | undefined; fileUrl: string | null }> {
    const res = await this.#request('HEAD', url, {});
    await res.body.dump().catch(() => {});
    if (res.status !== 200 && res.status !== 204) throw await remoteStatusError(res.status, res.url, res.headers, res.body);
    const offset = headerValue(res.headers, 'upload-offset');
    const length = headerValue(res.headers, 'upload-length');
    const file = headerValue(res.headers, 'ferry-file');
    return {
      offset: offset !== undefined && /^\d+$/.test(offset) ? Number(offset) : 0,
      length: length !== undefined && /^\d+$/.test(length) ? Number(length) : undefined,
      fileUrl: file === undefined ? null : new URL(file, url).href,
    };
  }

  /** PATCHes one part from the server's offset to its end, a checksummed chunk at a time. */
  async #uploadPart(fh: FileHandle, part: Part, algorithm: 'sha256' | 'sha1' | undefined, signal: AbortSignal): Promise<void> {
    const length = part.end - part.start;
    const chunkBytes = Math.max(64 * 1024, this.#o.chunkBytes ?? 8 * MIB);
    let failures = 0;
    while (part.offset < length || length === 0) {
      const before = part.offset;
      try {
        if (length === 0) return;
        const n = Math.min(chunkBytes, length - part.offset);
        const buf = Buffer.allocUnsafe(n);
        let got = 0;
        while (got < n) {
          const { bytesRead } = await fh.read(buf, got, n - got, part.start + part.offset + got);
          if (bytesRead === 0) throw new FerryError('FERRY_ERR_PUT_FILE_CHANGED', `${this.#o.file} became shorter while it was being uploaded`);
          got += bytesRead;
        }
        const headers: Record<string, string> = {
          'upload-offset': String(part.offset),
          'content-type': 'application/offset+octet-stream',
          'content-length': String(n),
        };
        // tus §Checksum: "Upload-Checksum … the name of the used checksum algorithm and the
        // Base64 encoded checksum separated by a space"; the server refuses the whole PATCH
        // (460) when it does not match, so nothing corrupt is ever appended.
        if (algorithm !== undefined) headers['upload-checksum'] = `${algorithm} ${createHash(algorithm).update(buf).digest('base64')}`;
        const res = await this.#request('PATCH', part.url!, headers, Readable.from(this.#paced(buf, part, signal), { objectMode: false }), signal);
        part.inFlight = 0;
        if (res.status === 204 || res.status === 200) {
          await res.body.dump().catch(() => {});
          const next = headerValue(res.headers, 'upload-offset');
          if (next === undefined || !/^\d+$/.test(next)) throw new FerryError('FERRY_ERR_CLIENT_PROTOCOL', 'a PATCH answer without Upload-Offset');
          part.offset = Number(next);
          failures = 0;
          continue;
        }
        if (res.status === 409) {
          // §PATCH: "If the offsets do not match, the Server MUST respond with the 409 Conflict
          // status without modifying the upload resource": ask where it is, continue there.
          await res.body.dump().catch(() => {});
          part.offset = (await this.#head(part.url!)).offset;
          continue;
        }
        throw await remoteStatusError(res.status, res.url, res.headers, res.body);
      } catch (err) {
        part.inFlight = 0;
        if (signal.aborted) throw err;
        const retryable = err instanceof RemoteStatusError
          ? err.retryable || err.status === 423 || err.status === 460
          : !(err instanceof FerryError && err.code !== 'FERRY_ERR_CLIENT_SHORT_BODY') && isRetryableNetworkError(err);
        if (!retryable) throw err;
        failures++;
        if (failures > (this.#o.retries ?? 10)) {
          throw new FerryError('FERRY_ERR_CLIENT_RETRIES_EXHAUSTED', `gave up after ${failures} failed attempts in a row; last: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
        }
        const retryAfter = err instanceof RemoteStatusError ? err.retryAfterMs : undefined;
        const delayMs = this.#delay(failures, retryAfter);
        this.#emit({ type: 'retry', attempt: failures, delayMs, reason: err instanceof RemoteStatusError ? err.message : describeNetworkError(err), offset: part.start + part.offset });
        await sleep(delayMs, signal);
        // §Core: after a failure, "the Client SHOULD send a HEAD request … to find the offset".
        part.offset = (await this.#retrying(() => this.#head(part.url!), signal)).offset;
        if (part.offset > before) failures = 0;
      }
    }
  }

  /** The PATCH body: the chunk in 256 KiB slices, paced by --limit-rate, counted for progress. */
  async *#paced(buf: Buffer, part: Part, signal: AbortSignal): AsyncGenerator<Buffer> {
    const slice = 256 * 1024;
    for (let pos = 0; pos < buf.length; pos += slice) {
      const s = buf.subarray(pos, Math.min(buf.length, pos + slice));
      await this.#limiter.take(s.length, signal);
      part.inFlight += s.length;
      yield s;
    }
  }

  #delay(failures: number, retryAfterMs: number | undefined): number {
    const ra = retryAfterMs === undefined ? undefined : Math.min(retryAfterMs, this.#o.maxRetryAfterMs ?? 300_000);
    return backoffDelayMs(failures, { baseMs: this.#o.retryBaseMs ?? 500, maxMs: this.#o.retryMaxMs ?? 30_000 }, ra, Math.random());
  }

  async #retrying<T>(step: () => Promise<T>, signal: AbortSignal = this.#signal): Promise<T> {
    let failures = 0;
    for (;;) {
      try {
        return await step();
      } catch (err) {
        if (signal.aborted) {
          if (isCode(err, 'FERRY_ERR_CLIENT_ABORTED')) throw err;
          throw new FerryError('FERRY_ERR_CLIENT_ABORTED', 'upload interrupted; run the same command again to continue', { cause: err });
        }
        const verdict = judgeFailure(err);
        if (!verdict.retry) throw err;
        failures++;
        if (failures > (this.#o.retries ?? 10)) throw new FerryError('FERRY_ERR_CLIENT_RETRIES_EXHAUSTED', `gave up after ${failures} failed attempts in a row; last: ${verdict.reason}`, { cause: err });
        const delayMs = this.#delay(failures, verdict.retryAfterMs);
        this.#emit({ type: 'retry', attempt: failures, delayMs, reason: verdict.reason, offset: 0 });
        await sleep(delayMs, signal);
      }
    }
  }

  #startTimers(done: () => number, size: number, connections: () => number): () => void {
    const meter = new SpeedMeter();
    meter.sample(performance.now(), done());
    const timer = setInterval(() => {
      const now = performance.now();
      const d = Math.min(size, done());
      const speed = meter.sample(now, d);
      this.#emit({
        type: 'progress', doneBytes: d, sizeBytes: size, speedBytesPerSec: Math.round(speed),
        etaMs: speed > 0 ? Math.round(((size - d) / speed) * 1000) : null, connections: connections(), elapsedMs: Math.round(now - this.#startedAt),
      });
    }, this.#o.progressIntervalMs ?? 500);
    timer.unref();
    return () => { clearInterval(timer); };
  }
}

/** Splits [0, size) into `count` parts of at least MIN_PART_BYTES (fewer when the file is small). */
export function planParts(size: number, count: number): { start: number; end: number }[] {
  const n = Math.max(1, Math.min(count, Math.floor(size / MIN_PART_BYTES)));
  const out: { start: number; end: number }[] = [];
  for (let i = 0; i < n; i++) out.push({ start: Math.floor((size * i) / n), end: Math.floor((size * (i + 1)) / n) });
  return out;
}

/** tus §Checksum algorithm choice from `Tus-Checksum-Algorithm`. */
export function chooseChecksum(wanted: 'auto' | 'sha256' | 'sha1' | 'none', caps: Capabilities): 'sha256' | 'sha1' | undefined {
  if (wanted === 'none' || !caps.extensions.has('checksum')) {
    if (wanted === 'sha256' || wanted === 'sha1') throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', 'the server does not offer the tus checksum extension');
    return undefined;
  }
  if (wanted === 'auto') return caps.algorithms.has('sha256') ? 'sha256' : caps.algorithms.has('sha1') ? 'sha1' : undefined;
  if (!caps.algorithms.has(wanted)) throw new FerryError('FERRY_ERR_PUT_NOT_SUPPORTED', `the server does not accept ${wanted} checksums (Tus-Checksum-Algorithm: ${[...caps.algorithms].join(',')})`);
  return wanted;
}

/** tus §Upload-Metadata: `key base64(value)` pairs, comma-separated. */
export function encodeMetadata(values: Readonly<Record<string, string>>): string {
  return Object.entries(values).map(([k, v]) => `${k} ${Buffer.from(v, 'utf8').toString('base64')}`).join(',');
}

/** §Concatenation lists partial uploads by URL; a path when it is on the endpoint's origin. */
function concatReference(url: URL, endpoint: URL): string {
  return url.origin === endpoint.origin ? `${url.pathname}${url.search}` : url.href;
}

function list(value: string | undefined): Set<string> {
  return new Set((value ?? '').split(',').map((s) => s.trim().toLowerCase()).filter((s) => s !== ''));
}

async function hashWholeFile(fh: FileHandle, size: number, signal: AbortSignal): Promise<string> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(4 * MIB);
  let pos = 0;
  while (pos < size) {
    signal.throwIfAborted();
    const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
    if (bytesRead === 0) throw new FerryError('FERRY_ERR_PUT_FILE_CHANGED', 'the file became shorter while it was being uploaded');
    hash.update(buf.subarray(0, bytesRead));
    pos += bytesRead;
  }
  return hash.digest('hex');
}

async function readUploadState(file: string): Promise<UploadState | undefined> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(file, 'utf8'));
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const s = json as Partial<UploadState>;
  if (s.format !== UPLOAD_STATE_FORMAT || s.version !== 1 || !Array.isArray(s.parts)) return undefined;
  if (typeof s.file !== 'string' || typeof s.sizeBytes !== 'number' || typeof s.mtimeMs !== 'number' || typeof s.endpoint !== 'string' || typeof s.concat !== 'boolean') return undefined;
  for (const p of s.parts) {
    if (typeof p !== 'object' || p === null || typeof p.start !== 'number' || typeof p.end !== 'number' || !(p.url === null || typeof p.url === 'string')) return undefined;
  }
  return s as UploadState;
}
