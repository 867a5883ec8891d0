/** decideBreaker: the state table, with an injected clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INITIAL_BREAKER, breakerRetryAfterMs, decideBreaker, type BreakerEvent, type BreakerState } from '../../../src/storage/failover/circuit-breaker.ts';

const OPTIONS = { failureThreshold: 3, failureWindowMs: 1000, cooldownMs: 500 };

interface Row {
  readonly name: string;
  readonly state: BreakerState;
  readonly event: BreakerEvent;
  readonly now: number;
  readonly want: BreakerState;
  readonly usePrimary: boolean;
  readonly transition?: string;
}

const TABLE: readonly Row[] = [
  { name: 'closed admits to the primary', state: INITIAL_BREAKER, event: 'admit', now: 0, want: INITIAL_BREAKER, usePrimary: true },
  { name: 'closed: a success changes nothing', state: { name: 'closed', failuresAt: [10] }, event: 'success', now: 20, want: { name: 'closed', failuresAt: [10] }, usePrimary: true },
  { name: 'closed: a failure below the threshold is counted', state: { name: 'closed', failuresAt: [10] }, event: 'failure', now: 20, want: { name: 'closed', failuresAt: [10, 20] }, usePrimary: true },
  { name: 'closed: the threshold-th failure in the window opens', state: { name: 'closed', failuresAt: [10, 20] }, event: 'failure', now: 30, want: { name: 'open', openedAt: 30 }, usePrimary: false, transition: 'closed>open' },
  { name: 'closed: failures older than the window are forgotten', state: { name: 'closed', failuresAt: [10, 20] }, event: 'failure', now: 1015, want: { name: 'closed', failuresAt: [20, 1015] }, usePrimary: true },
  { name: 'closed: a failure exactly one window old is forgotten', state: { name: 'closed', failuresAt: [0, 500] }, event: 'failure', now: 1000, want: { name: 'closed', failuresAt: [500, 1000] }, usePrimary: true },
  { name: 'open: before the cool-down, reads go to the backup', state: { name: 'open', openedAt: 100 }, event: 'admit', now: 599, want: { name: 'open', openedAt: 100 }, usePrimary: false },
  { name: 'open: after the cool-down, one probe goes to the primary', state: { name: 'open', openedAt: 100 }, event: 'admit', now: 600, want: { name: 'half-open', probing: true }, usePrimary: true, transition: 'open>half-open' },
  { name: 'open: a late failure of an earlier request changes nothing', state: { name: 'open', openedAt: 100 }, event: 'failure', now: 700, want: { name: 'open', openedAt: 100 }, usePrimary: false },
  { name: 'open: a late success of an earlier request does not close', state: { name: 'open', openedAt: 100 }, event: 'success', now: 700, want: { name: 'open', openedAt: 100 }, usePrimary: false },
  { name: 'half-open: while the probe runs, others go to the backup', state: { name: 'half-open', probing: true }, event: 'admit', now: 700, want: { name: 'half-open', probing: true }, usePrimary: false },
  { name: 'half-open: the probe succeeds → closed', state: { name: 'half-open', probing: true }, event: 'success', now: 700, want: INITIAL_BREAKER, usePrimary: true, transition: 'half-open>closed' },
  { name: 'half-open: the probe fails → open again, cool-down restarts', state: { name: 'half-open', probing: true }, event: 'failure', now: 700, want: { name: 'open', openedAt: 700 }, usePrimary: false, transition: 'half-open>open' },
  { name: 'half-open: a cancelled probe lets the next request probe', state: { name: 'half-open', probing: true }, event: 'cancel', now: 700, want: { name: 'half-open', probing: false }, usePrimary: false },
  { name: 'half-open without a probe: the next request is the probe', state: { name: 'half-open', probing: false }, event: 'admit', now: 800, want: { name: 'half-open', probing: true }, usePrimary: true },
];

for (const row of TABLE) {
  test(`decideBreaker: ${row.name}`, () => {
    const d = decideBreaker(row.state, row.event, row.now, OPTIONS);
    assert.deepEqual(d.state, row.want);
    assert.equal(d.usePrimary, row.usePrimary);
    assert.equal(d.transition === undefined ? undefined : `${d.transition.from}>${d.transition.to}`, row.transition);
    if (d.transition !== undefined) assert.ok(d.transition.reason.length > 0, 'a transition says why');
  });
}

test('a full cycle: closed → open → half-open → closed', () => {
  let s: BreakerState = INITIAL_BREAKER;
  const seen: string[] = [];
  const step = (event: BreakerEvent, now: number): boolean => {
    const d = decideBreaker(s, event, now, OPTIONS);
    s = d.state;
    if (d.transition) seen.push(d.transition.to);
    return d.usePrimary;
  };
  for (const t of [0, 1, 2]) { assert.equal(step('admit', t), true); step('failure', t); }
  assert.equal(s.name, 'open');
  assert.equal(breakerRetryAfterMs(s, 102, OPTIONS), 400);
  assert.equal(step('admit', 499), false);
  assert.equal(step('admit', 502), true);
  assert.equal(step('admit', 503), false, 'one probe at a time');
  step('success', 510);
  assert.equal(step('admit', 511), true);
  assert.deepEqual(seen, ['open', 'half-open', 'closed']);
  assert.equal(breakerRetryAfterMs(s, 600, OPTIONS), 0);
});
