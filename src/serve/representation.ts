/**
 * Selecting the representation of a file to send (RFC 9110 §3.2, §12): identity, a
 * precompressed sidecar (`x.br`, `x.zst`, `x.gz`) or on-the-fly compression — and its
 * validators, which differ per content coding (a strong ETag per representation, §8.8.3).
 */
import zlib from 'node:zlib';
import type { Transform } from 'node:stream';
import mime from 'mime-types';
import { negotiateEncoding, isCompressibleType, generateEtag, type ContentCoding } from '../http/index.ts';
import type { FileHandleReader, FileStat, Storage } from '../storage/index.ts';
import { FerryError, type SafePath } from '../core/index.ts';

/** Content-Type by extension, memoised (mime-types' lookup is measurable per request). */
const contentTypes = new Map<string, string>();

/** The Content-Type Ferry sends for a file name (`application/octet-stream` when unknown). */
export function contentTypeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  const ext = dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
  let type = contentTypes.get(ext);
  if (type === undefined) {
    type = (ext === '' ? false : mime.contentType(ext)) || 'application/octet-stream';
    if (contentTypes.size < 1000) contentTypes.set(ext, type);
  }
  return type;
}

/**
 * Media types a browser shows without running anything on Ferry's origin: images (decoded, not
 * parsed as documents), audio, video, fonts, plain text and JSON (shown as text; with
 * `X-Content-Type-Options: nosniff` never sniffed into HTML), and types a browser only
 * downloads (archives, octet-stream).
 *
 * `application/pdf` is on the list on purpose: the JavaScript a PDF may carry runs inside the
 * PDF viewer (Chromium's PDFium in its own extension origin, Firefox's pdf.js in a sandbox),
 * never with access to the embedding origin's DOM, cookies or storage; and a sandboxed document
 * cannot load the viewer plugin at all, so the sandbox would turn every PDF preview into a
 * blank page.
 */
const INERT_EXACT: ReadonlySet<string> = new Set([
  'text/plain', 'text/csv', 'application/json',
  'application/octet-stream', 'application/pdf',
  'application/zip', 'application/gzip', 'application/x-gzip', 'application/x-tar', 'application/x-bzip2', 'application/x-xz',
  'application/x-7z-compressed', 'application/vnd.rar', 'application/x-rar-compressed', 'application/zstd',
  'application/vnd.ms-fontobject', 'application/font-woff',
]);
const INERT_TOP_LEVEL: ReadonlySet<string> = new Set(['image', 'audio', 'video', 'font']);

/**
 * True when a file of this Content-Type must be sent with `Content-Security-Policy: sandbox`.
 * An allow-list, not a deny-list: browsers run script in HTML, SVG and every XML document
 * (`application/rdf+xml`, `application/xslt+xml`, `text/mathml`, Atom, RSS, SMIL, WSDL … render
 * as XML documents whose XHTML `<script>` elements execute on the serving origin), and new such
 * types keep appearing. So everything not known to be inert is sandboxed: the document gets a
 * unique opaque origin and no script runs.
 */
export function needsSandbox(contentType: string): boolean {
  const semi = contentType.indexOf(';');
  const essence = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  // Any XML (`*/xml`, `*+xml`, `*/*-xml`) is a document a browser may render with script,
  // image/svg+xml included.
  if (essence.includes('xml')) return true;
  if (INERT_EXACT.has(essence)) return false;
  // Zip-based containers (epub, office files, apk …) are only downloaded.
  if (essence.startsWith('application/') && essence.endsWith('+zip')) return false;
  const slash = essence.indexOf('/');
  if (slash > 0 && INERT_TOP_LEVEL.has(essence.slice(0, slash))) return false;
  return true;
}

/** Codings this runtime can produce on the fly, in Ferry's order of preference. */
export const ON_THE_FLY_CODINGS: readonly ContentCoding[] = typeof zlib.createZstdCompress === 'function'
  ? ['zstd', 'br', 'gzip']
  : ['br', 'gzip'];

/** Sidecar suffix per coding, in order of preference (smallest output first). */
const SIDECARS: ReadonlyArray<readonly [ContentCoding, string]> = [['br', '.br'], ['zstd', '.zst'], ['gzip', '.gz']];

/** Bodies smaller than this are not worth a compressor (framing overhead, CPU per request). */
export const MIN_COMPRESS_BYTES = 1024;

