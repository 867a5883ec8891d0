// Table-driven from RFC 9110 §14.4 (Content-Range). A parser that accepted an invalid
// range-resp would let a misbehaving server's bytes land at the wrong offset.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseContentRange } from '../../../src/download/content-range.ts';

const cases: [string | undefined, ReturnType<typeof parseContentRange>][] = [
  // The RFC's own examples.
  ['bytes 42-1233/1234', { kind: 'range', first: 42, last: 1233, completeLength: 1234 }],
  ['bytes 42-1233/*', { kind: 'range', first: 42, last: 1233, completeLength: undefined }],
  ['bytes */1234', { kind: 'unsatisfied', completeLength: 1234 }],
  ['bytes 0-0/1', { kind: 'range', first: 0, last: 0, completeLength: 1 }],
  ['BYTES 0-9/10', { kind: 'range', first: 0, last: 9, completeLength: 10 }],
  // "invalid if it contains a range-resp that has a last-pos value less than its first-pos value"
  ['bytes 10-9/100', undefined],
  // "… or a complete-length value less than or equal to its last-pos value"
  ['bytes 0-9/9', undefined],
  ['bytes 0-9/5', undefined],
  ['items 0-9/10', undefined],
  ['bytes 0-9', undefined],
  ['bytes -5/10', undefined],
  ['bytes 0-9/10, 20-29/10', undefined],
  ['bytes 99999999999999999999-1/2', undefined],
  ['', undefined],
  [undefined, undefined],
];

for (const [value, expected] of cases) {
  test(`parseContentRange(${JSON.stringify(value)})`, () => {
    assert.deepEqual(parseContentRange(value), expected);
  });
}
