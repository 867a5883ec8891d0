/**
 * Enforces each route's declared `config.access` (SPEC §2.3) with the identity from
 * src/auth: signed links, Bearer static tokens and JWTs, or anonymous per --anonymous.
 * 401 + WWW-Authenticate when credentials are missing or refused, 403 when the role is too
 * low or a signed link does not verify. A route that declares no access is treated as
 * admin-only (fail closed; the route-table sweep in test/integration/auth-matrix.test.ts
 * fails for it). Requests to /api/* also pass the per-client request-rate limit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError, abortOnClose, channels, publish, type Access, type CloseSignal, type Identity } from '../core/index.ts';
import { OptionError, toKebab, type FerryConfig } from '../config/index.ts';
import {
  authenticate, decideAccess, hasCredentials, loadAuthenticator, loopbackMaySeeSecrets, resolveAnonymousRole, AuthConfigError,
  type AuthDenial, type Authenticator,
} from '../auth/index.ts';
import { createRequestLimiter } from '../limits/index.ts';
import { hasForwardingHeader, wasForwarded } from './proxy-trust.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The answer can contain the process's secrets (a heap snapshot): see loopbackMaySeeSecrets. */
    exposesSecrets?: boolean;
  }
}

export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.');
}

/** The socket's peer address (never X-Forwarded-For: loopback checks must not be spoofable). */
export function peerAddress(request: FastifyRequest): string | undefined {
  return request.raw.socket.remoteAddress;
}

/**
 * Whether a request is local (for /metrics, and /debug/* while no credentials exist): the TCP
 * peer is loopback and the request carries no forwarding header (Forwarded, X-Forwarded-*,
 * X-Real-IP, Via...), with or without --trust-proxy. A reverse proxy on the same host
 * connects from loopback for every remote client; it adds such a header, which a client
 * cannot remove. A local client that adds one only makes itself remote.
 */
export function isLocalRequest(request: FastifyRequest): boolean {
  if (!isLoopbackAddress(peerAddress(request))) return false;
  return !wasForwarded(request.raw) && !hasForwardingHeader(request.headers);
}

/** Routes whose GET/HEAD accept signed links. */
const LINK_ROUTE = /^\/(?:files|zip)(?:\/|$)/;

/** Aborts when the client goes away before the response ends (for waits in hooks). */
function clientGone(reply: FastifyReply): CloseSignal {
  return abortOnClose(reply.raw, () => new DOMException('client went away', 'AbortError'));
}

async function loadOrOptionError(config: FerryConfig): Promise<Authenticator> {
  try {
    return await loadAuthenticator(config, config);
  } catch (err) {
    if (err instanceof AuthConfigError) throw new OptionError(`invalid value for option --${toKebab(err.option)}: ${err.message}`);
    throw err;
  }
}

export function registerAccessHook(app: FastifyInstance, config: FerryConfig): void {
  const anonymousRole = resolveAnonymousRole(config.anonymous, config.host);
  const credentialsConfigured = hasCredentials(config);
  const secretsOpenToLoopback = loopbackMaySeeSecrets(credentialsConfigured, anonymousRole);
  const requestLimiter = createRequestLimiter(config);
  const requestLimitActive = config.limitReqClient !== undefined || Object.values(config.roles ?? {}).some((r) => r?.limitReqClient !== undefined);
  let loading: Promise<Authenticator> | undefined;
  const getAuthenticator = (): Promise<Authenticator> => (loading ??= loadOrOptionError(config));
  const warnedRoutes = new Set<string>();

  // Tokens file, JWT keys: read once at start-up; a bad file stops the server from listening.
  app.addHook('onReady', async () => { await getAuthenticator(); });

  const refuse = (request: FastifyRequest, denial: AuthDenial): never => {
    publish(channels.authFailure, { reason: denial.reason });
    request.log.debug({ event: 'access-denied', reason: denial.reason, code: denial.code, route: request.routeOptions.url }, 'access denied');
    throw new FerryError(denial.code, denial.detail, { headers: { ...denial.headers } });
  };

  app.addHook('onRequest', async (request, reply) => {
    const anonymous: Identity = { kind: 'anonymous', name: request.ip, role: anonymousRole };
    let access: Access | undefined = request.routeOptions.config.access;
    const routeUrl = request.routeOptions.url ?? '';
    if (access === undefined) {
      if (request.is404) { request.identity = anonymous; return; }
      // Fail closed: a route that forgot to declare its access is admin-only.
      if (!warnedRoutes.has(routeUrl)) {
        warnedRoutes.add(routeUrl);
        request.log.warn({ route: routeUrl }, 'route declares no config.access; treated as admin-only');
      }
      access = 'admin';
    }
    if (access === 'public') { request.identity = anonymous; return; }

    const authenticator = await getAuthenticator();
    const linkAllowed = (request.method === 'GET' || request.method === 'HEAD') && access === 'read' && LINK_ROUTE.test(routeUrl);
    const result = await authenticate(authenticator, {
      method: request.method,
      url: request.url,
      authorization: request.headers.authorization,
      clientAddress: request.ip,
      linkAllowed,
      nowMs: Date.now(),
    });
    if (!result.ok) return refuse(request, result);
    const identity = result.identity;
    request.identity = identity;
    const decision = decideAccess(access, identity, {
      loopback: isLocalRequest(request), credentialsConfigured, metricsPublic: config.metricsPublic,
      exposesSecrets: request.routeOptions.config.exposesSecrets === true, secretsOpenToLoopback,
    });
    if (!decision.ok) return refuse(request, decision);

    if (requestLimitActive && routeUrl.startsWith('/api/')) {
      const gone = clientGone(reply);
      try {
        await requestLimiter.acquire({ identity, clientAddress: request.ip }, gone.signal);
      } finally {
        gone.dispose();
      }
    }
  });
}
