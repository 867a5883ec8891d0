/**
 * Static bearer tokens from the tokens file (`--tokens-file`, JSON `[{name, role, sha256}]`).
 * Only SHA-256 hashes are stored, so the file does not leak usable credentials; a presented
 * token is hashed and compared with every stored hash in constant time (no early exit, so
 * the time taken says nothing about which entry, if any, matched).
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { ROLES, type Role } from '../core/access.ts';

export interface StaticTokenEntry {
  readonly name: string;
  readonly role: Role;
  /** Lower-case hex SHA-256 of the token. */
  readonly sha256: string;
}

export interface StaticTokens {
  readonly size: number;
  /** The matching entry, or undefined. */
  verify(token: string): StaticTokenEntry | undefined;
}

/** SHA-256 hex of a token, as the tokens file stores it (`printf %s TOKEN | sha256sum`). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Validates the parsed JSON of a tokens file. Throws a TypeError naming the first bad entry
 * (the caller turns it into a start-up error).
 */
export function parseTokensFile(json: unknown): StaticTokenEntry[] {
  if (!Array.isArray(json)) throw new TypeError('expected a JSON array of {name, role, sha256}');
  const seen = new Set<string>();
  return json.map((raw: unknown, i) => {
    if (typeof raw !== 'object' || raw === null) throw new TypeError(`entry ${i}: expected an object {name, role, sha256}`);
    const { name, role, sha256 } = raw as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') throw new TypeError(`entry ${i}: "name" must be a non-empty string`);
    if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw new TypeError(`entry ${i} (${name}): "role" must be one of ${ROLES.join(', ')}`);
    if (typeof sha256 !== 'string' || !HEX64.test(sha256.toLowerCase())) throw new TypeError(`entry ${i} (${name}): "sha256" must be 64 hex digits (the SHA-256 of the token, not the token)`);
    const hash = sha256.toLowerCase();
    if (seen.has(hash)) throw new TypeError(`entry ${i} (${name}): the same token hash appears twice`);
    seen.add(hash);
    return { name, role: role as Role, sha256: hash };
  });
}

export function createStaticTokens(entries: readonly StaticTokenEntry[]): StaticTokens {
  const stored = entries.map((e) => ({ entry: e, digest: Buffer.from(e.sha256, 'hex') }));
  return {
    size: stored.length,
    verify(token) {
      const digest = createHash('sha256').update(token, 'utf8').digest();
      let match: StaticTokenEntry | undefined;
      for (const s of stored) {
        // All digests are 32 bytes, so timingSafeEqual never throws; every entry is compared.
        if (timingSafeEqual(digest, s.digest) && match === undefined) match = s.entry;
      }
      return match;
    },
  };
}
