/**
 * Which limits apply to one request: a pure function of the traffic options (SPEC §3, the
 * `--limit-*` flags plus per-role overrides from the config file) and the request's identity.
 * The option names mirror the config keys, so a FerryConfig can be passed as it is.
 */
import type { Identity, Role } from '../core/access.ts';
import type { TransferSubject } from './types.ts';

/** Limits that may differ by role (config file `roles`). */
export interface RoleLimitOptions {
  readonly limitRate?: number | undefined;
  readonly limitRateAfter?: number | undefined;
  readonly limitRateClient?: number | undefined;
  readonly limitConnClient?: number | undefined;
  readonly limitReqClient?: number | undefined;
}

/** Limit classes: the roles, plus `anonymous` for requests without credentials and signed-link holders. */
export type LimitClass = 'anonymous' | Role;

/** Traffic options; the field names are the config keys (bytes, bytes/s, ms). */
export interface TrafficOptions extends RoleLimitOptions {
  readonly limitRateGlobal?: number | undefined;
  /** Burst of every bucket; default one second of that bucket's rate. */
  readonly limitBurst?: number | undefined;
  readonly limitConnGlobal?: number | undefined;
  readonly limitUploadRate?: number | undefined;
  /** Longest wait for a transfer slot (or a request token) before 429/503. */
  readonly queueTimeout: number;
  /** Most requests waiting for a transfer slot. */
  readonly queueSize: number;
  readonly roles?: Readonly<Partial<Record<LimitClass, RoleLimitOptions>>> | undefined;
}

/** Queue priority: admin > write > read > anonymous (then arrival). */
export const CLASS_PRIORITY: Readonly<Record<LimitClass, number>> = { admin: 3, write: 2, read: 1, anonymous: 0 };

/** The limit class of an identity: its role when it presented credentials, else `anonymous`. */
export function limitClassOf(identity: Identity | undefined): LimitClass {
  if (identity === undefined) return 'anonymous';
  if ((identity.kind === 'token' || identity.kind === 'jwt') && identity.role !== undefined) return identity.role;
  return 'anonymous';
}

/**
 * The key under which a client's connections are counted together: the token or JWT
 * subject when there is one, else the client address (which already honours
 * --trust-proxy: Fastify's request.ip).
 */
export function clientKeyOf(subject: TransferSubject): string {
  const id = subject.identity;
  if (id !== undefined && (id.kind === 'token' || id.kind === 'jwt')) return `${id.kind}:${id.name}`;
  return `ip:${subject.clientAddress}`;
}

/** Everything the limiter needs to know about one request. */
export interface LimitPlan {
  readonly limitClass: LimitClass;
  readonly priority: number;
  readonly clientKey: string;
  /** Per-transfer rate (bytes/s). */
  readonly transferRate: number | undefined;
  /** Bytes of each transfer exempt from `transferRate` (nginx limit_rate_after). */
  readonly rateAfterBytes: number;
  /** Rate bound into a signed link (bytes/s), applied to that transfer from its first byte. */
  readonly linkRate: number | undefined;
  readonly clientRate: number | undefined;
  readonly globalRate: number | undefined;
  readonly connClient: number | undefined;
  readonly connGlobal: number | undefined;
  readonly reqClient: number | undefined;
  /** Explicit burst, or undefined for one second of each bucket's rate. */
  readonly burstBytes: number | undefined;
}

function positive(n: number | undefined): number | undefined {
  return n !== undefined && n > 0 ? n : undefined;
}

/** Resolves the limits for one request: role overrides first, then the server-wide values. */
export function planLimits(options: TrafficOptions, subject: TransferSubject): LimitPlan {
  const limitClass = limitClassOf(subject.identity);
  const role = options.roles?.[limitClass] ?? {};
  return {
    limitClass,
    priority: CLASS_PRIORITY[limitClass],
    clientKey: clientKeyOf(subject),
    transferRate: positive(role.limitRate ?? options.limitRate),
    rateAfterBytes: role.limitRateAfter ?? options.limitRateAfter ?? 0,
    linkRate: positive(subject.identity?.maxRateBytesPerSec),
    clientRate: positive(role.limitRateClient ?? options.limitRateClient),
    globalRate: positive(options.limitRateGlobal),
    connClient: positive(role.limitConnClient ?? options.limitConnClient),
    connGlobal: positive(options.limitConnGlobal),
    reqClient: positive(role.limitReqClient ?? options.limitReqClient),
    burstBytes: positive(options.limitBurst),
  };
}

/**
 * Slice size for pacing: about 1/32 s of the slowest rate that applies, between 4 KiB and
 * 256 KiB. Small enough for smooth pacing and fair interleaving, large enough that the
 * limiter costs nothing measurable when it does not bind.
 */
export function sliceBytesFor(slowestRate: number): number {
  return Math.min(256 * 1024, Math.max(4 * 1024, Math.floor(slowestRate / 32)));
}

/** Shortest burst honoured, in seconds of the rate. */
export const MIN_BURST_SEC = 0.05;

/**
 * Burst of one bucket: explicit, else one second of its rate. Never below one slice nor
 * 50 ms of the rate: a timer wakes a millisecond or more late and the event loop can stall
 * for tens of milliseconds, and a bucket smaller than that lateness loses the time for good
 * (the transfer would run measurably below its rate).
 */
export function burstFor(rate: number, burstBytes: number | undefined, sliceBytes: number): number {
  return Math.max(burstBytes ?? rate, sliceBytes, Math.ceil(rate * MIN_BURST_SEC));
}
