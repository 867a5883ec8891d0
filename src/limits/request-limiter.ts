/**
 * Requests per second per client (--limit-req-client, per role in the config file) for the
 * API and listings: a bucket of `N` requests per second with a burst of `N`, like nginx
 * `limit_req` with `burst`. A request over the rate waits for its token when that is within
 * the queue timeout (arrival order, as the bucket's debt orders them), else gets 429 with
 * Retry-After at once.
 */
import { FerryError } from '../core/errors.ts';
import { sleep } from '../core/abort.ts';
import { channels, publish } from '../core/channels.ts';
import { MemoryLimitStore, type LimitStore } from './limit-store.ts';
import { planLimits, type TrafficOptions } from './limit-plan.ts';
import type { TransferSubject } from './types.ts';

export interface RequestLimiter {
  /** Resolves when the request may proceed; throws FERRY_ERR_LIMIT_RATE (429) or the signal's reason. */
  acquire(subject: TransferSubject, signal: AbortSignal): Promise<void>;
}

export interface RequestLimiterOptions {
  readonly store?: LimitStore;
}

/** A limiter that never waits when no request rate is configured for any role. */
export function createRequestLimiter(traffic: TrafficOptions, options: RequestLimiterOptions = {}): RequestLimiter {
  const roles = traffic.roles ?? {};
  const any = traffic.limitReqClient !== undefined || Object.values(roles).some((r) => r?.limitReqClient !== undefined);
  if (!any) return { acquire: async () => {} };
  const store = options.store ?? new MemoryLimitStore();
  return {
    async acquire(subject, signal) {
      const plan = planLimits(traffic, subject);
      if (plan.reqClient === undefined) return;
      const spec = { ratePerSec: plan.reqClient, burst: plan.reqClient };
      const key = `req:${plan.clientKey}`;
      const waitMs = await store.reserve(key, 1, spec);
      if (waitMs < 1) return;
      if (waitMs > traffic.queueTimeout) {
        await store.refund(key, 1, spec);
        publish(channels.limit, { kind: 'rejected', reason: 'request-rate' });
        throw new FerryError('FERRY_ERR_LIMIT_RATE', `More than ${plan.reqClient} requests per second from this client`, {
          headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
        });
      }
      try {
        await sleep(waitMs, signal);
      } catch (err) {
        await store.refund(key, 1, spec);
        throw err;
      }
      publish(channels.limit, { kind: 'throttled', bytes: 0, waitMs });
    },
  };
}
