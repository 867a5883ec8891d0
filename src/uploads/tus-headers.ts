/**
 * tus 1.0.0 header grammar (tus-resumable-upload-protocol, protocol.md), as pure parsers that
 * return values or throw a FerryError the route answers with. No I/O.
 */
import { FerryError } from '../core/errors.ts';

/** The one version we speak (§Tus-Resumable). */
export const TUS_VERSION = '1.0.0';

/**
 * Extensions in the order announced by `Tus-Extension` (§Tus-Extension: "a comma-separated list
 * of the extensions supported by the Server"). Each is implemented in full; a test keeps this
 * list and the behaviour together.
 */
export const TUS_EXTENSIONS = [
  'creation',
  'creation-with-upload',
  'creation-defer-length',
  'expiration',
  'checksum',
  'checksum-trailer',
  'termination',
  'concatenation',
  'concatenation-unfinished',
] as const;

/**
 * §Checksum: "The Server MUST support at least the SHA1 checksum algorithm identified by sha1.
 * The names ... MUST only consist of ASCII characters with the modification that uppercase
 * characters are excluded." `crc32` is the zlib/IEEE CRC-32, its 4 bytes big-endian.
 */
export const CHECKSUM_ALGORITHMS = ['sha1', 'sha256', 'sha512', 'md5', 'crc32'] as const;
export type ChecksumAlgorithm = (typeof CHECKSUM_ALGORITHMS)[number];

export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream';

const NON_NEGATIVE_INTEGER = /^[0-9]+$/;

/**
 * §Upload-Offset / §Upload-Length: "The value MUST be a non-negative integer." Digits only (no
 * sign, no spaces, no exponent), and at most 2^53-1 so that arithmetic on it stays exact.
 */
export function parseNonNegativeInteger(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!NON_NEGATIVE_INTEGER.test(v)) throw headerInvalid(`${name} must be a non-negative integer`);
  const n = Number(v);
  if (!Number.isSafeInteger(n)) throw headerInvalid(`${name} is too large`);
  return n;
}

/**
 * §Tus-Resumable: every request except OPTIONS carries it; a missing or unsupported version is
 * answered 412 with `Tus-Version`, and "the Server MUST NOT process the request".
 */
export function checkTusResumable(value: string | undefined): void {
  if (value?.trim() === TUS_VERSION) return;
  throw new FerryError('FERRY_ERR_UPLOAD_TUS_VERSION', value === undefined ? 'Tus-Resumable header is missing' : `Tus-Resumable ${value} is not supported; this server speaks ${TUS_VERSION}`, {
    headers: { 'tus-version': TUS_VERSION, 'tus-resumable': TUS_VERSION },
  });
}

/**
 * §Upload-Defer-Length: "Its value MUST be 1 ... If the Upload-Defer-Length header contains any
 * other value than 1 the server should return a 400 Bad Request status."
 */
export function parseDeferLength(value: string | undefined): boolean {
  if (value === undefined) return false;
  if (value.trim() === '1') return true;
  throw headerInvalid('Upload-Defer-Length must be 1');
}

export interface UploadChecksum {
  readonly algorithm: ChecksumAlgorithm;
  readonly digest: Buffer;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Strict standard Base64 (RFC 4648 §4, padded); undefined when `text` is not that. */
export function decodeBase64Strict(text: string): Buffer | undefined {
  if (!BASE64.test(text)) return undefined;
  return Buffer.from(text, 'base64');
}

const DIGEST_BYTES: Readonly<Record<ChecksumAlgorithm, number>> = { sha1: 20, sha256: 32, sha512: 64, md5: 16, crc32: 4 };

/**
 * §Upload-Checksum: "the name of the used checksum algorithm and the Base64 encoded checksum
 * separated by a space." An unknown algorithm is 400 (§Checksum case 1); a malformed value too.
 */
export function parseUploadChecksum(value: string | undefined): UploadChecksum | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*([^\s]+) ([^\s]*)\s*$/.exec(value);
  if (m === null) throw headerInvalid('Upload-Checksum must be "<algorithm> <base64 digest>"');
  const name = m[1]!;
  if (!(CHECKSUM_ALGORITHMS as readonly string[]).includes(name)) {
    throw new FerryError('FERRY_ERR_UPLOAD_CHECKSUM_UNSUPPORTED', `checksum algorithm "${name}" is not supported; use one of ${CHECKSUM_ALGORITHMS.join(',')}`);
  }
  const algorithm = name as ChecksumAlgorithm;
  const digest = decodeBase64Strict(m[2]!);
  if (digest?.length !== DIGEST_BYTES[algorithm]) throw headerInvalid(`Upload-Checksum: the ${algorithm} digest must be ${DIGEST_BYTES[algorithm]} bytes in Base64`);
  return { algorithm, digest };
}

export type UploadConcat =
  | { readonly kind: 'partial' }
  | { readonly kind: 'final'; readonly urls: readonly string[] };

/**
 * §Upload-Concat: `partial`, or `final;` followed by a space-separated list of partial upload
 * URLs (absolute or relative, no spaces).
 */
export function parseUploadConcat(value: string | undefined): UploadConcat | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (v === 'partial') return { kind: 'partial' };
  if (v.startsWith('final;')) {
    const urls = v.slice('final;'.length).split(' ').filter((u) => u !== '');
    if (urls.length === 0) throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'Upload-Concat: final needs at least one partial upload URL');
    return { kind: 'final', urls };
  }
  throw new FerryError('FERRY_ERR_UPLOAD_CONCAT_INVALID', 'Upload-Concat must be "partial" or "final;<url> <url> ..."');
}

/** Upload ids are 22 characters of base64url (128 random bits); anything else names no upload. */
export const UPLOAD_ID = /^[A-Za-z0-9_-]{22}$/;

export function isUploadId(value: string): boolean {
  return UPLOAD_ID.test(value);
}

/**
 * The upload id named by a partial-upload URL in `Upload-Concat: final;...`, or undefined when
 * the URL does not point at `<prefix>/uploads/<id>` on this server. Relative URLs are resolved
 * against `base` (§Upload-Concat: "MAY be absolute or relative").
 */
export function uploadIdFromUrl(url: string, base: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    return undefined;
  }
  const m = /\/uploads\/([^/]+)\/?$/.exec(parsed.pathname);
  if (m === null) return undefined;
  const id = m[1]!;
  return isUploadId(id) ? id : undefined;
}

export function headerInvalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_HEADER_INVALID', detail);
}
