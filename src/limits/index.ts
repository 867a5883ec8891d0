export { createUnlimitedTransferControl, type TransferControl, type TransferSubject, type ReleasePermit } from './types.ts';
export { createTransferControl, type InProcessTransferControl, type TransferControlOptions } from './transfer-control.ts';
export { createRequestLimiter, type RequestLimiter, type RequestLimiterOptions } from './request-limiter.ts';
export { AdmissionQueue, type AdmissionQueueOptions, type AdmissionRequest } from './admission-queue.ts';
export { paceStream, createBytePacer, type PaceBucket, type PaceStreamOptions, type BytePacer, type BytePacerOptions } from './pace-stream.ts';
export { TokenBucket, type BucketSpec } from './token-bucket.ts';
export { MemoryLimitStore, monotonicNowMs, type LimitStore, type Slot, type MemoryLimitStoreOptions } from './limit-store.ts';
export {
  planLimits, clientKeyOf, limitClassOf, sliceBytesFor, burstFor, CLASS_PRIORITY, MIN_BURST_SEC,
  type LimitPlan, type LimitClass, type TrafficOptions, type RoleLimitOptions,
} from './limit-plan.ts';
