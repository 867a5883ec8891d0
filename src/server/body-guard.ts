/**
 * Slow request bodies. The socket idle timeout (--send-timeout) resets on every byte, so a
 * client sending one byte every few seconds would hold a connection (and whatever it waits
 * for) forever. This guard measures each request body against a deadline that counts only
 * the time the server was actually waiting for body bytes: the body is being read, the
 * request stream's buffer is empty and the socket is not paused by backpressure. Time the
 * server spends elsewhere (auth, a queue, a lock, a rate limit that paces reading) is
 * never held against the client.
 *
 * - A body parsed into memory (JSON of /api/*, at most the 1 MiB body limit) must arrive
 *   within --body-timeout of such waiting.
 * - A body streamed by its route (PUT /files, tus) must average --min-upload-rate over each
 *   window of --send-timeout waiting (0 = off); the guard never asks for more than half of
 *   --limit-upload-rate, which already paces reading.
 *
 * After the answer, a body that was not read to its end is never drained without bound: the
 * answer says `Connection: close` (create-server.ts) unless the route took the body stream
 * and tears it down itself (uploads linger for a while so that the client can read their
 * answer), and in every case the connection is destroyed LINGER_MS after the answer if the
 * body has still not ended.
 *
 * It also sends `100 Continue` (RFC 9110 §10.1.1) only when the body is first read, that is
 * once authentication and the route's prechecks have passed; a request refused earlier gets
 * its final answer without ever being invited to send the body.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type BodyMode = 'buffered' | 'streamed';

/** Longest time a connection stays open after its answer while an unread body still arrives. */
export const LINGER_MS = 10_000;
export type BodyCutReason = 'slow-body' | 'slow-upload';

export interface BodyLimits {
  /** Waiting time a buffered (non-upload) body may take. */
  readonly bodyTimeoutMs: number;
  /** Bytes/s a streamed body must average over each window (0 = off). */
  readonly minUploadRateBytesPerSec: number;
  /** Window of waiting time over which the upload rate is averaged. */
  readonly uploadWindowMs: number;
}

/** What the guard knows about one body so far. */
export interface BodyProgress {
  readonly mode: BodyMode;
  /** Time the server spent waiting for this body's bytes. */
  readonly waitedMs: number;
  /** Bytes received since the request started. */
  readonly bytes: number;
  /** `waitedMs` and `bytes` when the current upload window began. */
  readonly windowWaitedMs: number;
  readonly windowBytes: number;
}

export type BodyVerdict =
  | { readonly kind: 'ok' }
  | { readonly kind: 'next-window' }
  | { readonly kind: 'cut'; readonly reason: BodyCutReason };

/** Whether a body is too slow (pure). */
export function judgeBodyProgress(p: BodyProgress, limits: BodyLimits): BodyVerdict {
  if (p.mode === 'buffered') return p.waitedMs > limits.bodyTimeoutMs ? { kind: 'cut', reason: 'slow-body' } : { kind: 'ok' };
  if (limits.minUploadRateBytesPerSec <= 0 || p.waitedMs - p.windowWaitedMs < limits.uploadWindowMs) return { kind: 'ok' };
  const needed = limits.minUploadRateBytesPerSec * (limits.uploadWindowMs / 1000);
  return p.bytes - p.windowBytes < needed ? { kind: 'cut', reason: 'slow-upload' } : { kind: 'next-window' };
}

/** True when the request announces a body (RFC 9112 §6.3). */
export function hasRequestBody(req: IncomingMessage): boolean {
  if (req.headers['transfer-encoding'] !== undefined) return true;
  const length = req.headers['content-length'];
  return length !== undefined && length !== '0';
}

interface Watch {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  mode: BodyMode;
  reading: boolean;
  baseBytes: number;
  waitedMs: number;
  windowWaitedMs: number;
  windowBytes: number;
  lastTickMs: number;
}

export interface BodyGuardOptions extends BodyLimits {
  /** Called once for each connection the guard closes. */
  readonly onCut: (req: IncomingMessage, reason: BodyCutReason) => void;
  readonly now?: () => number;
}

