/**
 * RFC 9110 §5.6.7 HTTP-date: "A recipient that parses a timestamp value in an HTTP field MUST
 * accept all three HTTP-date formats." Anything else is not a date, and the conditional
 * fields that carry one are then ignored (§13.1.3, §13.1.4).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHttpDate, formatHttpDate } from '../../../src/http/index.ts';

const SUNDAY_1994 = Date.UTC(1994, 10, 6, 8, 49, 37);
const NOW_2026 = Date.UTC(2026, 10, 21);

test('the three formats of §5.6.7 denote the same instant', () => {
  const cases: Array<[string, string]> = [
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['obsolete RFC 850 format', 'Sunday, 06-Nov-94 08:49:37 GMT'],
    ["ANSI C's asctime() format", 'Sun Nov  6 08:49:37 1994'],
  ];
  for (const [name, value] of cases) assert.equal(parseHttpDate(value, NOW_2026), SUNDAY_1994, name);
});

test('values that are not an HTTP-date are invalid (undefined)', () => {
  const invalid: Array<[string, string]> = [
    ['empty', ''],
    ['garbage', 'yesterday'],
    ['a list of dates (more than one member)', 'Sun, 06 Nov 1994 08:49:37 GMT, Mon, 07 Nov 1994 08:49:37 GMT'],
    ['month name is case-sensitive (%s"Nov")', 'Sun, 06 nov 1994 08:49:37 GMT'],
    ['GMT is case-sensitive', 'Sun, 06 Nov 1994 08:49:37 gmt'],
    ['other zone', 'Sun, 06 Nov 1994 08:49:37 UTC'],
    ['numeric offset', 'Sun, 06 Nov 1994 08:49:37 +0000'],
    ['one-digit day in IMF-fixdate', 'Sun, 6 Nov 1994 08:49:37 GMT'],
    ['unknown day name', 'Sux, 06 Nov 1994 08:49:37 GMT'],
    ['long day name in IMF-fixdate', 'Sunday, 06 Nov 1994 08:49:37 GMT'],
    ['short day name in rfc850-date', 'Sun, 06-Nov-94 08:49:37 GMT'],
    ['February 30', 'Wed, 30 Feb 2022 00:00:00 GMT'],
    ['April 31', 'Sat, 31 Apr 2022 00:00:00 GMT'],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT'],
    ['minute 60', 'Sun, 06 Nov 1994 08:60:00 GMT'],
    ['day 00', 'Sun, 00 Nov 1994 08:49:37 GMT'],
    ['missing seconds', 'Sun, 06 Nov 1994 08:49 GMT'],
    ['ISO 8601', '1994-11-06T08:49:37Z'],
    ['epoch seconds', '784111777'],
    ['asctime with a zero-padded day', 'Sun Nov 06 08:49:37 1994x'],
    ['trailing garbage', 'Sun, 06 Nov 1994 08:49:37 GMT;'],
  ];
  for (const [name, value] of invalid) assert.equal(parseHttpDate(value, NOW_2026), undefined, name);
});

test('asctime accepts a two-digit day and "SP DIGIT"', () => {
  assert.equal(parseHttpDate('Thu Nov 16 08:49:37 1994', NOW_2026), Date.UTC(1994, 10, 16, 8, 49, 37));
  assert.equal(parseHttpDate('Sun Nov  6 08:49:37 1994', NOW_2026), SUNDAY_1994);
});

test('surrounding whitespace (OWS around a field value) is tolerated', () => {
  assert.equal(parseHttpDate('  Sun, 06 Nov 1994 08:49:37 GMT\t', NOW_2026), SUNDAY_1994);
});

test('a leap second (60) is accepted', () => {
  assert.equal(parseHttpDate('Sat, 31 Dec 2016 23:59:60 GMT', NOW_2026), Date.UTC(2016, 11, 31, 23, 59, 59));
});

test('rfc850 two-digit years: more than 50 years in the future means the past century', () => {
  // "MUST interpret a timestamp that appears to be more than 50 years in the future as
  // representing the most recent year in the past that had the same last two digits."
  const now = Date.UTC(2026, 0, 1);
  assert.equal(new Date(parseHttpDate('Friday, 01-Jan-77 00:00:00 GMT', now)!).getUTCFullYear(), 2077 - 100);
  assert.equal(new Date(parseHttpDate('Monday, 01-Jan-76 00:00:00 GMT', now)!).getUTCFullYear(), 2076);
  assert.equal(new Date(parseHttpDate('Wednesday, 01-Jan-25 00:00:00 GMT', now)!).getUTCFullYear(), 2025);
});

test('four-digit years below 100 are not shifted to the 1900s', () => {
  assert.equal(new Date(parseHttpDate('Mon, 01 Jan 0001 00:00:00 GMT', NOW_2026)!).getUTCFullYear(), 1);
});

test('formatHttpDate writes IMF-fixdate, truncated to the second, and round-trips', () => {
  assert.equal(formatHttpDate(SUNDAY_1994 + 999), 'Sun, 06 Nov 1994 08:49:37 GMT');
  for (const ms of [0, SUNDAY_1994, NOW_2026, Date.UTC(2000, 1, 29, 23, 59, 59)]) {
    assert.equal(parseHttpDate(formatHttpDate(ms), NOW_2026), ms);
  }
});
