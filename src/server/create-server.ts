/**
 * Composition root: builds the Fastify app, wires storage, meta, observability and every
 * capability's routes, and owns the lifecycle (listen, drain, close).
 */
import http from 'node:http';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { FerryConfig } from '../config/index.ts';
import { FerryError, toProblem } from '../core/index.ts';
import { createFailoverStorage, createLocalRoot, createStorage, FailoverStorage, type Storage, type StorageChoice, type WriteJournal } from '../storage/index.ts';
import { createEmbeddedMeta, type MetaStore } from '../meta/index.ts';
import { createLogger, redactUrl, type Logger } from '../observability/logger.ts';
import { createMetrics, type FerryMetrics } from '../observability/metrics.ts';
import { createTransferControl, type TransferControl } from '../limits/index.ts';
import { registerAccessHook } from './access-hook.ts';
import { registerSystemRoutes } from './system-routes.ts';
import { registerWriteGate } from './write-gate.ts';
import { registerCapabilityRoutes } from './capability-routes.ts';
import { compileProxyTrust, resolveClientAddress, sanitizeForwardedHeaders } from './proxy-trust.ts';
import { createBodyGuard, hasRequestBody } from './body-guard.ts';
import { installConnectionGuard, planConnectionLimits, readFdSoftLimit, type ConnectionGuard } from './connection-guard.ts';
import { createEventSummary } from './event-summary.ts';

/** An `X-Request-Id` a client may choose: short and plain (it is copied into every log line). */
const REQUEST_ID = /^[A-Za-z0-9._:@/+=-]{1,128}$/;

/** How often a burst of refused or cut connections is summed up in the log. */
const NET_LOG_INTERVAL_MS = 10_000;

export interface CreateServerOptions {
  /** A logger to use instead of a new one on stdout (tests). */
  logger?: Logger;
}

export interface FerryServer extends AsyncDisposable {
  readonly app: FastifyInstance;
  readonly config: FerryConfig;
  readonly storage: Storage;
  readonly meta: MetaStore;
  readonly metrics: FerryMetrics;
  readonly logger: Logger;
  /** Starts listening; resolves to the base URL, e.g. `http://127.0.0.1:8080`. */
  listen(): Promise<string>;
  /** The base URL once listening. */
  readonly url: string;
  readonly draining: boolean;
  /**
   * Graceful stop: readiness goes false, no new connections, in-flight transfers get up to
   * `graceMs` (default --shutdown-grace) to finish, then remaining connections are cut.
   * Idempotent.
   */
  close(graceMs?: number): Promise<void>;
}

/** The backup --storage-backup names (undefined for none); an S3 backup shares the primary's prefix, region and path style. */
function backupChoice(config: FerryConfig): StorageChoice | undefined {
  if (config.storageBackup === 's3') {
    return {
      kind: 's3', bucket: config.backupS3Bucket ?? '', prefix: config.s3Prefix, region: config.s3Region, forcePathStyle: config.s3PathStyle,
      maxSockets: config.s3MaxSockets, timeoutMs: config.s3Timeout, idleTimeoutMs: config.s3IdleTimeout, dotfiles: config.dotfiles, ...(config.backupS3Endpoint === undefined ? {} : { endpoint: config.backupS3Endpoint }),
    };
  }
  if (config.storageBackup === 'local') {
    return { kind: 'local', root: config.backupRoot ?? '', dotfiles: config.dotfiles, followSymlinks: config.followSymlinks, openFileReuseMs: config.openFileReuse };
  }
  return undefined;
}

