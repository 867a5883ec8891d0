/** Ferry's programmatic API. */
export { createFerryServer, type FerryServer, type CreateServerOptions } from './server/index.ts';
export { loadConfig, type FerryConfig, type LoadConfigOptions } from './config/index.ts';
export { FerryError, type FerryErrorCode } from './core/index.ts';
