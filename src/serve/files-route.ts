/**
 * `GET`/`HEAD /files/{path}` (SPEC §2.1): resolve → decide (src/http, pure) → stream.
 *
 * The path of one download: jail (parseSafePath + storage) → open (stat and bytes from one
 * handle) → select the representation (identity, sidecar, on-the-fly coding) → preconditions
 * in RFC 9110 §13.2.2 order → If-Range → range plan → digests when asked → admit (limits) →
 * headers → paced body with backpressure. On every exit: handles closed, the permit released
 * once, one log line, one transfer-finished event.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import { pipeline, type Transform } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  headerValue, planDownload, formatContentDisposition, formatHttpDate, formatDigestField, wantsSha256,
  type ContentCoding, type PlannedHeaders, type Validators,
} from '../http/index.ts';
import { FerryError, abortOnClose, channels, publish, parseSafePath, type SafePath, type TransferFinishedEvent } from '../core/index.ts';
import type { FileHandleReader } from '../storage/index.ts';
import type { TransferSubject } from '../limits/index.ts';
import { splitRawTarget, hasQueryParam, queryParam } from './raw-path.ts';
import { selectRepresentation, createCompressor, contentTypeOf, needsSandbox, type Representation } from './representation.ts';
import { fileSha256, hashStream } from './file-digest.ts';
import { pumpParts, pumpReadable, partsToReadable, pacingFor, type BodyPart } from './pump.ts';
import { socketProgress, type ProgressWatchdog } from './progress-watchdog.ts';
import { refusalError, sendHeaderOnly, type RefusalWording } from './download-answer.ts';
import { decideRedirect, redirectTtlSeconds } from './decide-redirect.ts';
import type { ServeDeps } from './types.ts';

export const FILES_ROUTE = '/files/*';

const FILE_WORDING: RefusalWording = { current: 'the current representation', sized: 'a representation' };

/** Chunk size of bodies that go through streams (on-the-fly compression). */
const STREAM_CHUNK_BYTES = 64 * 1024;

