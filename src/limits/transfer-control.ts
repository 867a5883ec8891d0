/**
 * The in-process TransferControl: concurrency permits with a priority queue (`admit`) and
 * byte pacing (`pace`, `paceUpload`) from the traffic options. Shared state (client and
 * global buckets and counters) lives in a LimitStore so that a Redis store can replace the
 * memory one without touching the routes.
 */
import type { Readable } from 'node:stream';
import { channels, publish } from '../core/channels.ts';
import { AdmissionQueue } from './admission-queue.ts';
import { MemoryLimitStore, monotonicNowMs, type LimitStore, type Slot } from './limit-store.ts';
import { burstFor, planLimits, sliceBytesFor, type LimitPlan, type TrafficOptions } from './limit-plan.ts';
import { createBytePacer, paceStream, type BytePacer, type PaceBucket } from './pace-stream.ts';
import { TokenBucket } from './token-bucket.ts';
import type { ReleasePermit, TransferControl, TransferSubject } from './types.ts';

export interface TransferControlOptions {
  /** Shared buckets and counters (default: in-process). */
  readonly store?: LimitStore;
  readonly now?: () => number;
}

export interface InProcessTransferControl extends TransferControl {
  /** Requests waiting for a transfer slot now. */
  readonly queueLength: number;
}

function onThrottle(bytes: number, waitMs: number): void {
  publish(channels.limit, { kind: 'throttled', bytes, waitMs });
}

/** The slowest rate that applies to a download, if any. */
function slowestRate(plan: LimitPlan): number | undefined {
  let slowest: number | undefined;
  for (const r of [plan.linkRate, plan.transferRate, plan.clientRate, plan.globalRate]) {
    if (r !== undefined && (slowest === undefined || r < slowest)) slowest = r;
  }
  return slowest;
}

/** The buckets one download draws from: link-bound rate, per transfer, per client, global. */
function bucketsFor(plan: LimitPlan, sliceBytes: number, nowMs: number): PaceBucket[] {
  const spec = (rate: number) => ({ ratePerSec: rate, burst: burstFor(rate, plan.burstBytes, sliceBytes) });
  const buckets: PaceBucket[] = [];
  if (plan.linkRate !== undefined) buckets.push({ kind: 'local', bucket: new TokenBucket(spec(plan.linkRate), nowMs), exemptBytes: 0 });
  if (plan.transferRate !== undefined) buckets.push({ kind: 'local', bucket: new TokenBucket(spec(plan.transferRate), nowMs), exemptBytes: plan.rateAfterBytes });
  if (plan.clientRate !== undefined) buckets.push({ kind: 'shared', key: `rate:${plan.clientKey}`, spec: spec(plan.clientRate), exemptBytes: 0 });
  if (plan.globalRate !== undefined) buckets.push({ kind: 'shared', key: 'rate:global', spec: spec(plan.globalRate), exemptBytes: 0 });
  return buckets;
}

/** Builds the TransferControl for the given options (a FerryConfig fits as it is). */
export function createTransferControl(traffic: TrafficOptions, options: TransferControlOptions = {}): InProcessTransferControl {
  const store = options.store ?? new MemoryLimitStore(options.now === undefined ? {} : { now: options.now });
  const now = options.now ?? monotonicNowMs;
  const queue = new AdmissionQueue({ store, timeoutMs: traffic.queueTimeout, maxWaiting: traffic.queueSize, now });

  return {
    get queueLength() { return queue.length; },

    admit(subject: TransferSubject, signal: AbortSignal): Promise<ReleasePermit> {
      const plan = planLimits(traffic, subject);
      const slots: Slot[] = [];
      let clientSlotIndex = -1;
      if (plan.connClient !== undefined) {
        clientSlotIndex = slots.length;
        slots.push({ key: `conn:${plan.clientKey}`, limit: plan.connClient });
      }
      if (plan.connGlobal !== undefined) slots.push({ key: 'conn:global', limit: plan.connGlobal });
      return queue.admit({ priority: plan.priority, slots, clientSlotIndex }, signal);
    },

    chunkBytes(subject: TransferSubject): number | undefined {
      const slowest = slowestRate(planLimits(traffic, subject));
      // A few slices: enough to keep the pacer busy between reads, little to hold.
      return slowest === undefined ? undefined : 4 * sliceBytesFor(slowest);
    },

    pace(subject: TransferSubject, body: Readable, signal: AbortSignal): Readable {
      const plan = planLimits(traffic, subject);
      const slowest = slowestRate(plan);
      if (slowest === undefined) return body;
      const sliceBytes = sliceBytesFor(slowest);
      return paceStream(body, { buckets: bucketsFor(plan, sliceBytes, now()), store, sliceBytes, signal, now, onThrottle });
    },

    pacer(subject: TransferSubject, signal: AbortSignal): BytePacer | undefined {
      const plan = planLimits(traffic, subject);
      const slowest = slowestRate(plan);
      if (slowest === undefined) return undefined;
      return createBytePacer({ buckets: bucketsFor(plan, sliceBytesFor(slowest), now()), store, signal, now, onThrottle });
    },

    paceUpload(_subject: TransferSubject, body: Readable, signal: AbortSignal): Readable {
      const rate = traffic.limitUploadRate;
      if (rate === undefined || rate <= 0) return body;
      const sliceBytes = sliceBytesFor(rate);
      const bucket = new TokenBucket({ ratePerSec: rate, burst: burstFor(rate, traffic.limitBurst, sliceBytes) }, now());
      return paceStream(body, { buckets: [{ kind: 'local', bucket, exemptBytes: 0 }], store, sliceBytes, signal, now, onThrottle });
    },
  };
}
