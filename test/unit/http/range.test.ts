/**
 * RFC 9110 §14 range requests, table-driven (in the manner of Go's ServeFileRangeTests):
 * parsing, satisfiability (§14.1.2), coalescing (§14.6), the part limit, Content-Range (§14.4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRanges, parseRangeHeader, sumRangesSize, formatContentRange, formatUnsatisfiedRange, type RangePlan } from '../../../src/http/index.ts';

type Expect = 'full' | 416 | Array<[number, number]>;
function plan(value: string | undefined, size: number, maxRanges = 16): RangePlan { return planRanges(value, size, { maxRanges }); }
function simplify(p: RangePlan): Expect {
  if (p.kind === 'full') return 'full';
  if (p.kind === 'unsatisfiable') return 416;
  return p.ranges.map((r) => [r.start, r.end]);
}

test('§14.1.2 examples for a 10000-byte representation', () => {
  const cases: Array<[string, Expect]> = [
    ['bytes=0-499', [[0, 499]]], // "The first 500 bytes"
    ['bytes=500-999', [[500, 999]]], // "The second 500 bytes"
    ['bytes=-500', [[9500, 9999]]], // "The final 500 bytes"
    ['bytes=9500-', [[9500, 9999]]],
    ['bytes=0-0,-1', [[0, 0], [9999, 9999]]], // "The first and last bytes only"
    ['bytes=500-600,601-999', [[500, 999]]], // adjacent: coalesced
    ['bytes=500-700,601-999', [[500, 999]]], // overlapping: coalesced
  ];
  for (const [value, expected] of cases) assert.deepEqual(simplify(plan(value, 10000)), expected, value);
});

test('edge cases from the issue, each with the rule that decides it', () => {
  const cases: Array<[string, string | undefined, number, Expect]> = [
    ['no Range field', undefined, 100, 'full'],
    ['suffix longer than the file: "the entire representation is used"', 'bytes=-500', 100, [[0, 99]]],
    ['bytes=-0: a suffix-range must have a non-zero suffix-length to be satisfiable', 'bytes=-0', 100, 416],
    ['unknown unit: ignored (§14.1 "MUST ignore a Range ... unit it does not understand")', 'items=0-5', 100, 'full'],
    ['upper-case unit: "Range unit names are case-insensitive"', 'BYTES=0-4', 100, [[0, 4]]],
    ['mixed-case unit', 'Bytes=0-4', 100, [[0, 4]]],
    ['empty list elements are accepted (§5.6.1)', 'bytes=,0-1,,5-6,', 100, [[0, 1], [5, 6]]],
    ['OWS around list elements', 'bytes=0-1 , 5-6', 100, [[0, 1], [5, 6]]],
    ['only empty elements: range-set = 1#range-spec', 'bytes=,,', 100, 'full'],
    ['empty range-set', 'bytes=', 100, 'full'],
    ['huge last-pos is clamped', 'bytes=0-99999999999999999999999999999', 100, [[0, 99]]],
    ['huge first-pos is unsatisfiable', 'bytes=99999999999999999999999999999-', 100, 416],
    ['huge suffix is the whole file', 'bytes=-99999999999999999999999999999', 100, [[0, 99]]],
    ['first-pos = length is unsatisfiable', 'bytes=100-', 100, 416],
    ['last-pos beyond the end is clamped', 'bytes=90-200', 100, [[90, 99]]],
    ['last-pos < first-pos: invalid → ignored', 'bytes=5-4', 100, 'full'],
    ['negative numbers are not int-ranges', 'bytes=-5-10', 100, 'full'],
    ['garbage spec → ignored', 'bytes=abc', 100, 'full'],
    ['one garbage spec spoils the field', 'bytes=0-1,x', 100, 'full'],
    ['no "="', 'bytes 0-1', 100, 'full'],
    ['whitespace around "=" is not in the grammar', 'bytes = 0-1', 100, 'full'],
    ['two Range fields joined by the parser are not one ranges-specifier', 'bytes=0-1, bytes=2-3', 100, 'full'],
    ['unsatisfiable members are dropped when another is satisfiable', 'bytes=200-300,0-9', 100, [[0, 9]]],
    ['all members unsatisfiable → 416', 'bytes=200-300,400-', 100, 416],
    ['empty file: int-range unsatisfiable (first-pos 0 is not < 0)', 'bytes=0-', 0, 416],
    ['empty file: suffix-range "uses the entire representation" (0 bytes) → 200', 'bytes=-5', 0, 'full'],
    ['empty file: bytes=-0 is unsatisfiable', 'bytes=-0', 0, 416],
    ['one-byte file, bytes=0-0', 'bytes=0-0', 1, [[0, 0]]],
    ['overlapping ranges in any order are sorted and coalesced', 'bytes=50-60,0-10,5-55', 100, [[0, 60]]],
    ['duplicates coalesce', 'bytes=0-9,0-9,0-9', 100, [[0, 9]]],
    ['suffix overlapping an int-range', 'bytes=80-,-30', 100, [[70, 99]]],
    ['disjoint ranges keep gaps (no bytes the client did not ask for)', 'bytes=0-0,2-2', 100, [[0, 0], [2, 2]]],
  ];
  for (const [name, value, size, expected] of cases) assert.deepEqual(simplify(plan(value, size)), expected, name);
});

test('many tiny ranges: more parts than --max-ranges after coalescing → whole representation', () => {
  const tiny = Array.from({ length: 17 }, (_, i) => `${i * 2}-${i * 2}`).join(',');
  assert.equal(simplify(plan(`bytes=${tiny}`, 100, 16)), 'full');
  const sixteen = Array.from({ length: 16 }, (_, i) => `${i * 2}-${i * 2}`).join(',');
  assert.equal((simplify(plan(`bytes=${sixteen}`, 100, 16)) as unknown[]).length, 16);
  // 1000 overlapping copies coalesce into one part: not "too many".
  const overlapping = Array.from({ length: 1000 }, () => '0-50').join(',');
  assert.deepEqual(simplify(plan(`bytes=${overlapping}`, 100, 16)), [[0, 50]]);
});

test('no amplification: the planned bytes never exceed the representation (Go sumRangesSize)', () => {
  const hostile = [
    'bytes=0-,0-,0-,0-,0-',
    `bytes=${Array.from({ length: 500 }, (_, i) => `${i}-`).join(',')}`,
    'bytes=-100,-100,-100,0-99',
    `bytes=${Array.from({ length: 16 }, (_, i) => `${i}-${99 - i}`).join(',')}`,
  ];
  for (const value of hostile) {
    const p = plan(value, 100);
    if (p.kind === 'partial') {
      assert.ok(sumRangesSize(p.ranges) <= 100, value);
      for (let i = 1; i < p.ranges.length; i++) assert.ok(p.ranges[i]!.start > p.ranges[i - 1]!.end + 1, 'disjoint, ascending, not adjacent');
    }
  }
});

test('parseRangeHeader distinguishes absent, invalid, unknown unit and bytes', () => {
  assert.deepEqual(parseRangeHeader(undefined), { kind: 'absent' });
  assert.deepEqual(parseRangeHeader('=0-1'), { kind: 'invalid' });
  assert.deepEqual(parseRangeHeader('pages=1-2'), { kind: 'unknown-unit', unit: 'pages' });
  assert.deepEqual(parseRangeHeader('bytes=1-2,-3,4-'), { kind: 'bytes', specs: [{ kind: 'int', first: 1, last: 2 }, { kind: 'suffix', length: 3 }, { kind: 'int', first: 4, last: undefined }] });
});

test('§14.4 Content-Range values', () => {
  assert.equal(formatContentRange({ start: 42, end: 1233 }, 1234), 'bytes 42-1233/1234');
  assert.equal(formatUnsatisfiedRange(1234), 'bytes */1234');
  const p = plan('bytes=5-', 3);
  assert.deepEqual(p, { kind: 'unsatisfiable', contentRange: 'bytes */3' });
});
