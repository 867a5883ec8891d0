/**
 * The hot path of a segmented download over cleartext HTTP/1.1: one GET with `Range`, a
 * response with `Content-Length`, bytes straight into the partial file. Everything else (the
 * probe, redirects, TLS, chunked or unframed bodies, uploads) goes through undici.
 *
 * Why a second client: undici copies every body byte into its WebAssembly parser and hands it
 * out as a new Buffer per socket read, and Node allocates a fresh read buffer per read; at
 * hundreds of MB/s that is ~2.5× the CPU of aria2c for the same bytes (bench/get.ts). Here each
 * connection reads into one reusable buffer (`net.Socket` `onread`), the response head is
 * parsed once, and body bytes are copied once, into the writer's batch buffers. The protocol
 * surface is deliberately small and strict (RFC 9112): status line, header fields,
 * Content-Length framing, keep-alive reuse; anything else is handed back to the caller, which
 * falls back to undici for that request.
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import { FerryError } from '../core/errors.ts';
import type { OfferResult } from './piece-writer.ts';

export interface FastHttpOptions {
  readonly connectTimeoutMs: number;
  /** No byte for this long while a request is open → the request fails with ETIMEDOUT. */
  readonly idleTimeoutMs: number;
  /** Idle keep-alive connections are closed after this long. */
  readonly keepAliveMs?: number;
  /** Per-connection read buffer. */
  readonly readBufferBytes?: number;
}

export interface FastResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** undefined when the body is not framed by Content-Length (chunked or until close). */
  readonly contentLength: number | undefined;
  /** Body bytes received so far. */
  readonly bodyBytes: number;
  /**
   * Streams the body into `offer` (synchronous; may take fewer bytes and ask to wait for
   * `drained`). Resolves 'ended' when the whole body arrived (the connection goes back to the
   * pool), 'stopped' when `offer` said done first (the connection is closed).
   * `throttle(bytes)` returns how long to pause reading (rate limit).
   */
  pipe(offer: (buf: Uint8Array, off: number, len: number) => OfferResult, drained: () => Promise<void>, throttle?: (bytes: number) => number): Promise<'ended' | 'stopped'>;
  /** Closes the connection without reading (more of) the body. */
  abandon(): void;
}

const MAX_HEAD_BYTES = 64 * 1024;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

interface Conn {
  readonly key: string;
  readonly socket: net.Socket;
  /** Receives socket reads while a request is open. */
  onData: ((buf: Buffer, n: number) => boolean) | undefined;
  /** Receives the end of the connection while a request is open. */
  onEnd: ((err: Error) => void) | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  dead: boolean;
}

export class FastHttpPool {
  readonly #o: FastHttpOptions;
  readonly #idle = new Map<string, Conn[]>();
  #closed = false;

  constructor(options: FastHttpOptions) {
    this.#o = options;
  }

