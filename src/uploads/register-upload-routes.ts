/**
 * HTTP wiring for uploads: tus 1.0 under `/uploads/` and `PUT /files/*`, in one encapsulated
 * Fastify plugin whose content-type parsers hand the raw body stream to the handlers (other
 * routes keep their JSON parsing). The services (store, tus service, sweeper) are built in
 * upload-services.ts, the handlers live in tus-handlers.ts and put-handler.ts. The expiry
 * sweeper and the crash recovery pass start only once the server listens (a second instance
 * that fails with EADDRINUSE must not touch the state dir it shares with the running one).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { TUS_VERSION } from './tus-headers.ts';
import type { SweepResult, TusService } from './tus-service.ts';
import { createUploadServices, type UploadRouteDeps } from './upload-services.ts';
import { createTusHandlers } from './tus-handlers.ts';
import { createPutHandler } from './put-handler.ts';
import { lingerUnreadBody } from './upload-request.ts';

export type { UploadConfig, UploadRouteDeps } from './upload-services.ts';

/** What the routes expose for tests and the composition root. */
export interface UploadsHandle {
  readonly service: TusService;
  /** One sweep now (expired uploads, orphaned files). */
  sweep(): Promise<SweepResult>;
}

const TUS_PATH = /^\/uploads(?:\/|$)/;

export async function registerUploadRoutes(app: FastifyInstance, deps: UploadRouteDeps): Promise<UploadsHandle> {
  const services = await createUploadServices(deps);
  /** Requests whose body may not be read to the end (see lingerUnreadBody). */
  const unread = new WeakSet<FastifyRequest>();
  const tus = createTusHandlers(services, unread);
  const put = createPutHandler(services, unread);

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    // The body stays a stream: tus PATCH/POST bodies and PUT bodies are streamed to disk.
    scope.addContentTypeParser('*', (_request, payload, done) => { done(null, payload); });

    scope.addHook('onSend', async (request, reply, payload) => {
      if (TUS_PATH.test(request.url) && request.method !== 'OPTIONS') reply.header('tus-resumable', TUS_VERSION);
      return payload;
    });
    scope.addHook('onResponse', async (request) => { lingerUnreadBody(unread, request); });

    // onListen, not onReady: ready() runs before the socket is bound, so a process whose
    // listen then fails (EADDRINUSE: another Ferry runs on this state dir) would already have
    // swept and recovered the other one's uploads.
    scope.addHook('onListen', async () => { services.start(); });
    scope.addHook('onClose', async () => { await services.close(); });

    for (const url of ['/uploads', '/uploads/', '/uploads/:id']) scope.options(url, { config: { access: 'public' } }, tus.options);
    scope.post('/uploads', { config: { access: 'write' } }, tus.create);
    scope.post('/uploads/', { config: { access: 'write' } }, tus.create);
    scope.route({ method: ['HEAD', 'PATCH', 'DELETE', 'POST'], url: '/uploads/:id', config: { access: 'write' }, handler: tus.upload });
    scope.put('/files/*', { config: { access: 'write' } }, put);
  });

  return { service: services.service, sweep: services.sweep };
}
