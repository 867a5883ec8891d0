export { authenticate, decideAccess, loopbackMaySeeSecrets, bearerChallenge, type Authenticator, type AuthInput, type AuthResult, type AuthDenial, type AccessContext, type AccessDecision } from './authenticate.ts';
export { createStaticTokens, parseTokensFile, hashToken, type StaticTokens, type StaticTokenEntry } from './static-tokens.ts';
export { createJwtVerifier, looksLikeJwt, type JwtVerifier, type JwtVerifierOptions, type JwtResult, type JwtFailureReason } from './jwt-verifier.ts';
export { signLink, signedLinkPath, verifySignedLink, hasLinkSignature, parseQuery, LINK_PARAMS, type SignLinkInput, type LinkTarget, type LinkResult, type LinkFailureReason } from './signed-link.ts';
export { resolveLinkKeys } from './link-keys.ts';
export { resolveAnonymousRole, isLoopbackHost } from './anonymous-role.ts';
export { loadAuthenticator, hasCredentials, AuthConfigError, type AuthOptions } from './io/load-authenticator.ts';