  /** Sends `GET url` with `headers` (names lower case, values without CR/LF). */
  async get(url: URL, headers: Readonly<Record<string, string>>, signal: AbortSignal): Promise<FastResponse> {
    if (url.protocol !== 'http:') throw new FerryError('FERRY_ERR_INTERNAL', 'the fast path is for http: only');
    const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `host: ${url.host}`];
    for (const [name, value] of Object.entries(headers)) {
      if (name === 'host') continue;
      if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) throw new FerryError('FERRY_ERR_BAD_REQUEST', `invalid request header ${JSON.stringify(name)}`);
      lines.push(`${name}: ${value}`);
    }
    const head = `${lines.join('\r\n')}\r\n\r\n`;
    signal.throwIfAborted();
    const conn = await this.#acquire(url, signal);
    return await new Promise<FastResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: Error): void => {
        conn.onData = undefined;
        conn.onEnd = undefined;
        destroy(conn);
        if (!settled) { settled = true; reject(err); }
      };
      const onAbort = (): void => { fail(signal.reason instanceof Error ? signal.reason : new Error('aborted')); };
      signal.addEventListener('abort', onAbort, { once: true });
      conn.socket.setTimeout(this.#o.idleTimeoutMs);
      let headBuf = Buffer.alloc(0);
      conn.onEnd = fail;
      conn.onData = (buf, n) => {
        headBuf = headBuf.length === 0 ? Buffer.from(buf.subarray(0, n)) : Buffer.concat([headBuf, buf.subarray(0, n)]);
        for (;;) {
          const at = headBuf.indexOf('\r\n\r\n');
          if (at === -1) {
            if (headBuf.length > MAX_HEAD_BYTES) fail(protocolError('response head larger than 64 KiB'));
            return true;
          }
          let parsed: ParsedHead;
          try {
            parsed = parseHead(headBuf.toString('latin1', 0, at));
          } catch (err) {
            fail(err as Error);
            return false;
          }
          const rest = headBuf.subarray(at + 4);
          if (parsed.status >= 100 && parsed.status < 200) { headBuf = Buffer.from(rest); continue; } // RFC 9110 §15.2: interim
          signal.removeEventListener('abort', onAbort);
          settled = true;
          conn.onData = undefined;
          resolve(this.#response(conn, parsed, Buffer.from(rest), signal));
          return false; // paused until pipe()
        }
      };
      conn.socket.write(head);
    });
  }

  /** Destroys idle connections; later requests fail. */
  close(): void {
    this.#closed = true;
    for (const list of this.#idle.values()) for (const c of list) destroy(c);
    this.#idle.clear();
  }

  #response(conn: Conn, head: ParsedHead, early: Buffer, signal: AbortSignal): FastResponse {
    const release = (c: Conn): void => { this.#release(c); };
    let bodyBytes = 0;
    let done = false;
    const remainingStart = head.contentLength;
    return {
      status: head.status,
      headers: head.headers,
      contentLength: head.contentLength,
      get bodyBytes() { return bodyBytes; },
      abandon() {
        if (done) return;
        done = true;
        conn.onData = undefined;
        conn.onEnd = undefined;
        destroy(conn);
      },
      pipe(offer, drained, throttle) {
        return new Promise<'ended' | 'stopped'>((resolve, reject) => {
          if (done) { reject(new Error('response already consumed')); return; }
          if (remainingStart === undefined) { reject(new Error('no Content-Length: not for the fast path')); return; }
          let remaining = remainingStart;
          let stash: Buffer | undefined;
          let paused = true;
          const finish = (outcome: 'ended' | 'stopped' | Error): void => {
            if (done) return;
            done = true;
            conn.onData = undefined;
            conn.onEnd = undefined;
            signal.removeEventListener('abort', onAbort);
            if (outcome === 'ended' && head.keepAlive) release(conn);
            else destroy(conn);
            if (outcome instanceof Error) reject(outcome); else resolve(outcome);
          };
          const onAbort = (): void => { finish(signal.reason instanceof Error ? signal.reason : new Error('aborted')); };
          signal.addEventListener('abort', onAbort, { once: true });
          /** Feeds bytes; returns true to keep reading now. */
          const feed = (buf: Uint8Array, off: number, len: number): boolean => {
            let pos = off;
            const end = off + len;
            while (pos < end) {
              const r = offer(buf, pos, end - pos);
              pos += r.taken;
              if (r.state === 'done') {
                const complete = remaining === 0 && pos === end;
                finish(complete ? 'ended' : 'stopped');
                // A released connection keeps reading (to notice the server closing it).
                return complete;
              }
              if (r.state === 'blocked') {
                stash = Buffer.from(buf.subarray(pos, end));
                drained().then(resume, (err: unknown) => { finish(err as Error); });
                return false;
              }
            }
            if (remaining === 0) { finish('ended'); return true; }
            if (throttle !== undefined) {
              const waitMs = throttle(len);
              if (waitMs > 0) { setTimeout(resume, waitMs); return false; }
            }
            return true;
          };
          const resume = (): void => {
            if (done) return;
            if (stash !== undefined) {
              const s = stash;
              stash = undefined;
              if (!feed(s, 0, s.length)) return;
            }
            if (paused) { paused = false; conn.socket.resume(); }
          };
          conn.onEnd = (err) => { finish(err); };
          conn.onData = (buf, n) => {
            const take = Math.min(n, remaining);
            // Bytes past Content-Length on a connection with no request pending: the server is
            // out of step, so the connection is not reused.
            if (n > take) head.keepAlive = false;
            remaining -= take;
            bodyBytes += take;
            const more = feed(buf, 0, take);
            if (!more) paused = true;
            return more;
          };
          // Body bytes that came with the head.
          const first = early.subarray(0, Math.min(early.length, remaining));
          if (early.length > first.length) head.keepAlive = false;
          remaining -= first.length;
          bodyBytes += first.length;
          if (first.length > 0 && (!feed(first, 0, first.length) || done)) return;
          if (remaining === 0) { finish('ended'); return; }
          paused = false;
          conn.socket.resume();
        });
      },
    };
  }

  async #acquire(url: URL, signal: AbortSignal): Promise<Conn> {
    if (this.#closed) throw new FerryError('FERRY_ERR_CLIENT_ABORTED', 'the connection pool is closed');
    const key = url.host;
    const list = this.#idle.get(key);
    while (list !== undefined && list.length > 0) {
      const c = list.pop()!;
      if (c.idleTimer !== undefined) clearTimeout(c.idleTimer);
      if (!c.dead && !c.socket.destroyed) return c;
    }
    return await this.#connect(url, key, signal);
  }

  #release(conn: Conn): void {
    if (this.#closed || conn.dead) { destroy(conn); return; }
    conn.socket.setTimeout(0);
    conn.socket.resume(); // an idle connection must notice the server closing it
    const list = this.#idle.get(conn.key) ?? [];
    list.push(conn);
    this.#idle.set(conn.key, list);
    conn.idleTimer = setTimeout(() => {
      const i = list.indexOf(conn);
      if (i !== -1) list.splice(i, 1);
      destroy(conn);
    }, this.#o.keepAliveMs ?? 4000);
    conn.idleTimer.unref();
  }

  #connect(url: URL, key: string, signal: AbortSignal): Promise<Conn> {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const port = url.port === '' ? 80 : Number(url.port);
    const readBuffer = Buffer.allocUnsafeSlow(this.#o.readBufferBytes ?? 256 * 1024);
    const holder: { conn?: Conn } = {};
    const socket = net.connect({
      host, port, noDelay: true,
      onread: {
        buffer: readBuffer,
        callback: (n: number, buf: Uint8Array): boolean => {
          const c = holder.conn;
          if (c?.onData === undefined) {
            // Data on an idle connection: the server is out of step; drop it.
            if (c !== undefined) destroy(c);
            return false;
          }
          return c.onData(buf as Buffer, n);
        },
      },
    });
    const c: Conn = { key, socket, onData: undefined, onEnd: undefined, idleTimer: undefined, dead: false };
    holder.conn = c;
    const ended = (err: Error): void => {
      c.dead = true;
      const h = c.onEnd;
      c.onEnd = undefined;
      c.onData = undefined;
      h?.(err);
    };
    socket.on('error', (err) => { ended(err); });
    socket.on('end', () => { ended(new FerryError('FERRY_ERR_CLIENT_SHORT_BODY', 'the server closed the connection')); socket.destroy(); });
    socket.on('close', () => { ended(Object.assign(new Error('the connection closed'), { code: 'ECONNRESET' })); });
    socket.on('timeout', () => { socket.destroy(Object.assign(new Error(`no data for ${this.#o.idleTimeoutMs} ms`), { code: 'ETIMEDOUT' })); });
    return new Promise<Conn>((resolve, reject) => {
      const timer = setTimeout(() => { socket.destroy(Object.assign(new Error(`connect timeout after ${this.#o.connectTimeoutMs} ms`), { code: 'UND_ERR_CONNECT_TIMEOUT' })); }, this.#o.connectTimeoutMs);
      const onAbort = (): void => { socket.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted')); };
      signal.addEventListener('abort', onAbort, { once: true });
      c.onEnd = (err) => { clearTimeout(timer); signal.removeEventListener('abort', onAbort); reject(err); };
      socket.once('connect', () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        c.onEnd = undefined;
        resolve(c);
      });
    });
  }
}

function destroy(conn: Conn): void {
  conn.dead = true;
  if (conn.idleTimer !== undefined) clearTimeout(conn.idleTimer);
  conn.socket.destroy();
}

interface ParsedHead {
  status: number;
  headers: IncomingHttpHeaders;
  contentLength: number | undefined;
  keepAlive: boolean;
}

function protocolError(detail: string): FerryError {
  return new FerryError('FERRY_ERR_CLIENT_PROTOCOL', `invalid HTTP response: ${detail}`);
}

/**
 * RFC 9112 §4 status-line and §5 field lines. Strict: obsolete line folding, a bad field name
 * or conflicting Content-Length values are errors (§5.2, §6.3).
 */
export function parseHead(text: string): ParsedHead {
  const lines = text.split('\r\n');
  const m = /^HTTP\/1\.([01]) (\d{3})(?: .*)?$/.exec(lines[0] ?? '');
  if (m === null) throw protocolError(`bad status line ${JSON.stringify((lines[0] ?? '').slice(0, 80))}`);
  const headers: Record<string, string | string[]> = {};
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    if (line.startsWith(' ') || line.startsWith('\t')) throw protocolError('obsolete line folding');
    const colon = line.indexOf(':');
    const name = colon === -1 ? '' : line.slice(0, colon).toLowerCase();
    if (!TOKEN.test(name)) throw protocolError(`bad field line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    const prev = headers[name];
    if (prev === undefined) headers[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else headers[name] = name === 'set-cookie' ? [prev, value] : `${prev}, ${value}`;
  }
  const status = Number(m[2]);
  const te = headers['transfer-encoding'];
  let contentLength: number | undefined;
  const cl = headers['content-length'];
  if (te === undefined && cl !== undefined) {
    const values = new Set((Array.isArray(cl) ? cl.join(',') : cl).split(',').map((s) => s.trim()));
    if (values.size !== 1) throw protocolError('conflicting Content-Length values');
    const v = [...values][0]!;
    if (!/^\d+$/.test(v)) throw protocolError('bad Content-Length');
    contentLength = Number(v);
  }
  if (status === 204 || status === 304) contentLength = 0;
  const connection = String(headers.connection ?? '').toLowerCase();
  const keepAlive = m[1] === '1' ? !/\bclose\b/.test(connection) : /\bkeep-alive\b/.test(connection);
  return { status, headers, contentLength, keepAlive };
}
