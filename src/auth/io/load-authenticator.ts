/**
 * Start-up I/O of the access area: reads the tokens file, the JWT public key (PEM) and the
 * JWKS file named by the options, validates them and builds the Authenticator. The only
 * place in src/auth/ that touches the filesystem.
 */
import { readFile } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import type { JSONWebKeySet } from 'jose';
import { createStaticTokens, parseTokensFile, type StaticTokens } from '../static-tokens.ts';
import { createJwtVerifier, type JwtVerifier } from '../jwt-verifier.ts';
import { resolveLinkKeys } from '../link-keys.ts';
import { resolveAnonymousRole } from '../anonymous-role.ts';
import type { Authenticator } from '../authenticate.ts';

/** The access options (config keys). */
export interface AuthOptions {
  readonly host: string;
  readonly anonymous: 'read' | 'none' | 'auto';
  readonly tokensFile?: string | undefined;
  readonly jwtSecret?: string | undefined;
  readonly jwtPublicKey?: string | undefined;
  readonly jwtJwksFile?: string | undefined;
  readonly jwtIssuer?: string | undefined;
  readonly jwtAudience?: string | undefined;
  readonly jwtRoleClaim?: string | undefined;
  readonly jwtClockSkew?: number | undefined;
  readonly linkKeys?: readonly string[] | undefined;
}

/** A problem with one access option; `option` is the config key. */
export class AuthConfigError extends Error {
  readonly option: string;
  constructor(option: string, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AuthConfigError';
    this.option = option;
  }
}

async function readText(option: string, file: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    throw new AuthConfigError(option, `cannot read ${file}: ${(err as Error).message}`, err);
  }
}

async function readJson(option: string, file: string): Promise<unknown> {
  const text = await readText(option, file);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new AuthConfigError(option, `${file} is not valid JSON: ${(err as Error).message}`, err);
  }
}

/**
 * True when tokens, JWT keys or signed-link keys are configured. Link keys count: whoever
 * holds one can mint read links (for as long as the keys are configured, on every instance
 * that shares them).
 */
export function hasCredentials(options: AuthOptions): boolean {
  return options.tokensFile !== undefined || options.jwtSecret !== undefined || options.jwtPublicKey !== undefined || options.jwtJwksFile !== undefined
    || (options.linkKeys !== undefined && options.linkKeys.length > 0);
}

/**
 * Loads everything the access options name. `owner` is the object the random link key is
 * remembered for when no --link-keys are set (the server passes its config).
 */
export async function loadAuthenticator(options: AuthOptions, owner: object = options): Promise<Authenticator> {
  let tokens: StaticTokens | undefined;
  if (options.tokensFile !== undefined) {
    const json = await readJson('tokensFile', options.tokensFile);
    try {
      tokens = createStaticTokens(parseTokensFile(json));
    } catch (err) {
      throw new AuthConfigError('tokensFile', `${options.tokensFile}: ${(err as Error).message}`, err);
    }
  }

  let jwt: JwtVerifier | undefined;
  if (options.jwtSecret !== undefined || options.jwtPublicKey !== undefined || options.jwtJwksFile !== undefined) {
    let publicKey: KeyObject | undefined;
    if (options.jwtPublicKey !== undefined) {
      const pem = await readText('jwtPublicKey', options.jwtPublicKey);
      try {
        publicKey = createPublicKey(pem);
      } catch (err) {
        throw new AuthConfigError('jwtPublicKey', `${options.jwtPublicKey} is not a PEM public key: ${(err as Error).message}`, err);
      }
    }
    let jwks: JSONWebKeySet | undefined;
    if (options.jwtJwksFile !== undefined) {
      const json = await readJson('jwtJwksFile', options.jwtJwksFile);
      if (typeof json !== 'object' || json === null || !Array.isArray((json as { keys?: unknown }).keys)) {
        throw new AuthConfigError('jwtJwksFile', `${options.jwtJwksFile} is not a JWK Set ({"keys": [...]})`);
      }
      jwks = json as JSONWebKeySet;
    }
    const option = options.jwtPublicKey !== undefined ? 'jwtPublicKey' : options.jwtJwksFile !== undefined ? 'jwtJwksFile' : 'jwtSecret';
    try {
      jwt = createJwtVerifier({
        secret: options.jwtSecret, publicKey, jwks,
        issuer: options.jwtIssuer, audience: options.jwtAudience,
        roleClaim: options.jwtRoleClaim, clockSkewMs: options.jwtClockSkew,
      });
    } catch (err) {
      throw new AuthConfigError(option, (err as Error).message, err);
    }
  }

  return {
    tokens,
    jwt,
    linkKeys: resolveLinkKeys(options.linkKeys, owner),
    anonymousRole: resolveAnonymousRole(options.anonymous, options.host),
  };
}
