/**
 * HTTP wiring for uploads: tus 1.0 under `/uploads/` and `PUT /files/*`, in one encapsulated
 * Fastify plugin whose content-type parsers hand the raw body stream to the handlers (other
 * routes keep their JSON parsing). Also runs the expiry sweeper and the crash recovery pass,
 * both only once the server listens (a second instance that fails with EADDRINUSE must not
 * touch the state dir it shares with the running one), then the sweeper on a timer.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, isFerryError } from '../core/errors.ts';
import { abortOnClose } from '../core/abort.ts';
import { parseSafePath } from '../core/safe-path.ts';
import type { Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import { clientKeyOf, type TransferControl, type TransferSubject } from '../limits/index.ts';
import { requestBaseUrl } from './base-url.ts';
import { baseTusHeaders, decideCreation, hasBody, header, headHeaders, type HeaderBag } from './decide-tus.ts';
import { DigestEngine } from './digest-engine.ts';
import { formatSha256Digest } from './digest-fields.ts';
import { sweepPublishTemps, type ConflictPolicy } from './publish-file.ts';
import { precheckPut, receivePut, type PutOptions } from './put-upload.ts';
import { CHECKSUM_ALGORITHMS, TUS_EXTENSIONS, TUS_VERSION, checkTusResumable, isUploadId } from './tus-headers.ts';
import { TusService, notFound, sweepIntervalMs, uploadOwnerOf, type BodyInput, type SweepResult, type UploadLogger, type WriteOutcome } from './tus-service.ts';
import { createInProcessUploadLocker, type UploadLocker } from './upload-lock.ts';
import type { UploadRecord } from './upload-record.ts';
import { UploadStore } from './upload-store.ts';

/** The options uploads read (FerryConfig satisfies this structurally). */
export interface UploadConfig {
  readonly stateDir: string;
  readonly maxUploadSize: number | undefined;
  /** --max-pending-uploads / --max-pending-uploads-client. */
  readonly maxPendingUploads: number;
  readonly maxPendingUploadsClient: number;
  /** --max-upload-metadata: longest Upload-Metadata header in bytes. */
  readonly maxUploadMetadata: number;
  readonly uploadExpiry: number;
  readonly uploadLockWait: number;
  readonly onConflict: ConflictPolicy;
  readonly dotfiles: 'allow' | 'deny';
  readonly trustProxy: boolean;
  /** Durable progress inside one long PATCH (--upload-checkpoint). */
  readonly uploadCheckpoint?: number;
}

export interface UploadRouteDeps {
  readonly config: UploadConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly logger: UploadLogger;
  readonly transfer: TransferControl;
  /** Defaults to the in-process lock; a shared (Redis) lock goes here for several instances. */
  readonly locker?: UploadLocker;
}

/** What the routes expose for tests and the composition root. */
export interface UploadsHandle {
  readonly service: TusService;
  /** One sweep now (expired uploads, orphaned files). */
  sweep(): Promise<SweepResult>;
}

const TUS_PATH = /^\/uploads(?:\/|$)/;
/** How long an answered request's unread body is drained before the connection is cut. */
const LINGER_MS = 10_000;
const discard = (): void => {};

