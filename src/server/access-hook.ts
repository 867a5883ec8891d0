/**
 * Enforces each route's declared `config.access`. Until credentials exist every request is
 * anonymous with the `read` role; diagnostics and metrics answer loopback only.
 * (Issue 5 replaces the identity part with tokens, JWT and signed links.)
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { FerryError, roleAtLeast, type Identity } from '../core/index.ts';
import type { FerryConfig } from '../config/index.ts';

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** The socket's peer address (never X-Forwarded-For: loopback checks must not be spoofable). */
export function peerAddress(request: FastifyRequest): string | undefined {
  return request.raw.socket.remoteAddress;
}

export function registerAccessHook(app: FastifyInstance, config: FerryConfig): void {
  app.addHook('onRequest', async (request) => {
    const identity: Identity = { kind: 'anonymous', name: request.ip, role: config.anonymous === 'none' ? undefined : 'read' };
    request.identity = identity;
    const access = request.routeOptions.config.access;
    if (access === undefined || access === 'public') return;
    const loopback = isLoopbackAddress(peerAddress(request));
    if (access === 'metrics') {
      if (config.metricsPublic || loopback || roleAtLeast(identity.role, 'admin')) return;
      throw new FerryError('FERRY_ERR_FORBIDDEN_ORIGIN', 'Metrics are served to loopback and admins only');
    }
    if (access === 'loopback-or-admin') {
      if (loopback) return;
      throw new FerryError('FERRY_ERR_FORBIDDEN_ORIGIN', 'Diagnostics are served to loopback only');
    }
    if (!roleAtLeast(identity.role, access)) {
      throw new FerryError('FERRY_ERR_AUTH_REQUIRED', 'Credentials required', { headers: { 'www-authenticate': 'Bearer realm="ferry"' } });
    }
  });
}
