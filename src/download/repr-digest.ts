/**
 * RFC 9530 `Repr-Digest` (the digest of the whole selected representation, so it is valid on a
 * 206 too): a Structured Field Dictionary (RFC 8941 §3.2) of byte sequences,
 * e.g. `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:, sha-512=:…:`.
 * Only what the downloader needs: algorithm → digest bytes, unknown parameters ignored.
 */

/** Algorithm names (lower case) → raw digest. Malformed members are skipped. */
export function parseReprDigest(value: string | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (value === undefined) return out;
  for (const member of splitMembers(value)) {
    const m = /^([a-z*][a-z0-9_\-.*]*)=:([A-Za-z0-9+/=]*):(?:;.*)?$/.exec(member.trim());
    if (m === null) continue;
    const alg = m[1] ?? '';
    const b64 = m[2] ?? '';
    if (b64.length % 4 !== 0) continue;
    out.set(alg, Buffer.from(b64, 'base64'));
  }
  return out;
}

/** The expected sha-256 (hex) announced by `Repr-Digest`, if any. */
export function sha256FromReprDigest(value: string | undefined): string | undefined {
  const digest = parseReprDigest(value).get('sha-256');
  return digest !== undefined && digest.length === 32 ? digest.toString('hex') : undefined;
}

function splitMembers(value: string): string[] {
  // Byte sequences use base64 (no commas), so a plain split is exact for this field.
  return value.split(',').filter((s) => s.trim() !== '');
}