export async function registerUploadRoutes(app: FastifyInstance, deps: UploadRouteDeps): Promise<UploadsHandle> {
  const cfg = deps.config;
  const digests = new DigestEngine();
  const store = await UploadStore.create(deps.meta, cfg.stateDir, digests);
  const logger = deps.logger.child({ area: 'uploads' });
  const service = new TusService({
    storage: deps.storage, meta: deps.meta, store, logger,
    locker: deps.locker ?? createInProcessUploadLocker(),
    limits: { maxUploadBytes: cfg.maxUploadSize, maxMetadataBytes: cfg.maxUploadMetadata },
    maxPending: cfg.maxPendingUploads, maxPendingPerClient: cfg.maxPendingUploadsClient,
    expiryMs: cfg.uploadExpiry, lockWaitMs: cfg.uploadLockWait, onConflict: cfg.onConflict, dotfiles: cfg.dotfiles,
    ...(cfg.uploadCheckpoint === undefined ? {} : { checkpointBytes: cfg.uploadCheckpoint }),
  });
  const putOptions: PutOptions = { storage: deps.storage, meta: deps.meta, store, logger, maxUploadBytes: cfg.maxUploadSize, dotfiles: cfg.dotfiles };
  const activeTemps = new Set<string>();
  /** Requests whose body may not be read to the end (see the onResponse hook). */
  const unread = new WeakSet<FastifyRequest>();

  const sweep = async (): Promise<SweepResult> => {
    const r = await service.sweep(activeTemps);
    // Cross-filesystem temp copies that a killed process left in target folders (same rule as
    // above: never one whose writer is still alive).
    const publishTemps = await sweepPublishTemps(deps.storage, deps.meta);
    const all: SweepResult = { ...r, orphans: r.orphans + publishTemps };
    if (all.expired > 0 || all.orphans > 0) logger.info({ event: 'sweep', ...all, publishTemps }, 'expired uploads and orphaned files removed');
    else logger.debug({ event: 'sweep', ...all, publishTemps }, 'upload sweep found nothing to remove');
    return all;
  };

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // The body stays a stream: tus PATCH/POST bodies and PUT bodies are streamed to disk.
    scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload); });

    scope.addHook('onSend', async (request, reply, payload) => {
      if (TUS_PATH.test(request.url) && request.method !== 'OPTIONS') reply.header('tus-resumable', TUS_VERSION);
      return payload;
    });

    // An answer sent before the body was read (413, 409, 460, 507...): keep reading and
    // discarding the rest for a while instead of closing at once. Closing a socket with unread
    // input makes the kernel send RST, which can destroy the answer before the client reads it
    // (nginx's "lingering close"). Clients stop sending when they see the answer; one that
    // does not is cut after LINGER_MS.
    scope.addHook('onResponse', async (request) => {
      const raw = request.raw;
      if (!unread.has(request) || raw.complete || raw.destroyed) return;
      const socket = raw.socket;
      const timer = setTimeout(() => { socket.destroy(); }, LINGER_MS);
      timer.unref();
      // Both listeners go with the first of the two events: on a kept-alive connection they
      // would otherwise pile up, one per refused upload.
      const stop = (): void => {
        clearTimeout(timer);
        raw.off('end', stop);
        socket.off('close', stop);
      };
      raw.once('end', stop);
      socket.once('close', stop);
      raw.unpipe();
      raw.on('data', discard);
      raw.resume();
    });

    let timer: NodeJS.Timeout | undefined;
    // onListen, not onReady: ready() runs before the socket is bound, so a process whose
    // listen then fails (EADDRINUSE: another Ferry runs on this state dir) would already have
    // swept and recovered the other one's uploads.
    scope.addHook('onListen', async () => {
      const run = (): void => { void sweep().catch((err: unknown) => { logger.warn({ err }, 'upload sweep failed'); }); };
      void (async () => {
        await sweep().catch((err: unknown) => { logger.warn({ err }, 'upload sweep failed'); });
        await service.recover().catch((err: unknown) => { logger.warn({ err }, 'upload recovery failed'); });
      })();
      timer = setInterval(run, sweepIntervalMs(cfg.uploadExpiry));
      timer.unref();
    });
    scope.addHook('onClose', async () => {
      if (timer !== undefined) clearInterval(timer);
      await service.drain();
      await digests.close();
    });

    // --- OPTIONS (§OPTIONS: Tus-Version, and the extensions, limits and algorithms) ---------
    const options = async (_request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      reply.code(204).headers({
        'tus-resumable': TUS_VERSION,
        'tus-version': TUS_VERSION,
        'tus-extension': TUS_EXTENSIONS.join(','),
        'tus-checksum-algorithm': CHECKSUM_ALGORITHMS.join(','),
        ...(cfg.maxUploadSize === undefined ? {} : { 'tus-max-size': String(cfg.maxUploadSize) }),
      });
      return reply.send();
    };
    for (const url of ['/uploads', '/uploads/', '/uploads/:id']) scope.options(url, { config: { access: 'public' } }, options);

    // --- POST: creation (§Creation, §Creation With Upload, §Concatenation) -------------------
    const create = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      checkTusResumable(header(request.headers, 'tus-resumable'));
      const override = header(request.headers, 'x-http-method-override')?.trim().toUpperCase();
      if (override !== undefined && override !== 'POST') throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${override} is not allowed on the creation URL`, { headers: { allow: 'POST, OPTIONS' } });
      markUnread(request);
      const plan = decideCreation(request.headers, { maxUploadBytes: cfg.maxUploadSize, maxMetadataBytes: cfg.maxUploadMetadata });
      const base = baseUrl(request);
      const input = plan.kind !== 'final' && plan.withUpload ? bodyInput(request, reply) : undefined;
      const owner = uploadOwnerOf(clientKeyOf({ identity: request.identity, clientAddress: request.ip }));
      const { record, outcome } = await service.create(plan, base, input, owner);
      if (outcome !== undefined && handleCut(request, reply, outcome)) return reply;
      if (outcome === undefined || outcome.bodyConsumed) unread.delete(request);
      const headers: Record<string, string> = { ...baseTusHeaders(), location: `${base}/uploads/${record.id}`, ...progressHeaders(record) };
      if (outcome?.error !== undefined) {
        // The upload exists (Location) but the first chunk was refused: answer the refusal.
        throw withHeaders(outcome.error, headers);
      }
      return reply.code(201).headers(headers).send();
    };
    scope.post('/uploads', { config: { access: 'write' } }, create);
    scope.post('/uploads/', { config: { access: 'write' } }, create);

    // --- HEAD / PATCH / DELETE on an upload, also via X-HTTP-Method-Override ----------------
    scope.route({
      method: ['HEAD', 'PATCH', 'DELETE', 'POST'],
      url: '/uploads/:id',
      config: { access: 'write' },
      handler: async (request, reply) => {
        checkTusResumable(header(request.headers, 'tus-resumable'));
        // §X-HTTP-Method-Override: "MUST be interpreted as the request's method ... The actual
        // method of the request MUST be ignored."
        const method = header(request.headers, 'x-http-method-override')?.trim().toUpperCase() ?? request.method;
        const id = (request.params as { id: string }).id;
        // Anything that is not one of our ids names no upload; it never reaches a path.
        if (!isUploadId(id)) throw notFound(id);
        switch (method) {
          case 'HEAD': {
            const record = await service.head(id);
            reply.code(200).headers(headHeaders(record)).headers(targetHeader(record));
            return reply.send();
          }
          case 'PATCH': return patch(id, request, reply);
          case 'DELETE': {
            await service.terminate(id);
            return reply.code(204).headers(baseTusHeaders()).send();
          }
          default:
            throw new FerryError('FERRY_ERR_METHOD_NOT_ALLOWED', `${method} is not allowed on an upload`, { headers: { allow: 'HEAD, PATCH, DELETE, OPTIONS' } });
        }
      },
    });

    const patch = async (id: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      markUnread(request);
      const outcome = await service.patch(id, bodyInput(request, reply));
      if (handleCut(request, reply, outcome)) return reply;
      if (outcome.bodyConsumed) unread.delete(request);
      const headers = { ...baseTusHeaders(), ...progressHeaders(outcome.record), ...targetHeader(outcome.record) };
      if (outcome.error !== undefined) throw withHeaders(outcome.error, headers);
      return reply.code(204).headers(headers).send();
    };

    // --- PUT /files/* (streaming, atomic) ---------------------------------------------------
    scope.put('/files/*', { config: { access: 'write' } }, async (request, reply) => {
      const raw = (request.params as { '*': string })['*'];
      const target = parseSafePath(rawPathOf(request.url, raw));
      markUnread(request);
      const input = bodyInput(request, reply);
      await precheckPut(putOptions, { target, headers: request.headers, body: undefined, signal: input.signal });
      const result = await receivePut(putOptions, { target, headers: request.headers, body: hasBody(request.headers) ? input.body : undefined, signal: input.signal }, activeTemps);
      unread.delete(request);
      reply.header('repr-digest', formatSha256Digest(result.sha256));
      // RFC 9110 §9.3.4: stored without transformation, so the new validator may be sent.
      if (result.etag !== undefined) reply.header('etag', result.etag);
      if (!result.created) return reply.code(204).send();
      // RFC 9110 §9.3.4: 201 Created when a new resource was made.
      return reply.code(201).header('location', `/files/${target.segments.map(encodeURIComponent).join('/')}`).header('content-type', 'application/json; charset=utf-8')
        .send(JSON.stringify({ path: target.relative, size: result.size, sha256: result.sha256 }));
    });
  });

  function markUnread(request: FastifyRequest): void {
    if (hasBody(request.headers)) unread.add(request);
  }

  function baseUrl(request: FastifyRequest): string {
    const addr = request.raw.socket.localAddress ?? '127.0.0.1';
    const port = request.raw.socket.localPort ?? 80;
    const localHost = addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
    return requestBaseUrl({ headers: request.headers, trustProxy: cfg.trustProxy, encrypted: 'encrypted' in request.raw.socket, localHost });
  }

  function bodyInput(request: FastifyRequest, reply: FastifyReply): BodyInput {
    // Not disposed: the listener lives as long as the response (a body still being drained
    // after the answer aborts nothing, the response has finished by then).
    const gone = abortOnClose(reply.raw, () => new FerryError('FERRY_ERR_UPLOAD_INCOMPLETE', 'the client went away'));
    // No abort on shutdown: in-flight uploads get --shutdown-grace to finish (SPEC §1); when
    // the server then cuts their connections, they keep what they stored.
    const signal = gone.signal;
    const raw = request.body instanceof Readable ? request.body : Readable.from([]);
    const subject: TransferSubject = { identity: request.identity, clientAddress: request.ip };
    return {
      body: deps.transfer.paceUpload(subject, raw, signal),
      headers: request.headers,
      trailers: () => request.raw.trailers as HeaderBag,
      signal,
    };
  }

  /** Taken over by another request, or the client is gone: no answer can be sent. */
  function handleCut(request: FastifyRequest, reply: FastifyReply, outcome: WriteOutcome): boolean {
    if (outcome.takenOver || reply.raw.destroyed || request.raw.socket.destroyed) {
      reply.hijack();
      request.raw.socket.destroy();
      return true;
    }
    return false;
  }

  return { service, sweep };
}

function progressHeaders(record: UploadRecord): Record<string, string> {
  const h: Record<string, string> = {};
  if (record.concat !== 'final' || record.state === 'done') h['upload-offset'] = String(record.offset);
  // §Expiration: "This header MUST be included in every PATCH response if the upload is going to expire."
  if (record.state === 'receiving' || record.state === 'waiting') h['upload-expires'] = new Date(record.expiresAt).toUTCString();
  return h;
}

/** Where a finished upload was published (`/files/...`). */
function targetHeader(record: UploadRecord): Record<string, string> {
  if (record.state !== 'done' || record.target === undefined) return {};
  return { 'ferry-file': `/files/${record.target.split('/').map(encodeURIComponent).join('/')}` };
}

function withHeaders(err: unknown, headers: Record<string, string>): unknown {
  if (!isFerryError(err)) return err;
  return new FerryError(err.code, err.message, { headers: { ...headers, ...err.headers }, extra: { ...err.extra }, cause: err.cause ?? err });
}

/** The still-encoded path after `/files/` (the router has decoded `*`; the jail wants the raw form). */
function rawPathOf(url: string, decoded: string): string {
  const pathPart = url.split('?')[0] ?? '';
  const m = /^\/files\/(.*)$/.exec(pathPart);
  return m === null ? encodeURIComponent(decoded) : m[1]!;
}