/** The primary with its backup and breaker when --storage-backup is set; the primary alone otherwise. */
function buildStorage(config: FerryConfig, logger: Logger, journal: WriteJournal): Promise<Storage> {
  const backup = backupChoice(config);
  if (backup === undefined) return createStorage(storageChoice(config, journal));
  return createFailoverStorage({
    primary: storageChoice(config, journal), backup,
    failureThreshold: config.storageFailureThreshold, failureWindowMs: config.storageFailureWindow, cooldownMs: config.storageCooldown,
    onTransition: (t) => {
      const line = { event: 'storage-circuit', backend: t.backend, from: t.from, to: t.to, reason: t.reason };
      if (t.to === 'open') logger.warn(line, `storage ${t.backend} unavailable: reads go to the backup, uploads answer 503 (${t.reason})`);
      else logger.info(line, `storage ${t.backend} circuit ${t.to} (${t.reason})`);
    },
    onMidStream: (e) => {
      const line = { event: 'storage-failover-stream', path: e.path, offset: e.offset, outcome: e.outcome, reason: e.reason };
      if (e.outcome === 'continued') logger.info(line, `download continued from the backup at byte ${e.offset} (${e.reason})`);
      else logger.warn(line, `download cut at byte ${e.offset}: ${e.reason}`);
    },
  });
}

/**
 * The backend --storage names, with its options. On local disk, uploads are staged in
 * `<state-dir>/uploads` (where they always were) and cross-filesystem publishes are journalled
 * in the meta store.
 */
function storageChoice(config: FerryConfig, journal: WriteJournal): StorageChoice {
  if (config.storage === 's3') {
    return {
      kind: 's3', bucket: config.s3Bucket ?? '', prefix: config.s3Prefix, region: config.s3Region, forcePathStyle: config.s3PathStyle,
      maxSockets: config.s3MaxSockets, partSize: config.s3PartSize, timeoutMs: config.s3Timeout, idleTimeoutMs: config.s3IdleTimeout, dotfiles: config.dotfiles, ...(config.s3Endpoint === undefined ? {} : { endpoint: config.s3Endpoint }),
    };
  }
  return {
    kind: 'local', root: config.root, dotfiles: config.dotfiles, followSymlinks: config.followSymlinks, openFileReuseMs: config.openFileReuse,
    stagingDir: path.join(config.stateDir, 'uploads'), journal,
  };
}

