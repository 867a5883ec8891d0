/**
 * A circuit breaker as a pure decision (no timers, no I/O; the caller passes `now`):
 * closed → open after `failureThreshold` availability failures within `failureWindowMs`;
 * open → half-open once `cooldownMs` has passed, letting exactly one probe through;
 * the probe's success closes the breaker, its failure opens it again.
 */

export type BreakerStateName = 'closed' | 'half-open' | 'open';

export type BreakerState =
  | { readonly name: 'closed'; readonly failuresAt: readonly number[] }
  | { readonly name: 'open'; readonly openedAt: number }
  | { readonly name: 'half-open'; readonly probing: boolean };

export interface BreakerOptions {
  readonly failureThreshold: number;
  readonly failureWindowMs: number;
  readonly cooldownMs: number;
}

/**
 * `admit`: a request asks where to go. `success`/`failure`: a request that went to the
 * primary reports (`success` = the backend answered, a 404 included). `cancel`: a request
 * that went to the primary ended without a verdict (the client left).
 */
export type BreakerEvent = 'admit' | 'success' | 'failure' | 'cancel';

export interface BreakerTransition {
  readonly from: BreakerStateName;
  readonly to: BreakerStateName;
  readonly reason: string;
}

export interface BreakerDecision {
  readonly state: BreakerState;
  /** For `admit`: whether the request may use the primary (otherwise the backup). */
  readonly usePrimary: boolean;
  readonly transition?: BreakerTransition;
}

export const INITIAL_BREAKER: BreakerState = { name: 'closed', failuresAt: [] };

function to(state: BreakerState, from: BreakerStateName, usePrimary: boolean, reason: string): BreakerDecision {
  return { state, usePrimary, transition: { from, to: state.name, reason } };
}

/** The next state for one event at time `now` (ms). Pure. */
export function decideBreaker(state: BreakerState, event: BreakerEvent, now: number, options: BreakerOptions): BreakerDecision {
  switch (state.name) {
    case 'closed': {
      if (event !== 'failure') return { state, usePrimary: true };
      const failuresAt = [...state.failuresAt.filter((t) => now - t < options.failureWindowMs), now];
      if (failuresAt.length >= options.failureThreshold) {
        return to({ name: 'open', openedAt: now }, 'closed', false, `${failuresAt.length} failures within ${options.failureWindowMs} ms`);
      }
      return { state: { name: 'closed', failuresAt }, usePrimary: true };
    }
    case 'open': {
      // Verdicts of requests admitted before the breaker opened change nothing.
      if (event !== 'admit' || now - state.openedAt < options.cooldownMs) return { state, usePrimary: false };
      return to({ name: 'half-open', probing: true }, 'open', true, `cool-down of ${options.cooldownMs} ms over: one probe`);
    }
    case 'half-open': {
      if (event === 'admit') return state.probing ? { state, usePrimary: false } : { state: { name: 'half-open', probing: true }, usePrimary: true };
      if (event === 'success') return to(INITIAL_BREAKER, 'half-open', true, 'the probe succeeded');
      if (event === 'failure') return to({ name: 'open', openedAt: now }, 'half-open', false, 'the probe failed');
      return { state: { name: 'half-open', probing: false }, usePrimary: false };
    }
  }
}

/** Milliseconds until an open breaker lets a probe through (0 when not open). */
export function breakerRetryAfterMs(state: BreakerState, now: number, options: BreakerOptions): number {
  return state.name === 'open' ? Math.max(0, options.cooldownMs - (now - state.openedAt)) : 0;
}
