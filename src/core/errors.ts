/**
 * The error catalogue: every error Ferry answers with has a stable code here.
 * `docs/reference/errors.md` documents each entry; a test keeps the two in sync.
 * At the HTTP edge one mapping turns a FerryError into RFC 9457 problem+json;
 * anything that is not a FerryError becomes a generic 500 with no internal text.
 */
export const FERRY_ERRORS = {
  // --- generic / HTTP edge ---------------------------------------------------
  FERRY_ERR_INTERNAL: { status: 500, title: 'Internal server error' },
  FERRY_ERR_NOT_FOUND: { status: 404, title: 'Not found' },
  FERRY_ERR_METHOD_NOT_ALLOWED: { status: 405, title: 'Method not allowed' },
  FERRY_ERR_BAD_REQUEST: { status: 400, title: 'Bad request' },
  FERRY_ERR_SHUTTING_DOWN: { status: 503, title: 'Server is shutting down' },
  FERRY_ERR_FORBIDDEN_ORIGIN: { status: 403, title: 'Only available from loopback' },
  FERRY_ERR_FORBIDDEN_SECRETS: { status: 403, title: 'Needs an admin credential: the answer would contain secrets' },
  // --- paths ------------------------------------------------------------------
  FERRY_ERR_PATH_INVALID: { status: 400, title: 'Invalid path' },
  FERRY_ERR_PATH_NOT_FOUND: { status: 404, title: 'No such file or folder' },
  FERRY_ERR_PATH_IS_DIRECTORY: { status: 404, title: 'Path is a folder, not a file' },
  FERRY_ERR_PATH_NOT_DIRECTORY: { status: 404, title: 'Path is not a folder' },
  FERRY_ERR_PATH_TOO_LONG: { status: 400, title: 'Path too long or too deep' },
  // --- downloads --------------------------------------------------------------
  FERRY_ERR_RANGE_NOT_SATISFIABLE: { status: 416, title: 'Range not satisfiable' },
  FERRY_ERR_PRECONDITION_FAILED: { status: 412, title: 'Precondition failed' },
  FERRY_ERR_LIST_CURSOR_INVALID: { status: 400, title: 'Invalid listing cursor' },
  FERRY_ERR_LIST_LIMIT_INVALID: { status: 400, title: 'Invalid listing limit' },
  // --- storage ----------------------------------------------------------------
  FERRY_ERR_STORAGE_UNAVAILABLE: { status: 503, title: 'Storage unavailable' },
  FERRY_ERR_STORAGE_FULL: { status: 507, title: 'Insufficient storage' },
  FERRY_ERR_STORAGE_CHANGED: { status: 500, title: 'File changed while it was being read' },
  FERRY_ERR_STORAGE_BAD_GATEWAY: { status: 502, title: 'The storage backend answered with an error' },
  // --- zip --------------------------------------------------------------------
  FERRY_ERR_ZIP_TOO_MANY_ENTRIES: { status: 413, title: 'Archive has too many entries' },
  FERRY_ERR_ZIP_TOO_LARGE: { status: 413, title: 'Archive is too large' },
  FERRY_ERR_ZIP_SELECTION_INVALID: { status: 400, title: 'Invalid zip selection' },
  FERRY_ERR_ZIP_MEMBER_CHANGED: { status: 500, title: 'A member changed while the archive was streamed' },
  FERRY_ERR_ZIP_TOO_DEEP: { status: 413, title: 'Archive holds a path deeper or longer than Ferry serves' },
  // --- uploads ----------------------------------------------------------------
  FERRY_ERR_UPLOAD_TOO_LARGE: { status: 413, title: 'Upload is larger than allowed' },
  FERRY_ERR_UPLOAD_NOT_FOUND: { status: 404, title: 'No such upload' },
  FERRY_ERR_UPLOAD_GONE: { status: 410, title: 'Upload expired or was terminated' },
  FERRY_ERR_UPLOAD_OFFSET_MISMATCH: { status: 409, title: 'Upload-Offset does not match' },
  FERRY_ERR_UPLOAD_LOCKED: { status: 423, title: 'Upload is locked by another request' },
  FERRY_ERR_UPLOAD_CHECKSUM_MISMATCH: { status: 460, title: 'Checksum mismatch' },
  FERRY_ERR_UPLOAD_CHECKSUM_UNSUPPORTED: { status: 400, title: 'Unsupported checksum algorithm' },
  FERRY_ERR_UPLOAD_TUS_VERSION: { status: 412, title: 'Unsupported Tus-Resumable version' },
  FERRY_ERR_UPLOAD_CONTENT_TYPE: { status: 415, title: 'PATCH needs Content-Type: application/offset+octet-stream' },
  FERRY_ERR_UPLOAD_METADATA_INVALID: { status: 400, title: 'Invalid Upload-Metadata' },
  FERRY_ERR_UPLOAD_CONFLICT: { status: 409, title: 'Target file exists' },
  FERRY_ERR_UPLOAD_DIGEST_MISMATCH: { status: 400, title: 'Content digest mismatch' },
  FERRY_ERR_UPLOAD_INCOMPLETE: { status: 400, title: 'Request body ended before its declared length' },
  FERRY_ERR_UPLOAD_HEADER_INVALID: { status: 400, title: 'Invalid tus request header' },
  FERRY_ERR_UPLOAD_CONCAT_INVALID: { status: 400, title: 'Invalid Upload-Concat' },
  FERRY_ERR_UPLOAD_FINAL_PATCH: { status: 403, title: 'A final (concatenated) upload cannot be patched' },
  FERRY_ERR_UPLOAD_FILE_DIGEST_MISMATCH: { status: 460, title: 'The uploaded file does not match its sha256 metadata' },
  FERRY_ERR_UPLOAD_ENCODING_UNSUPPORTED: { status: 415, title: 'Content-Encoding is not supported for uploads' },
  FERRY_ERR_UPLOAD_METADATA_TOO_LARGE: { status: 400, title: 'Upload-Metadata is larger than allowed' },
  FERRY_ERR_UPLOAD_PENDING_CLIENT: { status: 429, title: 'Too many unfinished uploads for this client' },
  FERRY_ERR_UPLOAD_PENDING_GLOBAL: { status: 503, title: 'Too many unfinished uploads on this server' },
  // --- access -----------------------------------------------------------------
  FERRY_ERR_AUTH_REQUIRED: { status: 401, title: 'Authentication required' },
  FERRY_ERR_AUTH_INVALID: { status: 401, title: 'Invalid credentials' },
  FERRY_ERR_AUTH_FORBIDDEN: { status: 403, title: 'Not allowed for this role' },
  FERRY_ERR_LINK_INVALID: { status: 403, title: 'Invalid or expired signed link' },
  // --- traffic ----------------------------------------------------------------
  FERRY_ERR_LIMIT_CLIENT: { status: 429, title: 'Too many concurrent requests from this client' },
  FERRY_ERR_LIMIT_GLOBAL: { status: 503, title: 'Server busy' },
  FERRY_ERR_LIMIT_RATE: { status: 429, title: 'Too many requests' },
  // --- client: ferry get / ferry put (src/download/) ---------------------------
  // Statuses matter when the engine runs server-side (tasks): 502 = the remote answered badly.
  FERRY_ERR_CLIENT_HTTP_STATUS: { status: 502, title: 'The remote server answered with a final error status' },
  FERRY_ERR_CLIENT_RETRIES_EXHAUSTED: { status: 504, title: 'Gave up after repeated failures' },
  FERRY_ERR_CLIENT_PROTOCOL: { status: 502, title: 'The remote server broke the HTTP protocol' },
  FERRY_ERR_CLIENT_LOCAL_IO: { status: 507, title: 'Local file error' },
  FERRY_ERR_CLIENT_ABORTED: { status: 499, title: 'Transfer aborted' },
  FERRY_ERR_CLIENT_BAD_URL: { status: 400, title: 'Invalid URL' },
  FERRY_ERR_CLIENT_SHORT_BODY: { status: 502, title: 'The remote server ended the body before the promised bytes' },
  FERRY_ERR_DOWNLOAD_CHANGED: { status: 409, title: 'The file changed on the server during the download' },
  FERRY_ERR_DOWNLOAD_CHECKSUM_MISMATCH: { status: 422, title: 'Downloaded file does not match the expected digest' },
  FERRY_ERR_PUT_NOT_SUPPORTED: { status: 501, title: 'The server does not offer what this upload needs (tus 1.0)' },
  FERRY_ERR_PUT_FILE_CHANGED: { status: 409, title: 'The local file changed during the upload' },
} as const satisfies Record<string, { status: number; title: string }>;

