/**
 * Serving: `GET`/`HEAD /files/{path}` (downloads with ranges, conditional requests,
 * compression, digests) and `GET /api/list/{dir}` (paged folder listings).
 * The composition root calls `registerServeRoutes(app, deps)` once.
 */
import type { FastifyInstance } from 'fastify';
import { registerFilesRoutes } from './files-route.ts';
import { registerListRoutes } from './list-route.ts';
import { ProgressWatchdog } from './progress-watchdog.ts';
import type { ServeDeps } from './types.ts';

export type { ServeDeps, ServeConfig } from './types.ts';
export { FILES_ROUTE } from './files-route.ts';
export { registerLinksRoutes, type LinksRouteDeps, type LinksConfig } from './links-route.ts';
export { registerZipRoutes, ZIP_ROUTE, type ZipRouteDeps, type ZipRouteConfig } from './zip-route.ts';
export { encodeCursor, decodeCursor, LIST_DEFAULT_LIMIT, LIST_MAX_LIMIT, type Listing, type ListingEntry } from './list-route.ts';

export async function registerServeRoutes(app: FastifyInstance, deps: ServeDeps): Promise<void> {
  const watchdog = new ProgressWatchdog(deps.config.sendTimeout);
  app.addHook('onClose', async () => { watchdog.close(); });
  registerFilesRoutes(app, deps, watchdog);
  registerListRoutes(app, deps);
}
