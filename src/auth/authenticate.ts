/**
 * Who a request is (authenticate) and whether that may use a route (decideAccess): pure
 * decisions that return data; the Fastify hook in src/server applies them. Credentials, in
 * order: a signed link in the URL (GET/HEAD of /files and /zip only), an `Authorization:
 * Bearer` static token or JWT (RFC 6750 §2.1), else anonymous with the --anonymous role.
 */
import { roleAtLeast, type Access, type Identity, type Role } from '../core/access.ts';
import type { FerryErrorCode } from '../core/errors.ts';
import type { StaticTokens } from './static-tokens.ts';
import { looksLikeJwt, type JwtVerifier } from './jwt-verifier.ts';
import { hasLinkSignature, parseQuery, verifySignedLink } from './signed-link.ts';

export interface Authenticator {
  readonly tokens: StaticTokens | undefined;
  readonly jwt: JwtVerifier | undefined;
  /** Link keys, signing key first. */
  readonly linkKeys: readonly Uint8Array[];
  /** Role of requests without credentials (undefined: none). */
  readonly anonymousRole: Role | undefined;
}

export interface AuthInput {
  readonly method: string;
  /** Request target as received: percent-encoded path and query. */
  readonly url: string;
  readonly authorization: string | undefined;
  /** Client address (honours --trust-proxy). */
  readonly clientAddress: string;
  /** Whether this route accepts signed links (GET/HEAD of /files and /zip). */
  readonly linkAllowed: boolean;
  readonly nowMs: number;
}

/** A refusal: status, error code, metric reason, client-safe detail, headers. */
export interface AuthDenial {
  readonly ok: false;
  readonly code: FerryErrorCode;
  /** Label of ferry_auth_failures_total. */
  readonly reason: string;
  readonly detail: string;
  readonly headers: Readonly<Record<string, string>>;
}

export type AuthResult = { readonly ok: true; readonly identity: Identity } | AuthDenial;

const REALM = 'Bearer realm="ferry"';

/** RFC 6750 §3: the challenge, with error and error_description when a token was refused. */
export function bearerChallenge(error?: 'invalid_token' | 'insufficient_scope' | 'invalid_request', description?: string): string {
  if (error === undefined) return REALM;
  const desc = description === undefined ? '' : `, error_description="${description.replace(/["\\]/g, '')}"`;
  return `${REALM}, error="${error}"${desc}`;
}

function invalidToken(reason: string, detail: string): AuthDenial {
  return { ok: false, code: 'FERRY_ERR_AUTH_INVALID', reason, detail, headers: { 'www-authenticate': bearerChallenge('invalid_token', detail) } };
}

function linkDenial(reason: string, detail: string): AuthDenial {
  return { ok: false, code: 'FERRY_ERR_LINK_INVALID', reason, detail, headers: {} };
}

/** Identifies a request. Never throws for bad input: every problem is a denial. */
export async function authenticate(auth: Authenticator, input: AuthInput): Promise<AuthResult> {
  const q = input.url.indexOf('?');
  if (q !== -1 && hasLinkSignature(parseQuery(input.url.slice(q + 1)))) {
    if (!input.linkAllowed) return linkDenial('link-route', 'Signed links work only for GET and HEAD of /files and /zip');
    const r = verifySignedLink(input.method, input.url, auth.linkKeys, input.nowMs);
    if (!r.ok) return linkDenial(r.reason, r.detail);
    const identity: Identity = r.maxRateBytesPerSec === undefined
      ? { kind: 'link', name: input.clientAddress, role: 'read' }
      : { kind: 'link', name: input.clientAddress, role: 'read', maxRateBytesPerSec: r.maxRateBytesPerSec };
    return { ok: true, identity };
  }

  if (input.authorization !== undefined) {
    const m = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(input.authorization);
    if (m === null) {
      return /^Bearer\b/i.test(input.authorization)
        ? invalidToken('malformed', 'The Authorization header is not a valid Bearer token')
        : { ok: false, code: 'FERRY_ERR_AUTH_INVALID', reason: 'scheme', detail: 'Only Bearer tokens are accepted', headers: { 'www-authenticate': bearerChallenge('invalid_request', 'Use the Bearer scheme') } };
    }
    const token = m[1]!;
    const entry = auth.tokens?.verify(token);
    if (entry !== undefined) return { ok: true, identity: { kind: 'token', name: entry.name, role: entry.role } };
    if (auth.jwt !== undefined && looksLikeJwt(token)) {
      const r = await auth.jwt.verify(token, input.nowMs);
      if (!r.ok) return invalidToken(r.reason, r.detail);
      return { ok: true, identity: { kind: 'jwt', name: r.subject, role: r.role } };
    }
    return invalidToken('token-unknown', 'Unknown token');
  }

  return { ok: true, identity: { kind: 'anonymous', name: input.clientAddress, role: auth.anonymousRole } };
}