export type FerryErrorCode = keyof typeof FERRY_ERRORS;

export interface FerryErrorOptions {
  cause?: unknown;
  /** Extra response headers, e.g. `Content-Range` on 416 or `Retry-After` on 429. */
  headers?: Record<string, string>;
  /** Extra members of the problem+json body (RFC 9457 §3.2 extension members). */
  extra?: Record<string, unknown>;
}

/** An error with a stable code from the catalogue; `detail` is safe to show to clients. */
export class FerryError extends Error {
  readonly code: FerryErrorCode;
  readonly statusCode: number;
  readonly title: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly extra: Readonly<Record<string, unknown>>;

  constructor(code: FerryErrorCode, detail?: string, options: FerryErrorOptions = {}) {
    const entry = FERRY_ERRORS[code];
    super(detail ?? entry.title, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.statusCode = entry.status;
    this.title = entry.title;
    this.headers = options.headers ?? {};
    this.extra = options.extra ?? {};
  }
}

export function isFerryError(err: unknown): err is FerryError {
  return err instanceof FerryError;
}

/** RFC 9457 problem details object for an error (unknown errors: generic 500, no internal text). */
export function toProblem(err: unknown, instance?: string): { status: number; headers: Record<string, string>; body: Record<string, unknown> } {
  if (isFerryError(err)) {
    return {
      status: err.statusCode,
      headers: { ...err.headers },
      body: {
        type: `https://ferry.invalid/errors/${err.code}`,
        title: err.title,
        status: err.statusCode,
        detail: err.message,
        code: err.code,
        ...(instance === undefined ? {} : { instance }),
        ...err.extra,
      },
    };
  }
  const entry = FERRY_ERRORS.FERRY_ERR_INTERNAL;
  return {
    status: 500,
    headers: {},
    body: { type: 'https://ferry.invalid/errors/FERRY_ERR_INTERNAL', title: entry.title, status: 500, detail: entry.title, code: 'FERRY_ERR_INTERNAL' },
  };
}

/** Node's system error code (ENOENT, EACCES, …) if `err` carries one. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
