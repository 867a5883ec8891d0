/**
 * `Upload-Metadata` (tus 1.0.0 §Upload-Metadata) and what Ferry reads from it: `filename`
 * (or `name`, as Uppy sends), `path` (target folder inside the root) and `sha256` (the whole
 * file's digest, verified before publishing). Pure.
 */
import { FerryError } from '../core/errors.ts';
import { decodeBase64Strict } from './tus-headers.ts';

/**
 * "MUST consist of one or more comma-separated key-value pairs. The key and value MUST be
 * separated by a space. The key MUST NOT contain spaces and commas and MUST NOT be empty. The
 * key SHOULD be ASCII encoded and the value MUST be Base64 encoded. All keys MUST be unique. The
 * value MAY be empty. In these cases, the space ... MAY be left out."
 *
 * Returns key → decoded bytes. Throws FERRY_ERR_UPLOAD_METADATA_INVALID (400) on any breach.
 */
export function parseUploadMetadata(header: string | undefined): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  if (header === undefined) return out;
  if (header.trim() === '') throw invalid('Upload-Metadata is empty; omit the header instead');
  for (const rawPair of header.split(',')) {
    const pair = rawPair.trim();
    if (pair === '') throw invalid('empty key-value pair');
    const parts = pair.split(' ');
    if (parts.length > 2) throw invalid('a key-value pair has more than one space');
    const key = parts[0]!;
    const value = parts[1] ?? '';
    if (key === '') throw invalid('empty key');
    // Keys are restricted to visible ASCII: a header value cannot carry anything else safely.
    if (!/^[\x21-\x7e]+$/.test(key)) throw invalid(`key "${key}" is not printable ASCII`);
    if (out.has(key)) throw invalid(`duplicate key "${key}"`);
    const decoded = decodeBase64Strict(value);
    if (decoded === undefined) throw invalid(`the value of "${key}" is not valid Base64`);
    out.set(key, decoded);
  }
  return out;
}

/** Encodes key → UTF-8 string pairs as an Upload-Metadata value (tests and clients). */
export function encodeUploadMetadata(values: Readonly<Record<string, string>>): string {
  return Object.entries(values).map(([k, v]) => (v === '' ? k : `${k} ${Buffer.from(v, 'utf8').toString('base64')}`)).join(',');
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Decodes a metadata value that must be UTF-8 text (a file name, a folder). */
export function metadataText(meta: ReadonlyMap<string, Buffer>, key: string): string | undefined {
  const raw = meta.get(key);
  if (raw === undefined) return undefined;
  try {
    return utf8.decode(raw);
  } catch {
    throw invalid(`the value of "${key}" is not UTF-8`);
  }
}

export interface UploadIntent {
  /** Target file name (one path segment), if the client named one. */
  readonly filename: string | undefined;
  /** Target folder relative to the root, `/`-separated; `''` for the root. */
  readonly folder: string;
  /** Expected sha-256 of the whole file, lowercase hex. */
  readonly sha256: string | undefined;
}

/**
 * What the metadata asks for. Names are checked for shape here (one segment, no NUL, not `.`
 * or `..`); the path jail (parseDecodedPath + storage) is applied by the caller.
 */
export function readUploadIntent(meta: ReadonlyMap<string, Buffer>): UploadIntent {
  const filename = metadataText(meta, 'filename') ?? metadataText(meta, 'name');
  if (filename !== undefined) {
    if (filename === '' || filename === '.' || filename === '..' || /[/\\\0]/.test(filename)) {
      throw invalid('filename must be a single name without "/", "\\" or NUL');
    }
    if (Buffer.byteLength(filename) > 255) throw invalid('filename is longer than 255 bytes');
  }
  const folder = metadataText(meta, 'path') ?? '';
  let sha256: string | undefined;
  const digest = meta.get('sha256');
  if (digest !== undefined) {
    const text = digest.toString('latin1');
    if (/^[0-9a-fA-F]{64}$/.test(text)) sha256 = text.toLowerCase();
    else if (digest.length === 32) sha256 = digest.toString('hex');
    else {
      const fromB64 = decodeBase64Strict(text);
      if (fromB64?.length === 32) sha256 = fromB64.toString('hex');
      else throw invalid('sha256 must be 64 hex characters or 32 bytes');
    }
  }
  return { filename, folder, sha256 };
}

function invalid(detail: string): FerryError {
  return new FerryError('FERRY_ERR_UPLOAD_METADATA_INVALID', `Upload-Metadata: ${detail}`);
}