export interface Representation {
  /** Where the bytes come from: the file itself, or the sidecar's open handle. */
  readonly reader: FileHandleReader;
  readonly coding: ContentCoding;
  /** True when `coding` is produced while sending (length unknown in advance). */
  readonly onTheFly: boolean;
  readonly etag: string;
  /** Last-Modified as sent: the file's mtime, never later than now (§8.8.2.1). */
  readonly lastModifiedMs: number;
  /** Body length of the whole representation, undefined when compressed on the fly. */
  readonly length: number | undefined;
  /** The stat the validators come from. */
  readonly stat: FileStat;
  /** Relative path of the bytes' file (the sidecar's for a sidecar), for the digest cache. */
  readonly relativePath: string;
  /** True when the response varies with Accept-Encoding (compressible type). */
  readonly varies: boolean;
}

export interface SelectOptions {
  readonly storage: Storage;
  readonly path: SafePath;
  readonly reader: FileHandleReader;
  readonly contentType: string;
  readonly acceptEncoding: string | undefined;
  /** A Range header is present: the identity representation is the only one with ranges. */
  readonly hasRange: boolean;
  /** --compress on: on-the-fly compression allowed (sidecars are served either way). */
  readonly compress: boolean;
  /** Digests were asked for: an on-the-fly body's digest is unknown before it is sent. */
  readonly digestWanted: boolean;
  readonly nowMs: number;
}

/**
 * Picks the representation. Sidecars must be at least as new as the file (a stale `x.gz`
 * left behind after `x` changed is never served). Returns the identity representation for
 * incompressible types, Range requests and clients that do not ask for a coding. Sidecar
 * handles that are not chosen are closed here; the chosen one is the caller's to close.
 */
export async function selectRepresentation(o: SelectOptions): Promise<Representation> {
  const stat = o.reader.stat;
  const varies = isCompressibleType(o.contentType);
  const identity = (): Representation => ({
    reader: o.reader,
    coding: 'identity',
    onTheFly: false,
    etag: generateEtag(stat),
    lastModifiedMs: Math.min(stat.mtimeMs, o.nowMs),
    length: stat.size,
    stat,
    relativePath: o.path.relative,
    varies,
  });
  if (!varies || o.hasRange || o.acceptEncoding === undefined || o.acceptEncoding.trim() === '') return identity();

  // Sidecars: only open the ones the client could accept.
  const sidecars = new Map<ContentCoding, FileHandleReader>();
  try {
    for (const [coding, suffix] of SIDECARS) {
      if (negotiateEncoding(o.acceptEncoding, [coding]) !== coding) continue;
      const last = o.path.segments.at(-1);
      if (last === undefined) break;
      const segments = [...o.path.segments.slice(0, -1), `${last}${suffix}`];
      try {
        const r = await o.storage.open({ segments, relative: segments.join('/'), hidden: o.path.hidden });
        if (r.stat.mtimeNs >= stat.mtimeNs) sidecars.set(coding, r);
        else await r.close();
      } catch {
        // No sidecar (or not readable): fine.
      }
    }
    const available: ContentCoding[] = [...sidecars.keys()];
    const onTheFlyAllowed = o.compress && !o.digestWanted && stat.size >= MIN_COMPRESS_BYTES;
    if (onTheFlyAllowed) for (const c of ON_THE_FLY_CODINGS) if (!available.includes(c)) available.push(c);
    // §12.5.3: when nothing is acceptable, "disregard the header field" and send identity.
    const chosen = negotiateEncoding(o.acceptEncoding, available) ?? 'identity';
    if (chosen === 'identity') return identity();
    const sidecar = sidecars.get(chosen);
    if (sidecar !== undefined) {
      sidecars.delete(chosen);
      return {
        reader: sidecar,
        coding: chosen,
        onTheFly: false,
        etag: generateEtag(sidecar.stat, chosen),
        lastModifiedMs: Math.min(sidecar.stat.mtimeMs, o.nowMs),
        length: sidecar.stat.size,
        stat: sidecar.stat,
        relativePath: `${o.path.relative}${SIDECARS.find(([c]) => c === chosen)![1]}`,
        varies,
      };
    }
    return {
      reader: o.reader,
      coding: chosen,
      onTheFly: true,
      etag: generateEtag(stat, chosen),
      lastModifiedMs: Math.min(stat.mtimeMs, o.nowMs),
      length: undefined,
      stat,
      relativePath: o.path.relative,
      varies,
    };
  } finally {
    for (const r of sidecars.values()) await r.close();
  }
}

/** A compressor for an on-the-fly coding; levels chosen for throughput, not maximum ratio. */
export function createCompressor(coding: ContentCoding): Transform {
  const chunkSize = 64 * 1024;
  switch (coding) {
    case 'gzip': return zlib.createGzip({ level: 6, chunkSize });
    case 'br': return zlib.createBrotliCompress({ chunkSize, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
    case 'zstd': return zlib.createZstdCompress({ chunkSize, params: { [zlib.constants.ZSTD_c_compressionLevel]: 3 } });
    default: throw new FerryError('FERRY_ERR_INTERNAL', `no compressor for ${coding}`);
  }
}
