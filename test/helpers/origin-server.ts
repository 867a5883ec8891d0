/**
 * A small, misbehaving-on-demand origin server (node:http) for `ferry get` tests: it serves
 * one file with RFC 9110 ranges, `If-Range` and a strong ETag, and can drop connections
 * mid-body, answer 503 + Retry-After, refuse ranges, omit Content-Length, redirect, and count
 * every body byte it sends (to measure how much a resumed client fetches twice).
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';

export interface OriginOptions {
  /** Served at `/file` (opened per request, so replacing it on disk takes effect). */
  readonly file: string;
  /** Honour `Range` (default true). */
  ranges?: boolean;
  /** Send `Content-Length` (default true; false → chunked). */
  contentLength?: boolean;
  /** Send a strong ETag (default true). */
  etag?: boolean;
  /** Body bytes after which this response's connection is destroyed; undefined = never. */
  dropAfterBytes?: () => number | undefined;
  /** The first `count` requests to `/file` get `status` with `Retry-After`. */
  failFirst?: { count: number; status: number; retryAfter?: string };
  /** `Repr-Digest` value to announce. */
  reprDigest?: string;
  /** Pace each response body to this many bytes/s (keeps socket buffers, and so byte counts, honest). */
  rateBytesPerSec?: number;
  /** Called when a body starts streaming (e.g. to replace the file mid-download). */
  onBodyStart?: (info: { start: number; end: number }) => void;
}

export interface Origin extends AsyncDisposable {
  readonly url: string;
  /** `${url}/file` */
  readonly fileUrl: string;
  readonly options: OriginOptions;
  readonly stats: { requests: number; bodyBytes: number; statuses: number[]; headers: http.IncomingHttpHeaders[] };
  close(): Promise<void>;
}

export async function startOrigin(options: OriginOptions): Promise<Origin> {
  const stats = { requests: 0, bodyBytes: 0, statuses: [] as number[], headers: [] as http.IncomingHttpHeaders[] };
  let failed = 0;
  const server = http.createServer((req, res) => {
    void handle(req, res).catch(() => { res.destroy(); });
  });
  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    stats.requests++;
    stats.headers.push(req.headers);
    const url = new URL(req.url ?? '/', 'http://x');
    const redirect = /^\/r\/(\d+)$/.exec(url.pathname);
    if (redirect !== null) {
      const n = Number(redirect[1]);
      const next = n <= 1 ? '/file' : `/r/${n - 1}`;
      reply(res, stats, n % 2 === 0 ? 301 : 307, { location: next });
      return;
    }
    if (url.pathname === '/goto') {
      reply(res, stats, 302, { location: url.searchParams.get('u') ?? '/' });
      return;
    }
    if (url.pathname !== '/file') { reply(res, stats, 404, {}); return; }
    const ff = options.failFirst;
    if (ff !== undefined && failed < ff.count) {
      failed++;
      reply(res, stats, ff.status, ff.retryAfter === undefined ? {} : { 'retry-after': ff.retryAfter });
      return;
    }
    const fh = await open(options.file, 'r');
    try {
      const st = await fh.stat();
      const size = st.size;
      const etag = `"${st.ino.toString(16)}-${size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}"`;
      const lastModified = st.mtime.toUTCString();
      const headers: Record<string, string> = { 'content-type': 'application/octet-stream', 'last-modified': lastModified };
      if (options.etag !== false) headers.etag = etag;
      if (options.ranges !== false) headers['accept-ranges'] = 'bytes';
      if (options.reprDigest !== undefined) headers['repr-digest'] = options.reprDigest;
      let start = 0;
      let end = size - 1;
      let status = 200;
      const range = req.headers.range;
      const ifRange = req.headers['if-range'] as string | undefined;
      const rangeAllowed = options.ranges !== false && range !== undefined
        && (ifRange === undefined || ifRange === headers.etag || (!ifRange.startsWith('"') && ifRange === lastModified));
      if (rangeAllowed) {
        const m = /^bytes=(\d*)-(\d*)$/.exec(range);
        if (m !== null && (m[1] !== '' || m[2] !== '')) {
          if (m[1] === '') { start = Math.max(0, size - Number(m[2])); end = size - 1; }
          else { start = Number(m[1]); end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1); }
          if (start >= size || start > end) {
            reply(res, stats, 416, { ...headers, 'content-range': `bytes */${size}` });
            return;
          }
          status = 206;
          headers['content-range'] = `bytes ${start}-${end}/${size}`;
        }
      }
      if (options.contentLength !== false) headers['content-length'] = String(end - start + 1);
      stats.statuses.push(status);
      res.writeHead(status, headers);
      if (req.method === 'HEAD' || size === 0) { res.end(); return; }
      options.onBodyStart?.({ start, end: end + 1 });
      const dropAt = options.dropAfterBytes?.();
      // The handle is closed below, explicitly, once the stream has let go of it (autoClose
      // left handles to the garbage collector when a dropped connection destroyed the stream).
      const stream = createReadStream('', { fd: fh, start, end, highWaterMark: 256 * 1024, autoClose: false });
      let sent = 0;
      const startedAt = performance.now();
      const closed = once(res, 'close');
      try {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          let piece = chunk;
          if (dropAt !== undefined && sent + piece.length > dropAt) piece = piece.subarray(0, Math.max(0, dropAt - sent));
          if (piece.length > 0) {
            sent += piece.length;
            stats.bodyBytes += piece.length;
            if (!res.write(piece)) await Promise.race([once(res, 'drain'), closed]);
          }
          if (res.destroyed) break;
          const rate = options.rateBytesPerSec;
          if (rate !== undefined) {
            const aheadMs = (sent / rate) * 1000 - (performance.now() - startedAt);
            if (aheadMs > 1) await Promise.race([new Promise((r) => setTimeout(r, aheadMs)), closed]);
          }
          if (dropAt !== undefined && sent >= dropAt) {
            // Let the bytes already written reach the socket, then cut the connection.
            res.socket?.end();
            res.socket?.destroySoon();
            setTimeout(() => res.socket?.destroy(), 50).unref();
            break;
          }
        }
      } finally {
        stream.destroy();
        await finished(stream).catch(() => {});
      }
      if (!res.destroyed && !(dropAt !== undefined && sent >= dropAt)) res.end();
    } finally {
      await fh.close();
    }
  };
  server.keepAliveTimeout = 10_000;
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const close = async (): Promise<void> => {
    server.closeAllConnections();
    if (server.listening) await new Promise<void>((r) => server.close(() => r()));
  };
  return { url, fileUrl: `${url}/file`, options, stats, close, [Symbol.asyncDispose]: close };
}

function reply(res: http.ServerResponse, stats: { statuses: number[] }, status: number, headers: Record<string, string>): void {
  stats.statuses.push(status);
  res.writeHead(status, { 'content-length': '0', ...headers });
  res.end();
}

/** Size of a file (for assertions). */
export async function fileSize(file: string): Promise<number> {
  return (await stat(file)).size;
}
