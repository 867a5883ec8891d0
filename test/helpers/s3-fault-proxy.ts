/**
 * A fault-injecting HTTP proxy for tests, on 127.0.0.1 port 0, in front of the S3 test server
 * (test/helpers/s3-server.ts). Ferry is pointed at the proxy (`--s3-endpoint`); the proxy
 * forwards each request byte for byte with its own Host header, which SigV4 signed, so the
 * signature still verifies upstream.
 *
 * Tests arm faults for the next N requests that match (method, key, Range):
 * - `500`: answers 500 InternalError (S3's XML error body);
 * - `503`: answers 503 SlowDown with `Retry-After`;
 * - `reset`: forwards the answer's headers and its first `afterBytes` body bytes, then closes
 *   the connection;
 * - `stall`: forwards the headers and the first `afterBytes` bytes, then sends nothing more
 *   (the connection stays open until the client gives up or the proxy closes);
 * - `hang`: answers nothing at all (not even headers);
 * - `forward`: forwards normally, after `before()` resolves (to change the object between
 *   two attempts of a read, at a known point).
 *
 * Every request is recorded (method, key, Range, which fault, when) and announced, so tests
 * wait for "the third GET arrived" instead of sleeping.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { EventEmitter, once } from 'node:events';

export type Fault =
  | { readonly kind: '500' }
  | { readonly kind: '503'; readonly retryAfter: string }
  | { readonly kind: 'reset'; readonly afterBytes: number }
  | { readonly kind: 'stall'; readonly afterBytes: number }
  | { readonly kind: 'hang' }
  | { readonly kind: 'forward'; readonly before: () => Promise<void> };

export interface FaultRule {
  /** HTTP method to match (any when omitted). */
  readonly method?: string;
  /** Object key to match: the path after `/<bucket>/`, decoded (any when omitted). */
  readonly key?: string;
  /** Range header to match (a RegExp tested against it; `null` = no Range header). */
  readonly range?: RegExp | null;
  /** How many of the next matching requests get the fault. */
  readonly times: number;
  readonly fault: Fault;
}

export interface ProxyRequest {
  /** 1-based, in arrival order. */
  readonly seq: number;
  readonly method: string;
  readonly key: string;
  readonly range: string | undefined;
  /** The fault applied, or `pass`. */
  readonly fault: Fault['kind'] | 'pass';
  /** performance.now() at arrival. */
  readonly at: number;
}

export interface S3FaultProxy extends AsyncDisposable {
  /** `http://127.0.0.1:PORT`: give this to Ferry as --s3-endpoint. */
  readonly endpoint: string;
  /** Every request so far. */
  readonly requests: readonly ProxyRequest[];
  /** Arms a fault for the next `rule.times` matching requests (rules are tried in order). */
  inject(rule: FaultRule): void;
  /** Drops every armed rule. */
  clear(): void;
  /** Resolves with the first request (past or future) that matches, in arrival order after `since` (a seq). */
  waitFor(match: (r: ProxyRequest) => boolean, since?: number): Promise<ProxyRequest>;
  /** Resolves with performance.now() when the client connection that carried request `seq` closed. */
  waitClosed(seq: number): Promise<number>;
  close(): Promise<void>;
}

