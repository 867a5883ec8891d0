/**
 * The resume state of a download, kept next to the partial file as `<name>.part.json`.
 * It is plain JSON (documented in docs/cli.md) so any run — or another tool — can read it.
 * Parsing is pure and strict; writing is atomic (temp file + rename), so a kill -9 at any
 * moment leaves either the previous or the next checkpoint, never a torn one.
 */
import { readFile } from 'node:fs/promises';
import { writeResumeStateFile } from './state-file.ts';

export const STATE_FORMAT = 'ferry-download-state';
export const STATE_VERSION = 1;

export interface PartialPiece {
  /** Piece index. */
  readonly piece: number;
  /** Leading bytes of the piece already on disk. */
  readonly bytes: number;
  /** CRC-32 of those bytes, 8 hex digits. */
  readonly crc32: string;
}

export interface ResumeState {
  readonly format: typeof STATE_FORMAT;
  readonly version: typeof STATE_VERSION;
  /** The URL as given by the user (before redirects). */
  readonly url: string;
  /** Where the bytes came from after redirects (informational; a resume probes `url` again). */
  readonly finalUrl: string;
  /** Complete length; null when the server did not say (single stream). */
  readonly sizeBytes: number | null;
  readonly etag: string | null;
  readonly lastModified: string | null;
  /** True when the server honoured ranges, so a later run can continue instead of restarting. */
  readonly ranges: boolean;
  /** Expected sha-256 (hex) from --sha256 or the server's Repr-Digest, checked before the rename. */
  readonly sha256: string | null;
  readonly pieceBytes: number;
  /** CRC-32 (8 hex digits) of each complete piece, null for the others. */
  readonly pieces: readonly (string | null)[];
  readonly partial: readonly PartialPiece[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

export type ParseStateResult = { ok: true; state: ResumeState } | { ok: false; reason: string };

const HEX8 = /^[0-9a-f]{8}$/;
const HEX64 = /^[0-9a-f]{64}$/;

/** Validates a parsed JSON value as a ResumeState (pure). */
export function parseResumeState(value: unknown): ParseStateResult {
  const bad = (reason: string): ParseStateResult => ({ ok: false, reason });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('not a JSON object');
  const v = value as Record<string, unknown>;
  if (v.format !== STATE_FORMAT) return bad(`"format" is not "${STATE_FORMAT}"`);
  if (v.version !== STATE_VERSION) return bad(`unsupported version ${JSON.stringify(v.version)}`);
  if (typeof v.url !== 'string' || typeof v.finalUrl !== 'string') return bad('"url"/"finalUrl" missing');
  const size = v.sizeBytes;
  if (size !== null && !(typeof size === 'number' && Number.isSafeInteger(size) && size >= 0)) return bad('"sizeBytes" is not a byte count');
  if (!isStringOrNull(v.etag) || !isStringOrNull(v.lastModified)) return bad('"etag"/"lastModified" must be strings or null');
  if (typeof v.ranges !== 'boolean') return bad('"ranges" must be a boolean');
  if (!(v.sha256 === null || (typeof v.sha256 === 'string' && HEX64.test(v.sha256)))) return bad('"sha256" must be 64 hex digits or null');
  const pieceBytes = v.pieceBytes;
  if (!(typeof pieceBytes === 'number' && Number.isSafeInteger(pieceBytes) && pieceBytes > 0)) return bad('"pieceBytes" must be a positive integer');
  if (!Array.isArray(v.pieces) || !v.pieces.every((p) => p === null || (typeof p === 'string' && HEX8.test(p)))) return bad('"pieces" must be CRC-32 hex strings or null');
  const pieces = v.pieces as (string | null)[];
  if (size !== null && pieces.length !== Math.ceil(size / pieceBytes)) return bad('"pieces" length does not match the size');
  if (!Array.isArray(v.partial)) return bad('"partial" must be an array');
  const partial: PartialPiece[] = [];
  for (const p of v.partial as unknown[]) {
    if (typeof p !== 'object' || p === null) return bad('bad "partial" entry');
    const { piece, bytes, crc32 } = p as Record<string, unknown>;
    if (!(typeof piece === 'number' && Number.isSafeInteger(piece) && piece >= 0 && piece < Math.max(pieces.length, 1))) return bad('bad "partial" piece index');
    if (!(typeof bytes === 'number' && Number.isSafeInteger(bytes) && bytes > 0 && bytes < pieceBytes)) return bad('bad "partial" byte count');
    if (typeof crc32 !== 'string' || !HEX8.test(crc32)) return bad('bad "partial" crc32');
    if (pieces[piece] !== null && pieces[piece] !== undefined) return bad('a piece is both complete and partial');
    partial.push({ piece, bytes, crc32 });
  }
  if (typeof v.createdAt !== 'string' || typeof v.updatedAt !== 'string') return bad('"createdAt"/"updatedAt" missing');
  return {
    ok: true,
    state: {
      format: STATE_FORMAT, version: STATE_VERSION, url: v.url, finalUrl: v.finalUrl, sizeBytes: size,
      etag: v.etag as string | null, lastModified: v.lastModified as string | null, ranges: v.ranges,
      sha256: v.sha256 as string | null, pieceBytes, pieces, partial, createdAt: v.createdAt, updatedAt: v.updatedAt,
    },
  };
}

function isStringOrNull(x: unknown): boolean {
  return x === null || typeof x === 'string';
}

export function crcHex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

/** Reads `<file>`; `undefined` when it does not exist, `{ok:false}` when it is unusable. */
export async function readResumeState(file: string): Promise<ParseStateResult | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, reason: 'not valid JSON' };
  }
  return parseResumeState(json);
}

/** Writes the state atomically: a sibling temp file, then rename(2) over the old one. */
export async function writeResumeState(file: string, state: ResumeState): Promise<void> {
  await writeResumeStateFile(file, state);
}