export interface BodyGuard {
  /** Starts watching a request (call before anything reads it). `expectContinue`: the client waits for 100. */
  watch(req: IncomingMessage, res: ServerResponse, expectContinue: boolean): void;
  /** The route streams this body itself (an upload): the upload rate applies, not the deadline. */
  markStreamed(req: IncomingMessage): void;
  /** Whether the route took this request's body as a stream (and owns its teardown). */
  isStreamed(req: IncomingMessage): boolean;
  /** Requests being watched now. */
  readonly size: number;
  close(): void;
}

export function createBodyGuard(options: BodyGuardOptions): BodyGuard {
  const now = options.now ?? (() => performance.now());
  const watches = new Map<IncomingMessage, Watch>();
  const streamed = new WeakSet<IncomingMessage>();
  const tickMs = Math.max(25, Math.min(1000, Math.floor(Math.min(options.bodyTimeoutMs, options.uploadWindowMs) / 4)));
  let timer: NodeJS.Timeout | undefined;

  const stop = (req: IncomingMessage): void => {
    watches.delete(req);
    if (watches.size === 0 && timer !== undefined) { clearInterval(timer); timer = undefined; }
  };

  const tick = (): void => {
    const t = now();
    for (const w of watches.values()) {
      const socket = w.req.socket;
      const dt = t - w.lastTickMs;
      w.lastTickMs = t;
      if (w.req.complete || socket.destroyed) { stop(w.req); continue; }
      // Waiting for the client: the body is being read, nothing is buffered unread, and the
      // socket is not paused by backpressure.
      if (w.reading && w.req.readableLength === 0 && !socket.isPaused()) w.waitedMs += dt;
      const bytes = socket.bytesRead - w.baseBytes;
      const verdict = judgeBodyProgress({ mode: w.mode, waitedMs: w.waitedMs, bytes, windowWaitedMs: w.windowWaitedMs, windowBytes: w.windowBytes }, options);
      if (verdict.kind === 'next-window') { w.windowWaitedMs = w.waitedMs; w.windowBytes = bytes; }
      if (verdict.kind === 'cut') {
        stop(w.req);
        options.onCut(w.req, verdict.reason);
        socket.destroy();
      }
    }
  };

  return {
    watch(req, res, expectContinue) {
      if (!hasRequestBody(req)) return;
      const w: Watch = { req, res, mode: 'buffered', reading: false, baseBytes: req.socket.bytesRead, waitedMs: 0, windowWaitedMs: 0, windowBytes: 0, lastTickMs: now() };
      // IncomingMessage#_read is called when a consumer first wants body bytes (Node keeps
      // `readingMore` off until then). That is the moment the server starts waiting for the
      // client, and the moment to invite a body that waits for `100 Continue`. `_read` is the
      // stream.Readable implementation hook (public for implementers, not for wrappers): the
      // Node 22 smoke run in .ci/run and the 100-continue tests in
      // test/integration/security-net-conn.test.ts catch a Node that stops calling it.
      const read = req._read;
      let continued = !expectContinue;
      req._read = function (this: IncomingMessage, size: number): void {
        w.reading = true;
        if (!continued) {
          continued = true;
          if (!res.headersSent && !res.writableEnded) res.writeContinue();
        }
        read.call(this, size);
      };
      watches.set(req, w);
      req.once('end', () => { stop(req); });
      res.once('finish', () => {
        stop(req);
        if (req.complete || req.socket.destroyed) return;
        const socket = req.socket;
        const linger = setTimeout(() => { if (!req.complete) socket.destroy(); }, LINGER_MS);
        linger.unref();
        // Both listeners go with the first event: a kept-alive connection would collect them.
        const done = (): void => {
          clearTimeout(linger);
          socket.off('close', done);
          req.off('end', done);
        };
        socket.once('close', done);
        req.once('end', done);
      });
      res.once('close', () => { stop(req); });
      if (timer === undefined) {
        timer = setInterval(tick, tickMs);
        timer.unref();
      }
    },
    isStreamed(req) { return streamed.has(req); },
    markStreamed(req) {
      streamed.add(req);
      const w = watches.get(req);
      if (w !== undefined) w.mode = 'streamed';
    },
    get size() { return watches.size; },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      watches.clear();
    },
  };
}