const S3_ERRORS = {
  '500': { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' },
  '503': { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' },
} as const;

function errorXml(code: string, message: string, key: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><Key>${key}</Key><RequestId>FAULT</RequestId></Error>`;
}

/** The object key of a path-style request (`/<bucket>/<key>?query`), decoded; '' for bucket-level requests. */
function keyOf(url: string, bucket: string): string {
  const pathname = url.split('?')[0] ?? '';
  const prefix = `/${bucket}/`;
  return pathname.startsWith(prefix) ? decodeURIComponent(pathname.slice(prefix.length)) : '';
}

function matches(rule: FaultRule, method: string, key: string, range: string | undefined): boolean {
  if (rule.method !== undefined && rule.method !== method) return false;
  if (rule.key !== undefined && rule.key !== key) return false;
  if (rule.range === null) return range === undefined;
  if (rule.range !== undefined) return range !== undefined && rule.range.test(range);
  return true;
}

/** Starts the proxy in front of `upstream` (an S3 test server's endpoint) for `bucket`. */
export async function startS3FaultProxy(upstream: string, bucket: string): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const rules: Array<{ rule: FaultRule; left: number }> = [];
  const requests: ProxyRequest[] = [];
  const events = new EventEmitter();
  const closedAt = new Map<number, number>();
  const sockets = new Set<Socket>();
  const upstreamAgent = new http.Agent({ keepAlive: false });

  const take = (method: string, key: string, range: string | undefined): Fault | undefined => {
    for (const r of rules) {
      if (r.left > 0 && matches(r.rule, method, key, range)) {
        r.left -= 1;
        return r.rule.fault;
      }
    }
    return undefined;
  };

  const forward = (req: http.IncomingMessage, res: http.ServerResponse, cut?: { afterBytes: number; then: 'reset' | 'stall' }): void => {
    const up = http.request({
      host: target.hostname, port: target.port, method: req.method, path: req.url, agent: upstreamAgent,
      // The Host header SigV4 signed (the proxy's own address) goes upstream unchanged.
      headers: req.headers,
    }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, upRes.rawHeaders);
      if (cut === undefined) {
        upRes.pipe(res);
        return;
      }
      let sent = 0;
      const stop = (): void => {
        upRes.destroy();
        if (cut.then === 'reset') res.socket?.destroy();
        // 'stall': the socket stays open, sending nothing, until the client gives up.
      };
      if (cut.afterBytes === 0) {
        res.flushHeaders();
        stop();
        return;
      }
      upRes.on('data', (chunk: Buffer) => {
        const room = cut.afterBytes - sent;
        if (room <= 0) return;
        const part = chunk.length <= room ? chunk : chunk.subarray(0, room);
        sent += part.length;
        if (sent >= cut.afterBytes) {
          upRes.pause();
          res.write(part, () => { stop(); });
        } else {
          res.write(part);
        }
      });
    });
    up.on('error', () => { res.destroy(); });
    req.pipe(up);
  };

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const key = keyOf(req.url ?? '/', bucket);
    const rangeHeader = req.headers.range;
    const fault = take(method, key, rangeHeader);
    const record: ProxyRequest = { seq: requests.length + 1, method, key, range: rangeHeader, fault: fault?.kind ?? 'pass', at: performance.now() };
    requests.push(record);
    req.socket.once('close', () => { closedAt.set(record.seq, performance.now()); events.emit('closed', record.seq); });
    events.emit('request', record);
    if (fault === undefined) { forward(req, res); return; }
    switch (fault.kind) {
      case '500':
      case '503': {
        const e = S3_ERRORS[fault.kind];
        const body = method === 'HEAD' ? '' : errorXml(e.code, e.message, key);
        req.resume();
        res.writeHead(e.status, {
          'content-type': 'application/xml', 'content-length': Buffer.byteLength(body),
          ...(fault.kind === '503' ? { 'retry-after': fault.retryAfter } : {}),
        });
        res.end(body);
        return;
      }
      case 'reset':
      case 'stall':
        forward(req, res, { afterBytes: fault.afterBytes, then: fault.kind });
        return;
      case 'hang':
        req.resume();
        return;
      case 'forward':
        void fault.before().then(() => { forward(req, res); }, () => { res.destroy(); });
        return;
    }
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };

  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    const done = once(server, 'close');
    server.close();
    for (const s of sockets) s.destroy();
    upstreamAgent.destroy();
    await done;
  };

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    inject(rule) { rules.push({ rule, left: rule.times }); },
    clear() { rules.length = 0; },
    waitFor(match, since = 0) {
      const past = requests.find((r) => r.seq > since && match(r));
      if (past !== undefined) return Promise.resolve(past);
      return new Promise((resolve) => {
        const on = (r: ProxyRequest): void => {
          if (r.seq > since && match(r)) { events.off('request', on); resolve(r); }
        };
        events.on('request', on);
      });
    },
    waitClosed(seq) {
      const at = closedAt.get(seq);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve) => {
        const on = (s: number): void => {
          if (s === seq) { events.off('closed', on); resolve(closedAt.get(seq)!); }
        };
        events.on('closed', on);
      });
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