export interface AccessContext {
  /** The TCP peer is loopback and the request carries no forwarding header (never from X-Forwarded-For). */
  readonly loopback: boolean;
  /** Tokens, JWT keys or --link-keys are configured (then loopback alone no longer opens diagnostics). */
  readonly credentialsConfigured: boolean;
  readonly metricsPublic: boolean;
  /** The route's answer can contain the process's secrets (a heap snapshot). */
  readonly exposesSecrets?: boolean;
  /** See loopbackMaySeeSecrets: false when a secret in memory would give loopback more than it has. */
  readonly secretsOpenToLoopback?: boolean;
}

/**
 * Whether an anonymous loopback caller may see the process's memory (a heap snapshot). It
 * holds every secret Ferry has: tokens in flight and JWT keys (when configured), the
 * --link-keys, and otherwise the random per-start link key. That key signs links with role
 * `read`, so it is harmless only while anonymous callers already have `read`. Configured
 * credentials of any kind (link keys included) close it for good.
 */
export function loopbackMaySeeSecrets(credentialsConfigured: boolean, anonymousRole: Role | undefined): boolean {
  return !credentialsConfigured && roleAtLeast(anonymousRole, 'read');
}

export type AccessDecision = { readonly ok: true } | AuthDenial;

function deny(identity: Identity, ctx: AccessContext, what: string): AuthDenial {
  if (identity.kind === 'anonymous') {
    if (!ctx.credentialsConfigured && (what === 'metrics' || what === 'diagnostics')) {
      return { ok: false, code: 'FERRY_ERR_FORBIDDEN_ORIGIN', reason: 'origin', detail: `${what === 'metrics' ? 'Metrics are' : 'Diagnostics are'} served to loopback only (no credentials are configured)`, headers: {} };
    }
    return { ok: false, code: 'FERRY_ERR_AUTH_REQUIRED', reason: 'required', detail: 'Credentials required', headers: { 'www-authenticate': bearerChallenge() } };
  }
  return {
    ok: false, code: 'FERRY_ERR_AUTH_FORBIDDEN', reason: 'forbidden',
    detail: identity.kind === 'link' ? 'A signed link only allows downloading what it points to' : `The role "${identity.role ?? 'none'}" may not use this route`,
    headers: identity.kind === 'link' ? {} : { 'www-authenticate': bearerChallenge('insufficient_scope', 'This route needs a higher role') },
  };
}

/**
 * Whether `identity` may use a route declaring `access` (SPEC §2.3):
 * public → everyone; read/write/admin → at least that role; metrics → loopback, admin or
 * --metrics-public; diagnostics (`loopback-or-admin`) → admin, or loopback while no
 * credentials are configured at all, and for a route that exposes secrets (the heap) only
 * while loopbackMaySeeSecrets holds.
 */
export function decideAccess(access: Access, identity: Identity, ctx: AccessContext): AccessDecision {
  switch (access) {
    case 'public':
      return { ok: true };
    case 'metrics':
      if (identity.kind !== 'link' && (ctx.metricsPublic || ctx.loopback || roleAtLeast(identity.role, 'admin'))) return { ok: true };
      return deny(identity, ctx, 'metrics');
    case 'loopback-or-admin':
      if (identity.kind !== 'link' && (roleAtLeast(identity.role, 'admin') && identity.kind !== 'anonymous')) return { ok: true };
      if (identity.kind === 'anonymous' && ctx.loopback && !ctx.credentialsConfigured) {
        if (ctx.exposesSecrets !== true || ctx.secretsOpenToLoopback === true) return { ok: true };
        return {
          ok: false, code: 'FERRY_ERR_FORBIDDEN_SECRETS', reason: 'secrets',
          detail: 'A heap snapshot contains the signed-link key, which grants more than anonymous requests have; it needs an admin token (or --anonymous read)',
          headers: {},
        };
      }
      return deny(identity, ctx, 'diagnostics');
    default:
      if (roleAtLeast(identity.role, access)) return { ok: true };
      return deny(identity, ctx, 'route');
  }
}