export function registerFilesRoutes(app: FastifyInstance, deps: ServeDeps, watchdog: ProgressWatchdog): void {
  const handler = (request: FastifyRequest, reply: FastifyReply): Promise<void> => serveFile(request, reply, deps, watchdog);
  app.route({ method: ['GET', 'HEAD'], url: FILES_ROUTE, config: { access: 'read' }, exposeHeadRoute: false, handler });
  app.route({ method: ['GET', 'HEAD'], url: '/files', config: { access: 'read' }, exposeHeadRoute: false, handler });
  // RFC 9110 §15.5.6: a 405 "MUST generate an Allow header field". PUT is registered by uploads.
  const notAllowed = async (request: FastifyRequest): Promise<never> => {
    throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${request.method} is not allowed on /files/`, { headers: { allow: 'GET, HEAD, PUT' } });
  };
  app.route({ method: ['POST', 'DELETE', 'PATCH'], url: FILES_ROUTE, config: { access: 'read' }, handler: notAllowed });
}

interface Outcome {
  status: number;
  bytes: number;
  outcome: TransferFinishedEvent['outcome'];
  rangeCount: number;
  coding: string;
}

async function serveFile(request: FastifyRequest, reply: FastifyReply, deps: ServeDeps, watchdog: ProgressWatchdog): Promise<void> {
  const startedAt = performance.now();
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const target = splitRawTarget(request.raw.url, '/files');
  const path = parseSafePath(target.encodedPath);
  if (path.segments.length === 0) throw new FerryError('FERRY_ERR_PATH_IS_DIRECTORY', 'The root is a folder, not a file');
  const res = reply.raw;
  const h = request.headers;

  // One signal for the whole exchange: the client going away aborts hashing, the queue wait
  // and the body alike.
  const gone = abortOnClose(res);
  const signal = gone.signal;

  const reader = await deps.storage.open(path);
  let rep: Representation | undefined;
  try {
    const name = path.segments.at(-1)!;
    if (await redirectToStore(request, reply, deps, path, name, target.query)) {
      finish(request, startedAt, path.relative, method, { status: 302, bytes: 0, outcome: 'completed', rangeCount: 0, coding: 'identity' });
      return;
    }
    const contentType = contentTypeOf(name);
    const rangeHeader = headerValue(h.range);
    const wantRepr = wantsSha256(headerValue(h['want-repr-digest']));
    const wantContent = method === 'GET' && wantsSha256(headerValue(h['want-content-digest']));

    rep = await selectRepresentation({
      storage: deps.storage, path, reader, contentType,
      acceptEncoding: headerValue(h['accept-encoding']),
      hasRange: rangeHeader !== undefined,
      compress: deps.config.compress === 'on',
      digestWanted: wantRepr || wantContent,
      nowMs: Date.now(),
    });
    const validators: Validators = { etag: rep.etag, lastModifiedMs: rep.lastModifiedMs };
    const base: PlannedHeaders = {
      'x-request-id': request.id,
      'accept-ranges': 'bytes',
      'x-content-type-options': 'nosniff',
      etag: rep.etag,
      'last-modified': formatHttpDate(rep.lastModifiedMs),
    };
    if (rep.varies) base.vary = 'Accept-Encoding';

    // Preconditions → If-Range → range → 416 → multipart → HEAD, decided in one pure step.
    // Only the identity representation has ranges (a coded one is served whole).
    const answer = planDownload({
      method, requestHeaders: h, validators, length: rep.length, rangeable: rep.coding === 'identity',
      contentType, contentEncoding: rep.coding, headers: base, maxRanges: deps.config.maxRanges,
    });
    if (answer.kind === 'precondition-failed' || answer.kind === 'range-not-satisfiable') throw refusalError(answer, FILE_WORDING);
    if (answer.kind === 'not-modified') {
      sendHeaderOnly(reply, 304, answer.headers);
      finish(request, startedAt, path.relative, method, { status: 304, bytes: 0, outcome: 'completed', rangeCount: 0, coding: rep.coding });
      return;
    }

    const repReader = rep.reader;
    const chunkBytes = deps.config.readBufferSize;
    const { status, rangeCount } = answer;
    const headers: OutgoingHttpHeaders = answer.headers;
    // The body as parts (framing bytes and file ranges), or a compressor for on-the-fly coding.
    const parts: BodyPart[] | undefined = answer.parts?.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : p));
    const coding: ContentCoding | undefined = answer.parts === undefined ? rep.coding : undefined;
    // A stored document must not run script on Ferry's origin (representation.ts, needsSandbox).
    if (needsSandbox(contentType)) headers['content-security-policy'] = 'sandbox';
    if (hasQueryParam(target.query, 'download')) headers['content-disposition'] = formatContentDisposition(name);

    // RFC 9530: digests only when asked (hashing a big file is a full read the first time).
    if (wantRepr || wantContent) {
      let hashedBytes = 0;
      const onHashed = (n: number): void => { hashedBytes += n; };
      // Hashing a big file takes a while before the first header byte: that is progress too.
      const keepAlive = watchdog.watch(request.raw.socket, () => hashedBytes);
      try {
        let reprHex: string | undefined;
        if (wantRepr || (wantContent && status === 200)) {
          reprHex = await fileSha256(deps.meta, rep.relativePath, repReader, signal, deps.config.readBufferSize, onHashed);
        }
        if (wantRepr && reprHex !== undefined) headers['repr-digest'] = formatDigestField(reprHex);
        if (wantContent) {
          // Content-Digest covers the content actually sent: the whole file on 200, the part
          // or the whole multipart body on 206.
          const contentHex = status === 200 ? reprHex : await hashStream(partsToReadable(repReader, parts ?? [], chunkBytes, signal), onHashed);
          if (contentHex !== undefined) headers['content-digest'] = formatDigestField(contentHex);
        }
      } finally {
        keepAlive[Symbol.dispose]();
      }
    }

    if (!answer.body) {
      sendHeaderOnly(reply, status, headers);
      finish(request, startedAt, path.relative, method, { status, bytes: 0, outcome: 'completed', rangeCount, coding: rep.coding });
      return;
    }

    // Limits: wait for a transfer slot before the first body byte (429/503 thrown from here
    // still become problem+json, nothing has been written yet).
    const subject: TransferSubject = { identity: request.identity, clientAddress: request.ip };
    const release = await deps.transfer.admit(subject, signal);
    let released = false;
    const releaseOnce = (): void => { if (!released) { released = true; release(); } };
    try {
      await sendBody({ request, reply, status, headers, reader: repReader, parts, coding, subject, deps, signal: signal, watchdog, startedAt, relative: path.relative, rangeCount });
    } finally {
      releaseOnce();
    }
  } finally {
    gone.dispose();
    if (rep !== undefined && rep.reader !== reader) await rep.reader.close();
    await reader.close();
  }
}

/**
 * --s3-redirect: 302 to a presigned URL of the object when decideRedirect says so and the
 * storage hands one out (not while a failover store's primary is unhealthy). The URL is a
 * credential for its lifetime: `Cache-Control: no-store`, and it is never logged.
 */
async function redirectToStore(request: FastifyRequest, reply: FastifyReply, deps: ServeDeps, path: SafePath, name: string, query: string): Promise<boolean> {
  const method = request.method === 'HEAD' ? 'HEAD' : 'GET';
  const identity = request.identity;
  const linkRateBound = identity?.kind === 'link' && identity.maxRateBytesPerSec !== undefined;
  if (deps.storage.presignGet === undefined || !decideRedirect({ enabled: deps.config.s3Redirect, method, headers: request.headers, linkRateBound }).redirect) return false;
  const expires = identity?.kind === 'link' ? Number(queryParam(query, 'expires')) : Number.NaN;
  const location = await deps.storage.presignGet(path, {
    expiresInSeconds: redirectTtlSeconds(deps.config.s3RedirectTtl, Number.isFinite(expires) ? expires : undefined, Date.now()),
    ...(hasQueryParam(query, 'download') ? { contentDisposition: formatContentDisposition(name) } : {}),
  });
  if (location === undefined) return false;
  sendHeaderOnly(reply, 302, { location, 'cache-control': 'private, no-store', 'x-request-id': request.id });
  return true;
}

interface SendBodyArgs {
  readonly request: FastifyRequest;
  readonly reply: FastifyReply;
  readonly status: number;
  readonly headers: OutgoingHttpHeaders;
  readonly reader: FileHandleReader;
  /** Identity body as parts; undefined when `coding` compresses the whole file on the fly. */
  readonly parts: readonly BodyPart[] | undefined;
  readonly coding: ContentCoding | undefined;
  readonly subject: TransferSubject;
  readonly deps: ServeDeps;
  readonly signal: AbortSignal;
  readonly watchdog: ProgressWatchdog;
  readonly startedAt: number;
  readonly relative: string;
  readonly rangeCount: number;
}

async function sendBody(a: SendBodyArgs): Promise<void> {
  const { request, reply, deps, signal, reader } = a;
  const res = reply.raw;
  const chunkBytes = deps.config.readBufferSize;
  let bytes = 0;
  const onBytes = (n: number): void => { bytes += n; };
  let outcome: TransferFinishedEvent['outcome'] = 'completed';
  // Rate limits are applied by the pumps themselves (no stream wrapped around the body), so
  // identity bodies keep the direct path (pooled positional reads, adaptive chunks) throttled
  // or not; undefined when no rate applies.
  const pacing = pacingFor(deps.transfer, a.subject, signal);
  // A remote store reads its first bytes before the header goes out: a store that fails
  // (its retries spent) is still answered with a 502/503 problem+json, not a cut connection.
  if (reader.prefetch !== undefined) {
    const first = a.coding !== undefined ? { start: 0, end: reader.stat.size - 1 } : a.parts?.find((p) => !Buffer.isBuffer(p));
    if (first !== undefined && !Buffer.isBuffer(first)) await reader.prefetch(first, { signal });
  }
  let compressor: Transform | undefined;
  if (a.coding !== undefined) {
    compressor = createCompressor(a.coding);
    // The compressor owns the file stream: destroying it (client gone) tears both down.
    // Moderate chunks keep a slow client's buffers small.
    pipeline(reader.openRead(undefined, { highWaterMark: Math.min(chunkBytes, STREAM_CHUNK_BYTES), signal }), compressor, () => {});
  }
  reply.hijack();
  publish(channels.transferStarted, { route: FILES_ROUTE });
  const socket = request.raw.socket;
  const progress = a.watchdog.watch(socket, () => socketProgress(socket));
  try {
    signal.throwIfAborted();
    res.writeHead(a.status, a.headers);
    if (compressor !== undefined) await pumpReadable(compressor, res, signal, onBytes, pacing);
    else await pumpParts(reader, a.parts ?? [], res, { maxChunkBytes: chunkBytes, signal, onBytes, pacing });
  } catch (err) {
    compressor?.destroy();
    if (signal.aborted || res.destroyed || isPrematureClose(err)) {
      outcome = 'aborted';
    } else {
      outcome = 'failed';
      request.log.warn({ err, path: a.relative }, 'download failed after the response started; connection closed');
    }
    // After the header went out, a cut connection is the only honest error signal.
    if (!res.destroyed) res.destroy();
  } finally {
    progress[Symbol.dispose]();
    finish(request, a.startedAt, a.relative, 'GET', { status: a.status, bytes, outcome, rangeCount: a.rangeCount, coding: a.coding ?? (a.headers['content-encoding'] as string | undefined) ?? 'identity' }, true);
  }
}

function isPrematureClose(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'ERR_STREAM_PREMATURE_CLOSE' || code === 'ECONNRESET' || code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED';
}

/** One log line per finished /files response; transfer events only for bodies. */
function finish(request: FastifyRequest, startedAt: number, relative: string, method: string, o: Outcome, transfer = false): void {
  const durationMs = Math.round((performance.now() - startedAt) * 1000) / 1000;
  if (transfer) {
    publish<TransferFinishedEvent>(channels.transferFinished, { route: FILES_ROUTE, status: o.status, bytes: o.bytes, durationMs, outcome: o.outcome, rangeCount: o.rangeCount });
  }
  request.log.info({
    event: 'transfer', method, path: relative, status: o.status, bytes: o.bytes, durationMs,
    outcome: o.outcome, ranges: o.rangeCount, encoding: o.coding,
  }, o.outcome === 'completed' ? 'transfer finished' : `transfer ${o.outcome}`);
}
