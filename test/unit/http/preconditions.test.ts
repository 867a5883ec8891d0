/**
 * RFC 9110 §13: each precondition from its own words, then the evaluation order of §13.2.2
 * as a table.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluatePreconditions, evaluateIfRange, formatHttpDate, type ConditionalHeaders, type Validators } from '../../../src/http/index.ts';

const LM = Date.UTC(2024, 0, 10, 12, 0, 0) + 400; // sub-second part is not expressible in HTTP-date
const V: Validators = { etag: '"v1"', lastModifiedMs: LM };
const AT = formatHttpDate(LM);
const BEFORE = formatHttpDate(LM - 1000);
const AFTER = formatHttpDate(LM + 1000);

type Expect = 'proceed' | 304 | 412;
function run(method: string, h: ConditionalHeaders, v: Validators = V): Expect {
  const r = evaluatePreconditions(method, h, v);
  return r.kind === 'proceed' ? 'proceed' : r.kind === 'not-modified' ? 304 : 412;
}

test('§13.1.1 If-Match: strong comparison; "*" matches any current representation', () => {
  const cases: Array<[string, Expect]> = [
    ['"v1"', 'proceed'],
    ['"x", "v1"', 'proceed'],
    ['*', 'proceed'],
    ['"v2"', 412],
    ['W/"v1"', 412], // a weak tag never matches in a strong comparison
    ['not-a-tag', 412],
  ];
  for (const [value, expected] of cases) assert.equal(run('GET', { ifMatch: value }), expected, value);
});

test('§13.1.2 If-None-Match: weak comparison; "*" fails for an existing representation', () => {
  const cases: Array<[string, string, Expect]> = [
    ['GET', '"v1"', 304],
    ['HEAD', '"v1"', 304],
    ['GET', 'W/"v1"', 304], // weak comparison: W/"v1" matches "v1"
    ['GET', '"a", W/"v1"', 304],
    ['GET', '*', 304],
    ['GET', '"v2"', 'proceed'],
    ['PUT', '"v1"', 412], // "or 412 (Precondition Failed) status code for all other request methods"
    ['PUT', '*', 412],
  ];
  for (const [method, value, expected] of cases) assert.equal(run(method, { ifNoneMatch: value }), expected, `${method} ${value}`);
});

test('§13.1.3 If-Modified-Since: GET/HEAD only, valid single date only, second precision', () => {
  const cases: Array<[string, string, Expect]> = [
    ['GET', AT, 304], // "earlier than or equal to the date provided"
    ['GET', AFTER, 304],
    ['GET', BEFORE, 'proceed'],
    ['HEAD', AT, 304],
    ['POST', AT, 'proceed'], // "MUST ignore ... if the request method is neither GET nor HEAD"
    ['GET', 'not a date', 'proceed'], // "not a valid HTTP-date" → ignored
    ['GET', `${AT}, ${AT}`, 'proceed'], // "more than one member" → ignored
    ['GET', 'Sunday, 06-Nov-94 08:49:37 GMT', 'proceed'], // old rfc850 date: modified since
  ];
  for (const [method, value, expected] of cases) assert.equal(run(method, { ifModifiedSince: value }), expected, `${method} ${value}`);
  // "MUST ignore the If-Modified-Since header field if the request contains an If-None-Match"
  assert.equal(run('GET', { ifNoneMatch: '"other"', ifModifiedSince: AT }), 'proceed');
  // No modification date: ignored.
  assert.equal(run('GET', { ifModifiedSince: AT }, { etag: '"v1"', lastModifiedMs: undefined }), 'proceed');
});

test('§13.1.4 If-Unmodified-Since: ignored with If-Match, with invalid dates, without a date', () => {
  const cases: Array<[ConditionalHeaders, Expect]> = [
    [{ ifUnmodifiedSince: AT }, 'proceed'],
    [{ ifUnmodifiedSince: AFTER }, 'proceed'],
    [{ ifUnmodifiedSince: BEFORE }, 412],
    [{ ifUnmodifiedSince: 'garbage' }, 'proceed'],
    [{ ifUnmodifiedSince: `${BEFORE}, ${BEFORE}` }, 'proceed'],
    // "A recipient MUST ignore If-Unmodified-Since if the request contains an If-Match header field"
    [{ ifMatch: '"v1"', ifUnmodifiedSince: BEFORE }, 'proceed'],
  ];
  for (const [h, expected] of cases) assert.equal(run('GET', h), expected, JSON.stringify(h));
});

test('§13.2.2 evaluation order', () => {
  const cases: Array<[string, string, ConditionalHeaders, Expect]> = [
    ['step 1 before step 3: If-Match false wins over If-None-Match', 'GET', { ifMatch: '"nope"', ifNoneMatch: '"v1"' }, 412],
    ['step 1 true, step 3 false → 304', 'GET', { ifMatch: '"v1"', ifNoneMatch: '"v1"' }, 304],
    ['step 2 before step 3', 'GET', { ifUnmodifiedSince: BEFORE, ifNoneMatch: '"v1"' }, 412],
    ['step 2 before step 4', 'GET', { ifUnmodifiedSince: BEFORE, ifModifiedSince: AT }, 412],
    ['step 3 true skips step 4 entirely', 'GET', { ifNoneMatch: '"other"', ifModifiedSince: AFTER }, 'proceed'],
    ['step 4 alone', 'GET', { ifModifiedSince: AFTER }, 304],
    ['all pass', 'GET', { ifMatch: '*', ifUnmodifiedSince: AFTER, ifNoneMatch: '"x"' }, 'proceed'],
    ['no conditions', 'GET', {}, 'proceed'],
  ];
  for (const [name, method, h, expected] of cases) assert.equal(run(method, h), expected, name);
});

test('Cache-Control: no-cache does not disable validation at the origin (RFC 9111 §5.2.1.4)', () => {
  // no-cache asks caches to revalidate with the origin; the origin still answers the
  // conditional request: evaluatePreconditions does not even look at Cache-Control.
  assert.equal(run('GET', { ifNoneMatch: '"v1"' }), 304);
});

test('§13.1.5 If-Range: strong tag match or exact date match; weak tags and near dates fail', () => {
  const cases: Array<[string | undefined, boolean, string]> = [
    [undefined, true, 'absent'],
    ['"v1"', true, 'same strong tag'],
    ['"v2"', false, 'other tag'],
    ['W/"v1"', false, 'weak tag: "MUST NOT generate ... weak"; never matches strongly'],
    [AT, true, 'exact Last-Modified'],
    [BEFORE, false, 'one second earlier'],
    [AFTER, false, 'one second later'],
    ['Wednesday, 10-Jan-24 12:00:00 GMT', true, 'same instant in rfc850 format'],
    ['garbage', false, 'neither tag nor date'],
    ['"v1", "v2"', false, 'a list is not an entity-tag'],
  ];
  for (const [value, expected, name] of cases) assert.equal(evaluateIfRange(value, V), expected, name);
  assert.equal(evaluateIfRange(AT, { etag: '"v1"', lastModifiedMs: undefined }), false);
});
