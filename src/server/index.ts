export { createFerryServer, type FerryServer, type CreateServerOptions } from './create-server.ts';
export type { CapabilityDeps } from './capability-routes.ts';
