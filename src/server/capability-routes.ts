/**
 * Registers every capability's routes. Each capability exports one `register*Routes(app, deps)`;
 * this file is the only place they meet.
 */
import type { FastifyInstance } from 'fastify';
import type { FerryConfig } from '../config/index.ts';
import type { Storage } from '../storage/index.ts';
import type { MetaStore } from '../meta/index.ts';
import type { Logger } from '../observability/logger.ts';
import type { TransferControl } from '../limits/index.ts';
import { registerServeRoutes } from '../serve/index.ts';
import { registerLinksRoutes, registerZipRoutes } from '../serve/index.ts';
import { registerUploadRoutes } from '../uploads/index.ts';

export interface CapabilityDeps {
  config: FerryConfig;
  storage: Storage;
  meta: MetaStore;
  logger: Logger;
  transfer: TransferControl;
}

export async function registerCapabilityRoutes(app: FastifyInstance, deps: CapabilityDeps): Promise<void> {
  await registerServeRoutes(app, deps);
  registerZipRoutes(app, deps);
  registerLinksRoutes(app, deps);
  // Uploads read X-Forwarded-Proto/-Host/-Prefix when told a proxy is trusted; the server has
  // already removed them from requests whose socket peer is not one (src/server/proxy-trust.ts).
  await registerUploadRoutes(app, { ...deps, config: { ...deps.config, trustProxy: deps.config.trustProxy !== false } });
}
