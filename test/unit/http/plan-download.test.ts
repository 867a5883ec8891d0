/**
 * planDownload: the whole answer to a GET/HEAD of one representation as data, in RFC 9110
 * §13.2.2 order (preconditions → If-Range → Range → 416 → multipart → HEAD), table-driven as
 * Go's ServeFileRangeTests. The routes (/files, /zip) only write what this returns.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planDownload, formatHttpDate, type DownloadPlan, type PlanDownloadOptions } from '../../../src/http/index.ts';

const LM = Date.UTC(2024, 0, 10, 12, 0, 0);
const ETAG = '"v1"';
const BASE = { 'x-request-id': 'r1', 'accept-ranges': 'bytes', etag: ETAG, 'last-modified': formatHttpDate(LM), vary: 'Accept-Encoding', 'x-content-type-options': 'nosniff' };

function plan(over: Partial<PlanDownloadOptions> & { req?: Record<string, string> } = {}): DownloadPlan {
  const { req, ...rest } = over;
  return planDownload({
    method: 'GET', requestHeaders: req ?? {}, validators: { etag: ETAG, lastModifiedMs: LM }, length: 1000, rangeable: true,
    contentType: 'text/plain', headers: BASE, maxRanges: 16, boundary: 'B', ...rest,
  });
}

/** A compact view of a plan: status, the parts as text, and the fields a test names. */
function view(p: DownloadPlan): string {
  if (p.kind !== 'send') return `${p.status}`;
  const parts = p.parts === undefined ? 'stream' : p.parts.map((x) => (typeof x === 'string' ? 'frame' : `${x.start}-${x.end}`)).join(',');
  return `${p.status}${p.body ? '' : ' head'} [${parts}]`;
}

test('§13.2.2 order and §14.2 range handling, as a table', () => {
  const cases: Array<[string, Partial<PlanDownloadOptions> & { req?: Record<string, string> }, string]> = [
    ['plain GET', {}, '200 [0-999]'],
    ['HEAD: same fields, no body', { method: 'HEAD' }, '200 head [0-999]'],
    ['HEAD ignores Range (§14.2 only GET)', { method: 'HEAD', req: { range: 'bytes=0-9' } }, '200 head [0-999]'],
    ['one range', { req: { range: 'bytes=0-9' } }, '206 [0-9]'],
    ['suffix range', { req: { range: 'bytes=-10' } }, '206 [990-999]'],
    ['two ranges → multipart', { req: { range: 'bytes=0-9,20-29' } }, '206 [frame,0-9,frame,20-29,frame]'],
    ['overlapping ranges coalesce', { req: { range: 'bytes=0-9,5-19' } }, '206 [0-19]'],
    ['unsatisfiable → 416', { req: { range: 'bytes=1000-' } }, '416'],
    ['invalid Range is ignored', { req: { range: 'bytes=9-0' } }, '200 [0-999]'],
    ['unknown unit is ignored', { req: { range: 'items=0-1' } }, '200 [0-999]'],
    ['If-Range strong match → range', { req: { range: 'bytes=0-9', 'if-range': ETAG } }, '206 [0-9]'],
    ['If-Range mismatch → whole', { req: { range: 'bytes=0-9', 'if-range': '"v0"' } }, '200 [0-999]'],
    ['If-Range weak tag → whole', { req: { range: 'bytes=0-9', 'if-range': 'W/"v1"' } }, '200 [0-999]'],
    ['If-Range exact date → range', { req: { range: 'bytes=0-9', 'if-range': formatHttpDate(LM) } }, '206 [0-9]'],
    ['If-Range false beats 416', { req: { range: 'bytes=5000-', 'if-range': '"v0"' } }, '200 [0-999]'],
    ['If-Match false → 412', { req: { 'if-match': '"v0"' } }, '412'],
    ['If-Match false beats Range', { req: { 'if-match': '"v0"', range: 'bytes=0-9' } }, '412'],
    ['If-Unmodified-Since earlier → 412', { req: { 'if-unmodified-since': formatHttpDate(LM - 1000) } }, '412'],
    ['If-None-Match match → 304', { req: { 'if-none-match': ETAG } }, '304'],
    ['If-None-Match match on HEAD → 304', { method: 'HEAD', req: { 'if-none-match': ETAG } }, '304'],
    ['If-None-Match beats 416', { req: { 'if-none-match': ETAG, range: 'bytes=5000-' } }, '304'],
    ['If-Modified-Since at LM → 304', { req: { 'if-modified-since': formatHttpDate(LM) } }, '304'],
    ['not rangeable (coded) → whole', { rangeable: false, req: { range: 'bytes=0-9' } }, '200 [0-999]'],
    ['no length (on the fly) → stream', { length: undefined, req: { range: 'bytes=0-9' } }, '200 [stream]'],
    ['empty representation', { length: 0 }, '200 []'],
    ['empty representation, any range → 416', { length: 0, req: { range: 'bytes=0-0' } }, '416'],
    ['more ranges than --max-ranges → whole', { maxRanges: 1, req: { range: 'bytes=0-1,5-6' } }, '200 [0-999]'],
  ];
  for (const [name, over, expected] of cases) assert.equal(view(plan(over)), expected, name);
});