export async function createFerryServer(config: FerryConfig, options: CreateServerOptions = {}): Promise<FerryServer> {
  // The meta store creates the state dir; the served root is created here on a fresh install.
  await createLocalRoot(config.root);
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const meta = await createEmbeddedMeta(config.stateDir);
  const storage = await buildStorage(config, logger, meta).catch(async (err: unknown) => { await meta.close(); throw err; });
  const metrics = createMetrics();
  if (storage instanceof FailoverStorage) storage.announce();
  const transfer: TransferControl = createTransferControl(config);
  let draining = false;

  // Who is a trusted proxy (--trust-proxy): the same function decides request.ip (Fastify,
  // proxy-addr), the forwarded URL headers and the per-client connection cap.
  const trust = compileProxyTrust(config.trustProxy);
  const connectionLimits = planConnectionLimits({ fdLimit: await readFdSoftLimit(), maxConnections: config.maxConnections, maxConnectionsClient: config.maxConnectionsClient });
  const refusedLog = createEventSummary(logger, 'connection-refused', 'connections refused at accept', NET_LOG_INTERVAL_MS);
  const cutLog = createEventSummary(logger, 'slow-body', 'connections closed: request body too slow', NET_LOG_INTERVAL_MS);
  // --limit-upload-rate paces how fast uploads are read; never ask a client for more than half of it.
  const minUploadRate = config.limitUploadRate === undefined ? config.minUploadRate : Math.min(config.minUploadRate, Math.floor(config.limitUploadRate / 2));
  const bodyGuard = createBodyGuard({
    bodyTimeoutMs: config.bodyTimeout,
    minUploadRateBytesPerSec: minUploadRate,
    uploadWindowMs: config.sendTimeout,
    onCut: (_req, reason) => { metrics.connectionsCut.inc({ reason }); cutLog.note(reason); },
  });
  let connectionGuard: ConnectionGuard | undefined;
  metrics.countOpenConnections(() => connectionGuard?.open ?? 0);
  /** First thing for every request, before Fastify reads it. */
  const admit = (req: http.IncomingMessage, res: http.ServerResponse, expectContinue: boolean): void => {
    sanitizeForwardedHeaders(req, trust);
    bodyGuard.watch(req, res, expectContinue);
  };

  const app = Fastify({
    // pino Logger is a FastifyBaseLogger; the cast keeps FastifyInstance at its default generics.
    loggerInstance: logger as FastifyBaseLogger,
    // One log line per finished transfer is written by the routes; no generic request lines.
    logController: new LogController({ disableRequestLogging: true }),
    // A client's X-Request-Id is kept for correlation only when it is short and plain.
    requestIdHeader: false,
    // Every line about a request names its client (the right-most untrusted address, as
    // request.ip computes it), bound once when Fastify makes the request's logger.
    childLoggerFactory: (parent, bindings, options, raw) => {
      const forwarded = raw.headers['x-forwarded-for'];
      const client = resolveClientAddress(raw.socket.remoteAddress ?? '', Array.isArray(forwarded) ? forwarded.join(',') : forwarded, trust);
      return parent.child({ ...bindings, client }, options);
    },
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    trustProxy: trust ?? false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 8192 },
    // A URL the router cannot decode (a malformed percent-escape) is a bad path: problem+json
    // like every other error, not Fastify's own JSON.
    frameworkErrors: (error, _request, reply) => {
      const invalid = new FerryError(error.code === 'FST_ERR_BAD_URL' ? 'FERRY_ERR_PATH_INVALID' : 'FERRY_ERR_BAD_REQUEST', error.code === 'FST_ERR_BAD_URL' ? 'malformed percent-encoding in URL' : 'bad request');
      const problem = toProblem(invalid);
      // The framework types this reply with the route's generics; it is a plain reply here.
      void (reply as FastifyReply).code(problem.status).header('content-type', 'application/problem+json; charset=utf-8').send(JSON.stringify(problem.body));
    },
    bodyLimit: 1024 * 1024,
    // Our own http.Server so the guards against slow and numerous clients are explicit:
    // headersTimeout against slowloris; the body guard (src/server/body-guard.ts) against
    // slow bodies; the socket idle timeout (= --send-timeout) closes a connection that makes
    // no progress in either direction; requestTimeout off, because a 50 GB upload body
    // legitimately takes hours (the body guard bounds its rate instead); the connection
    // guard caps open connections in total, per client and by free fds.
    serverFactory: (handler) => {
      const server = http.createServer({
        headersTimeout: config.headersTimeout,
        requestTimeout: 0,
        keepAliveTimeout: config.keepAliveTimeout,
        connectionsCheckingInterval: Math.min(1000, config.headersTimeout),
      }, (req, res) => { admit(req, res, false); handler(req, res); });
      // RFC 9110 §10.1.1: a client that sends `Expect: 100-continue` waits before the body.
      // A body that is already over --max-upload-size by its Content-Length is refused with
      // 413 at once. Otherwise the 100 is sent only when the route first reads the body
      // (body-guard.ts), i.e. after authentication and the route's own prechecks: a refused
      // request is never invited to send its body.
      server.on('checkContinue', (req, res) => {
        const declared = Number(req.headers['content-length']);
        if (config.maxUploadSize !== undefined && Number.isFinite(declared) && declared > config.maxUploadSize) {
          const problem = toProblem(new FerryError('FERRY_ERR_UPLOAD_TOO_LARGE', `Upload of ${declared} bytes is larger than the limit of ${config.maxUploadSize} bytes`, { extra: { limit: config.maxUploadSize } }));
          res.writeHead(413, { 'content-type': 'application/problem+json; charset=utf-8', connection: 'close' });
          res.end(JSON.stringify(problem.body));
          return;
        }
        admit(req, res, true);
        handler(req, res);
      });
      connectionGuard = installConnectionGuard(server, {
        ...connectionLimits,
        isTrustedProxy: (address) => trust !== undefined && trust(address, 0),
        onRefuse: (reason) => { metrics.connectionsRefused.inc({ reason }); refusedLog.note(reason); },
      });
      server.setTimeout(config.sendTimeout, (socket) => {
        logger.info({ event: 'send-timeout', remoteAddress: socket.remoteAddress }, 'connection made no progress; closed');
        socket.destroy();
      });
      return server;
    },
  });

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  // A route that takes the body as a stream (uploads) is held to the upload rate, not to the
  // deadline of a body parsed into memory.
  app.addHook('preValidation', async (request) => {
    if (request.body instanceof Readable) bodyGuard.markStreamed(request.raw);
  });
  // An answer sent before the request body was read to its end (a refusal, or a route that
  // does not want the body) closes the connection: the server does not keep reading an
  // unbounded body just to reuse the connection (RFC 9112 §9.6: "close" means the
  // connection will not persist). A route that took the body as a stream (uploads) tears it
  // down itself; the body guard still cuts it LINGER_MS after the answer.
  app.addHook('onSend', async (request, reply, payload) => {
    if (hasRequestBody(request.raw) && !request.raw.complete && !bodyGuard.isStreamed(request.raw)) reply.header('connection', 'close');
    return payload;
  });
  app.addHook('onClose', async () => {
    bodyGuard.close();
    refusedLog[Symbol.dispose]();
    cutLog[Symbol.dispose]();
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    metrics.httpDuration.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((error: FastifyError | FerryError | Error, request, reply) => {
    if (reply.sent || reply.raw.headersSent) {
      // The body had started: the only honest signal left is a cut connection.
      request.log.warn({ err: error, url: redactUrl(request.url) }, 'error after the response started; connection destroyed');
      reply.raw.destroy();
      return;
    }
    let problemSource: unknown = error;
    if (!(error instanceof FerryError)) {
      const status = (error as FastifyError).statusCode;
      if (status !== undefined && status >= 400 && status < 500) {
        problemSource = new FerryError(status === 413 ? 'FERRY_ERR_UPLOAD_TOO_LARGE' : status === 404 ? 'FERRY_ERR_NOT_FOUND' : status === 405 ? 'FERRY_ERR_METHOD_NOT_ALLOWED' : 'FERRY_ERR_BAD_REQUEST', error.message);
      } else {
        request.log.error({ err: error, url: redactUrl(request.url) }, 'unhandled error');
      }
    } else if (error.statusCode >= 500) {
      request.log.error({ err: error, url: redactUrl(request.url) }, error.message);
    }
    const problem = toProblem(problemSource, redactUrl(request.url.split('?')[0] ?? '/'));
    reply.code(problem.status).headers(problem.headers).header('content-type', 'application/problem+json; charset=utf-8').header('x-content-type-options', 'nosniff');
    return reply.send(JSON.stringify(problem.body));
  });

  app.setNotFoundHandler({}, (request, reply) => {
    const problem = toProblem(new FerryError('FERRY_ERR_NOT_FOUND', `No route for ${request.method} ${redactUrl(request.url.split('?')[0] ?? '/')}`));
    return reply.code(404).header('content-type', 'application/problem+json; charset=utf-8').send(JSON.stringify(problem.body));
  });

  registerAccessHook(app, config);
  registerWriteGate(app, storage);
  registerSystemRoutes(app, { storage, metrics, isDraining: () => draining });
  await registerCapabilityRoutes(app, { config, storage, meta, logger, transfer });

  let url = '';
  let closing: Promise<void> | undefined;

  const close = (graceMs = config.shutdownGrace): Promise<void> => {
    closing ??= (async () => {
      draining = true;
      const server = app.server;
      const timer = setTimeout(() => {
        logger.warn({ graceMs }, 'shutdown grace elapsed; closing remaining connections');
        server.closeAllConnections();
      }, graceMs);
      timer.unref();
      try {
        await app.close();
      } finally {
        clearTimeout(timer);
        metrics[Symbol.dispose]();
        await meta.close();
        await storage.close?.();
      }
    })();
    return closing;
  };

  return {
    app, config, storage, meta, metrics, logger,
    get url() { return url; },
    get draining() { return draining; },
    async listen() {
      await app.listen({ host: config.host, port: config.port });
      const addr = app.server.address();
      if (addr === null || typeof addr === 'string') throw new Error('server has no TCP address');
      const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
      url = `http://${host}:${addr.port}`;
      return url;
    },
    close,
    async [Symbol.asyncDispose]() { await close(0); },
  };
}
