/**
 * Digest fields (RFC 9530): `Want-Repr-Digest` / `Want-Content-Digest` preferences and the
 * `Repr-Digest` / `Content-Digest` values Ferry sends (sha-256 only), plus the key under
 * which a file's sha-256 is cached in the meta store (shared with uploads).
 *
 *   Want-Repr-Digest = Dictionary of Integer 0–10   (RFC 8941 §3.2; "sha-256=3, sha-512=1")
 *   Repr-Digest      = Dictionary of Byte Sequence  ("sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:")
 */

/** Meta-store namespace of the sha-256 cache; values are lowercase hex digests. */
export const DIGEST_CACHE_NAMESPACE = 'sha256';

/** What identifies one version of a stored file (storage FileStat satisfies this). */
export interface DigestKeySource {
  readonly size: number;
  readonly mtimeNs: bigint;
  readonly ino: bigint;
}

/**
 * Cache key for the sha-256 of one version of a file: any write changes size or mtime (ns),
 * a replace-by-rename changes the inode, so a stale digest is never found under a new key.
 * The path comes last so no separator inside it can make two keys collide.
 * Used by serve (Repr-Digest) and uploads (which record the digest they computed).
 */
export function digestCacheKey(relativePath: string, stat: DigestKeySource): string {
  return `${stat.size}:${stat.mtimeNs}:${stat.ino}:${relativePath}`;
}

const KEY = /^[a-z*][a-z0-9_\-.*]*$/;
const INTEGER = /^-?\d{1,15}$/;

/**
 * Parses a Want-*-Digest field into algorithm → preference (1 = least, 10 = most; 0 = "not
 * acceptable"). Per RFC 8941 a member whose value is not an Integer makes the field invalid:
 * then an empty map is returned (the field is ignored, as §4.2 of RFC 8941 requires).
 * Parameters are ignored; a repeated key keeps the last value.
 */
export function parseWantDigest(value: string | undefined): Map<string, number> {
  const out = new Map<string, number>();
  if (value === undefined) return out;
  for (const member of value.split(',')) {
    const text = member.trim();
    if (text === '') return new Map(); // an empty member is a parse error in a Dictionary
    const [item] = text.split(';');
    const eq = item!.indexOf('=');
    if (eq < 0) return new Map(); // a bare key is Boolean true, not an Integer
    const key = item!.slice(0, eq).trim();
    const raw = item!.slice(eq + 1).trim();
    if (!KEY.test(key) || !INTEGER.test(raw)) return new Map();
    const n = Number(raw);
    // RFC 9530 §4: "Values ... in the range 0 to 10 inclusive".
    if (n < 0 || n > 10) return new Map();
    out.set(key, n);
  }
  return out;
}

/**
 * Whether to send a sha-256 digest for this Want-* field: it is present and valid, and
 * sha-256 is not refused (`sha-256=0`). When the client prefers an algorithm Ferry does not
 * implement, sha-256 is still sent: §4 lets the sender choose ("MAY ... use a different
 * algorithm") and it is the only one Ferry has.
 */
export function wantsSha256(value: string | undefined): boolean {
  const prefs = parseWantDigest(value);
  if (prefs.size === 0) return false;
  const sha = prefs.get('sha-256');
  if (sha !== undefined) return sha > 0;
  return [...prefs.values()].some((p) => p > 0);
}

/** `sha-256=:<base64>:` from a raw digest or a hex string. */
export function formatDigestField(digest: Uint8Array | string, algorithm = 'sha-256'): string {
  const bytes = typeof digest === 'string' ? Buffer.from(digest, 'hex') : Buffer.from(digest);
  return `${algorithm}=:${bytes.toString('base64')}:`;
}
