/**
 * `Content-Digest` / `Repr-Digest` request fields (RFC 9530 §2, §3): a Structured Fields
 * Dictionary (RFC 8941 §3.2) of algorithm → Byte Sequence, e.g.
 * `sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:`. Pure.
 */
import { FerryError } from '../core/errors.ts';
import { decodeBase64Strict } from './tus-headers.ts';

/** Algorithms we verify (RFC 9530 §5 registry, status "Active"); others are ignored (§2: "MAY ignore"). */
export const VERIFIABLE_DIGESTS = { 'sha-256': 'sha256', 'sha-512': 'sha512' } as const;
export type DigestAlgorithm = keyof typeof VERIFIABLE_DIGESTS;

const MEMBER = /^([a-z*][a-z0-9_\-.*]*)(?:=(.*))?$/;

/**
 * Parses the dictionary and returns the members we can verify. A syntax error is 400 (an
 * integrity field we cannot read must not be silently skipped).
 */
export function parseDigestFields(value: string | undefined): Map<DigestAlgorithm, Buffer> {
  const out = new Map<DigestAlgorithm, Buffer>();
  if (value === undefined) return out;
  for (const raw of splitTopLevel(value)) {
    const member = raw.trim();
    if (member === '') throw invalid('empty dictionary member');
    const m = MEMBER.exec(member);
    if (m === null) throw invalid(`cannot parse "${member}"`);
    const key = m[1]!;
    // Parameters (";a=b") are allowed by RFC 8941 and carry nothing we use.
    const item = (m[2] ?? '').split(';')[0]!.trim();
    if (!(key in VERIFIABLE_DIGESTS)) continue;
    const bs = /^:([A-Za-z0-9+/=]*):$/.exec(item);
    const bytes = bs === null ? undefined : decodeBase64Strict(bs[1]!);
    if (bytes === undefined) throw invalid(`${key} must be a byte sequence :base64:`);
    const expected = key === 'sha-256' ? 32 : 64;
    if (bytes.length !== expected) throw invalid(`${key} must be ${expected} bytes`);
    out.set(key as DigestAlgorithm, bytes);
  }
  return out;
}

/** Splits on commas (byte sequences and tokens contain none; strings are not used by RFC 9530). */
function splitTopLevel(value: string): string[] {
  return value.split(',');
}

/** Formats `sha-256=:…:` for a response's Repr-Digest. */
export function formatSha256Digest(hex: string): string {
  return `sha-256=:${Buffer.from(hex, 'hex').toString('base64')}:`;
}

function invalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_HEADER_INVALID', `Content-Digest/Repr-Digest: ${detail}`);
}