test('200 and 206 header fields', () => {
  const full = plan({ contentEncoding: 'br' });
  assert.equal(full.kind, 'send');
  assert.deepEqual(full.headers, { ...BASE, 'content-type': 'text/plain', 'content-encoding': 'br', 'content-length': 1000 });
  assert.equal(plan({ contentEncoding: 'identity' }).headers['content-encoding'], undefined);
  assert.equal(plan({ length: undefined }).headers['content-length'], undefined);

  const one = plan({ req: { range: 'bytes=10-19' } });
  assert.deepEqual(one.headers, { ...BASE, 'content-type': 'text/plain', 'content-range': 'bytes 10-19/1000', 'content-length': 10 });

  const multi = plan({ req: { range: 'bytes=0-0,-1' } });
  assert.ok(multi.kind === 'send' && multi.parts !== undefined);
  assert.equal(multi.headers['content-type'], 'multipart/byteranges; boundary=B');
  // Content-Length is the exact body: every frame plus every part's bytes.
  const bodyLength = multi.parts.reduce<number>((n, p) => n + (typeof p === 'string' ? Buffer.byteLength(p, 'latin1') : p.end - p.start + 1), 0);
  assert.equal(multi.headers['content-length'], bodyLength);
  assert.equal(multi.rangeCount, 2);
  assert.match(multi.parts[0] as string, /^--B\r\nContent-Type: text\/plain\r\nContent-Range: bytes 0-0\/1000\r\n\r\n$/);
  assert.equal(multi.parts.at(-1), '\r\n--B--\r\n');
});

test('refusals and 304 carry only the fields their status allows', () => {
  // §15.4.5: a 304 sends the ETag and Vary a 200 would have had, no content fields.
  assert.deepEqual(plan({ req: { 'if-none-match': ETAG } }).headers, { 'x-request-id': 'r1', etag: ETAG, vary: 'Accept-Encoding' });
  const pre = plan({ req: { 'if-match': '"v0"' } });
  assert.ok(pre.kind === 'precondition-failed');
  assert.equal(pre.by, 'if-match');
  assert.deepEqual(pre.headers, { etag: ETAG });
  const unsat = plan({ req: { range: 'bytes=2000-3000' } });
  assert.ok(unsat.kind === 'range-not-satisfiable');
  assert.equal(unsat.length, 1000);
  assert.deepEqual(unsat.headers, { 'content-range': 'bytes */1000', 'accept-ranges': 'bytes', etag: ETAG });
});

test('the caller\'s header object is never changed', () => {
  const headers = Object.freeze({ ...BASE });
  const p = plan({ headers, req: { range: 'bytes=0-1,4-5' } });
  assert.notEqual(p.headers, headers);
  assert.deepEqual(headers, BASE);
});
