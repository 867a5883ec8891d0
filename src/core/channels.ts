/**
 * Diagnostics channels: capabilities publish here; observability subscribes.
 * Capabilities never import observability/ (ARCHITECTURE.md).
 * Names follow `ferry:<area>:<event>`.
 */
import diagnosticsChannel from 'node:diagnostics_channel';

export const CHANNEL_NAMES = {
  /** A /files download finished or was aborted: TransferFinishedEvent. */
  transferFinished: 'ferry:serve:transfer-finished',
  /** A /files download started: TransferStartedEvent. */
  transferStarted: 'ferry:serve:transfer-started',
  /** A zip archive finished/aborted: ZipFinishedEvent. */
  zipFinished: 'ferry:zip:finished',
  /** CRC cache lookup: { hit: boolean }. */
  zipCrc: 'ferry:zip:crc',
  /** Upload lifecycle: UploadEvent. */
  upload: 'ferry:uploads:event',
  /** Bytes received by an upload: { bytes }. */
  uploadBytes: 'ferry:uploads:bytes',
  /** Upload requests receiving a body: { delta: 1 | -1 }. */
  uploadActive: 'ferry:uploads:active',
  /** Auth failure: { reason }. */
  authFailure: 'ferry:auth:failure',
  /** Limiter events: LimitEvent. */
  limit: 'ferry:limits:event',
  /** A storage circuit breaker changed state (or announced its state): StorageCircuitEvent. */
  storageCircuit: 'ferry:storage:circuit',
} as const;

export interface TransferStartedEvent { route: string }
export interface TransferFinishedEvent {
  route: string;
  status: number;
  bytes: number;
  durationMs: number;
  outcome: 'completed' | 'aborted' | 'failed';
  rangeCount: number;
}
export interface ZipFinishedEvent { bytes: number; entries: number; durationMs: number; outcome: 'completed' | 'aborted' | 'failed' }
export interface UploadEvent { kind: 'created' | 'resumed' | 'finished' | 'failed' | 'checksum-mismatch' | 'lock-conflict' | 'terminated' | 'expired'; protocol: 'tus' | 'put' }
export interface LimitEvent {
  kind: 'throttled' | 'queued' | 'dequeued' | 'rejected';
  reason?: string;
  bytes?: number;
  waitMs?: number;
  queueLength?: number;
}

export interface StorageCircuitEvent {
  backend: string;
  state: 'closed' | 'half-open' | 'open';
  /** 0 closed, 1 half-open, 2 open (the gauge's value). */
  value: 0 | 1 | 2;
  reason?: string;
}

export const channels = {
  transferStarted: diagnosticsChannel.channel(CHANNEL_NAMES.transferStarted),
  transferFinished: diagnosticsChannel.channel(CHANNEL_NAMES.transferFinished),
  zipFinished: diagnosticsChannel.channel(CHANNEL_NAMES.zipFinished),
  zipCrc: diagnosticsChannel.channel(CHANNEL_NAMES.zipCrc),
  upload: diagnosticsChannel.channel(CHANNEL_NAMES.upload),
  uploadBytes: diagnosticsChannel.channel(CHANNEL_NAMES.uploadBytes),
  uploadActive: diagnosticsChannel.channel(CHANNEL_NAMES.uploadActive),
  authFailure: diagnosticsChannel.channel(CHANNEL_NAMES.authFailure),
  limit: diagnosticsChannel.channel(CHANNEL_NAMES.limit),
  storageCircuit: diagnosticsChannel.channel(CHANNEL_NAMES.storageCircuit),
} as const;

/** Publishes only when someone listens, so the hot path pays nothing otherwise. */
export function publish<T>(channel: diagnosticsChannel.Channel, message: T): void {
  if (channel.hasSubscribers) channel.publish(message);
}
