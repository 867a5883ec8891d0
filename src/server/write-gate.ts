/**
 * Writes do not fail over: while the primary's breaker is open (src/storage/failover), every
 * route that writes (`config.access: 'write'`: `PUT /files/…`, tus creation, PATCH, HEAD and
 * DELETE of an upload) answers 503 problem+json with Retry-After, before its body is read and
 * before anything is staged anywhere — the backup is never written. Registered after the
 * access hook: a request that is not authorised still gets its 401/403 first.
 */
import type { FastifyInstance } from 'fastify';
import { FailoverStorage, type Storage } from '../storage/index.ts';

export function registerWriteGate(app: FastifyInstance, storage: Storage): void {
  if (!(storage instanceof FailoverStorage)) return;
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config.access === 'write') storage.assertWritable();
  });
}
