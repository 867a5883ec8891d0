/**
 * Shared by the upload tests (test/integration/uploads*.test.ts, put*.test.ts,
 * test/clients/tus*.test.ts): a real server with a `write` token, and a raw HTTP client that
 * can send a body slowly, stop half-way, send trailers, and still read an early answer.
 */
import http from 'node:http';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import { startServer, type StartServerOptions, type TestServer } from '../helpers/start-server.ts';
import { makeTempDir } from '../helpers/temp-dir.ts';

export const WRITE_TOKEN = 'ferry-upload-test-token-0123456789abcdef';
export const AUTH = { authorization: `Bearer ${WRITE_TOKEN}` } as const;
export const TUS = { 'tus-resumable': '1.0.0' } as const;

/** Writes a tokens file granting WRITE_TOKEN the `write` role; returns its path. */
export async function writeTokensFile(dir: string): Promise<string> {
  const file = path.join(dir, 'tokens.json');
  const sha256 = createHash('sha256').update(WRITE_TOKEN).digest('hex');
  await writeFile(file, JSON.stringify([{ name: 'uploader', role: 'write', sha256 }]));
  return file;
}

/** A started server that accepts WRITE_TOKEN; cleanup registered on `t`. */
export async function startUploadServer(t: TestContext, opts: StartServerOptions = {}): Promise<TestServer> {
  const tmp = await makeTempDir('ferry-upl-');
  t.after(() => tmp.remove());
  const tokensFile = await writeTokensFile(tmp.dir);
  const s = await startServer({ ...opts, options: { tokensFile, ...opts.options } });
  t.after(() => s.close());
  return s;
}

export interface RawResponse {
  status: number;
  /** Lowercase names; repeated fields joined with ", ". */
  headers: Record<string, string | undefined>;
  text: string;
}

function flatHeaders(h: http.IncomingHttpHeaders): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

export interface RawRequestOptions {
  method: string;
  headers?: Record<string, string | number>;
  /** A whole body, or chunks (written with backpressure; an async iterable may pause). */
  body?: Buffer | string | AsyncIterable<Buffer>;
  trailers?: Record<string, string>;
  /** Destroy the socket after this many body bytes (a client that goes away mid-body). */
  abortAfterBytes?: number;
}

/**
 * One request on its own connection. Resolves with the response even when the server answers
 * before the body is sent (the rest of the body is then dropped), rejects only when no
 * response arrives (e.g. abortAfterBytes, or the server cut the connection).
 */
export function rawRequest(url: string, o: RawRequestOptions): Promise<RawResponse> {
  return new Promise<RawResponse>((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname + u.search, method: o.method, headers: o.headers, agent: false });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, headers: flatHeaders(res.headers), text: Buffer.concat(chunks).toString('utf8') }); });
      res.on('error', reject);
    });
    req.on('error', (err) => { if (!answered) reject(err); });
    void (async () => {
      try {
        if (o.body === undefined) { req.end(); return; }
        if (typeof o.body === 'string' || Buffer.isBuffer(o.body)) {
          const buf = Buffer.from(o.body);
          if (o.abortAfterBytes !== undefined) {
            req.write(buf.subarray(0, o.abortAfterBytes));
            await new Promise((r) => setTimeout(r, 50));
            req.destroy();
            return;
          }
          if (o.trailers !== undefined) { req.write(buf); req.addTrailers(o.trailers); req.end(); return; }
          req.end(buf);
          return;
        }
        let sent = 0;
        for await (const chunk of o.body) {
          if (answered || req.destroyed) return;
          if (o.abortAfterBytes !== undefined && sent + chunk.length >= o.abortAfterBytes) {
            req.write(chunk.subarray(0, o.abortAfterBytes - sent));
            await new Promise((r) => setTimeout(r, 50));
            req.destroy();
            return;
          }
          sent += chunk.length;
          if (!req.write(chunk)) await drainOrClose(req);
        }
        if (o.trailers !== undefined) req.addTrailers(o.trailers);
        if (!req.destroyed) req.end();
      } catch (err) {
        req.destroy(err as Error);
      }
    })();
  });
}

function drainOrClose(req: http.ClientRequest): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => { req.off('drain', done); req.off('close', done); resolve(); };
    req.on('drain', done);
    req.on('close', done);
  });
}

/** Deterministic pseudo-random bytes. */
export function bytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    out[i] = x & 0xff;
  }
  return out;
}

export function randomData(size: number): Buffer {
  return randomBytes(size);
}

export function b64(text: string): string {
  return Buffer.from(text, 'utf8').toString('base64');
}

/** POST /uploads/ → the upload URL. */
export async function createUpload(s: TestServer, headers: Record<string, string | number>): Promise<string> {
  const r = await rawRequest(`${s.url}/uploads/`, { method: 'POST', headers: { ...TUS, ...AUTH, ...headers } });
  if (r.status !== 201) throw new Error(`create: ${r.status} ${r.text}`);
  return r.headers.location!;
}

export function patchHeaders(offset: number, extra: Record<string, string | number> = {}): Record<string, string | number> {
  return { ...TUS, ...AUTH, 'content-type': 'application/offset+octet-stream', 'upload-offset': offset, ...extra };
}

export async function headOffset(url: string): Promise<number> {
  const r = await rawRequest(url, { method: 'HEAD', headers: { ...TUS, ...AUTH } });
  if (r.status !== 200) throw new Error(`HEAD: ${r.status}`);
  return Number(r.headers['upload-offset']);
}

/** Yields `data` in `chunkSize` pieces, awaiting `gate` (if any) before each piece after `pauseAfter` bytes. */
export async function* chunked(data: Buffer, chunkSize: number, gate?: { pauseAfter: number; wait: Promise<unknown> }): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += chunkSize) {
    if (gate !== undefined && i >= gate.pauseAfter) await gate.wait;
    yield data.subarray(i, Math.min(data.length, i + chunkSize));
  }
}
