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

export interface CapabilityDeps {
  config: FerryConfig;
  storage: Storage;
  meta: MetaStore;
  logger: Logger;
  transfer: TransferControl;
}

export async function registerCapabilityRoutes(_app: FastifyInstance, _deps: CapabilityDeps): Promise<void> {
  // Capabilities are added here as they land: files + listing (serve), zip, uploads, links.
}
