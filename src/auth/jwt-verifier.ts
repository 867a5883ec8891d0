/**
 * JWT bearer tokens (RFC 7519) verified with `jose`: HS256 with a shared secret, RS256 and
 * EdDSA with a public key or a JWKS. The accepted algorithms follow from the keys configured
 * (never from the token's header alone: no "alg: none", no RS/HS confusion). `exp` is
 * required; `iss` and `aud` are checked when configured; `exp`/`nbf` tolerate the clock skew.
 * The role comes from the `role` claim (or the one named by --jwt-role-claim).
 */
import type { KeyObject } from 'node:crypto';
import { createLocalJWKSet, jwtVerify, errors, type JSONWebKeySet, type JWTVerifyGetKey, type JWSAlgorithm } from 'jose';
import { ROLES, roleAtLeast, type Role } from '../core/access.ts';

export interface JwtVerifierOptions {
  /** HS256 shared secret (UTF-8). */
  readonly secret?: string | undefined;
  /** RS256 (RSA) or EdDSA (Ed25519) public key. */
  readonly publicKey?: KeyObject | undefined;
  /** A JWK Set with RS256 / EdDSA keys, selected by `kid`. */
  readonly jwks?: JSONWebKeySet | undefined;
  readonly issuer?: string | undefined;
  readonly audience?: string | undefined;
  /** Claim carrying the role (default `role`). */
  readonly roleClaim?: string | undefined;
  readonly clockSkewMs?: number | undefined;
}

/** Why a JWT was refused (label of ferry_auth_failures_total). */
export type JwtFailureReason =
  | 'jwt-expired' | 'jwt-not-yet-valid' | 'jwt-audience' | 'jwt-issuer' | 'jwt-claims'
  | 'jwt-signature' | 'jwt-algorithm' | 'jwt-unknown-key' | 'jwt-role' | 'jwt-malformed';

export type JwtResult =
  | { readonly ok: true; readonly subject: string; readonly role: Role }
  | { readonly ok: false; readonly reason: JwtFailureReason; readonly detail: string };

export interface JwtVerifier {
  readonly algorithms: readonly JWSAlgorithm[];
  verify(token: string, nowMs?: number): Promise<JwtResult>;
}

/** True when the string has the shape of a JWS compact serialisation (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

function algorithmsFor(key: KeyObject): JWSAlgorithm[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256'];
    case 'ed25519': return ['EdDSA', 'Ed25519'];
    default: throw new TypeError(`unsupported public key type "${String(key.asymmetricKeyType)}" (use an RSA or Ed25519 key)`);
  }
}

/** The highest known role in a claim value (a string, or an array of strings). */
function roleFrom(value: unknown): Role | undefined {
  const values = Array.isArray(value) ? value : [value];
  let best: Role | undefined;
  for (const v of values) {
    if (typeof v === 'string' && (ROLES as readonly string[]).includes(v) && (best === undefined || roleAtLeast(v as Role, best))) best = v as Role;
  }
  return best;
}

function failure(err: unknown): JwtResult {
  if (err instanceof errors.JWTExpired) return { ok: false, reason: 'jwt-expired', detail: 'The token expired' };
  if (err instanceof errors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud': return { ok: false, reason: 'jwt-audience', detail: 'The token is not meant for this server (aud)' };
      case 'iss': return { ok: false, reason: 'jwt-issuer', detail: 'The token comes from an issuer this server does not accept (iss)' };
      case 'nbf': return { ok: false, reason: 'jwt-not-yet-valid', detail: 'The token is not valid yet (nbf)' };
      default: return { ok: false, reason: 'jwt-claims', detail: `The token's "${err.claim}" claim is missing or invalid` };
    }
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) return { ok: false, reason: 'jwt-signature', detail: 'The token signature does not verify' };
  if (err instanceof errors.JOSEAlgNotAllowed) return { ok: false, reason: 'jwt-algorithm', detail: 'The token is signed with an algorithm this server does not accept' };
  if (err instanceof errors.JWKSNoMatchingKey || err instanceof errors.JWKSMultipleMatchingKeys) return { ok: false, reason: 'jwt-unknown-key', detail: 'The token is signed with a key this server does not know' };
  return { ok: false, reason: 'jwt-malformed', detail: 'The token is not a valid JWT' };
}

/** Builds a verifier; throws a TypeError when no usable key is configured. */
export function createJwtVerifier(options: JwtVerifierOptions): JwtVerifier {
  const secret = options.secret === undefined ? undefined : new TextEncoder().encode(options.secret);
  const jwks = options.jwks === undefined ? undefined : createLocalJWKSet(options.jwks);
  const algorithms = new Set<JWSAlgorithm>();
  if (secret !== undefined) algorithms.add('HS256');
  if (options.publicKey !== undefined) for (const a of algorithmsFor(options.publicKey)) algorithms.add(a);
  if (jwks !== undefined) for (const a of ['RS256', 'EdDSA', 'Ed25519'] as const) algorithms.add(a);
  if (algorithms.size === 0) throw new TypeError('JWT verification needs a secret, a public key or a JWKS');
  const roleClaim = options.roleClaim ?? 'role';
  const publicKey = options.publicKey;

  const getKey: JWTVerifyGetKey = async (header, token) => {
    if (header.alg === 'HS256') {
      if (secret === undefined) throw new errors.JOSEAlgNotAllowed('HS256 is not accepted');
      return secret;
    }
    if (jwks !== undefined && (header.kid !== undefined || publicKey === undefined)) return jwks(header, token);
    if (publicKey !== undefined) return publicKey;
    throw new errors.JOSEAlgNotAllowed(`${header.alg ?? 'none'} is not accepted`);
  };

  return {
    algorithms: [...algorithms],
    async verify(token, nowMs) {
      let payload: Record<string, unknown>;
      try {
        const result = await jwtVerify(token, getKey, {
          algorithms: [...algorithms],
          issuer: options.issuer,
          audience: options.audience,
          clockTolerance: Math.round((options.clockSkewMs ?? 0) / 1000),
          requiredClaims: ['exp'],
          ...(nowMs === undefined ? {} : { currentDate: new Date(nowMs) }),
        });
        payload = result.payload;
      } catch (err) {
        return failure(err);
      }
      const role = roleFrom(payload[roleClaim]);
      if (role === undefined) return { ok: false, reason: 'jwt-role', detail: `The token has no "${roleClaim}" claim with one of ${ROLES.join(', ')}` };
      const subject = typeof payload.sub === 'string' && payload.sub !== '' ? payload.sub : 'jwt';
      return { ok: true, subject, role };
    },
  };
}
