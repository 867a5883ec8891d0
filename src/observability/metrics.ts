/**
 * Prometheus metrics (prom-client), fed by diagnostics channels so that capabilities never
 * import this module. One registry per server instance (tests run several in one process).
 * Names: ferry_<area>_<what>_<unit>, counters end in _total, durations in _seconds.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CHANNEL_NAMES, type LimitEvent, type StorageCircuitEvent, type TransferFinishedEvent, type TransferStartedEvent, type UploadEvent, type ZipFinishedEvent } from '../core/channels.ts';

const DURATION_BUCKETS = [0.005, 0.05, 0.25, 1, 5, 15, 60, 300, 1800, 7200];

export interface FerryMetrics extends Disposable {
  readonly registry: Registry;
  readonly httpRequests: Counter<'route' | 'method' | 'status'>;
  readonly httpDuration: Histogram<'route'>;
  readonly transfersActive: Gauge<'route'>;
  readonly connectionsRefused: Counter<'reason'>;
  readonly connectionsCut: Counter<'reason'>;
  /** Where `ferry_connections_open` reads the number of open connections at scrape time. */
  countOpenConnections(read: () => number): void;
}

export function createMetrics(): FerryMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'ferry_', eventLoopMonitoringPrecision: 20 });

  const httpRequests = new Counter({ name: 'ferry_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'] as const, registers: [registry] });
  const httpDuration = new Histogram({ name: 'ferry_http_request_duration_seconds', help: 'Time from request to the end of the response, by route', labelNames: ['route'] as const, buckets: DURATION_BUCKETS, registers: [registry] });
  const transfersActive = new Gauge({ name: 'ferry_transfers_active', help: 'Downloads being sent now', labelNames: ['route'] as const, registers: [registry] });
  const transferBytes = new Counter({ name: 'ferry_transfer_bytes_sent_total', help: 'Body bytes sent by downloads', labelNames: ['route'] as const, registers: [registry] });
  const transfers = new Counter({ name: 'ferry_transfers_total', help: 'Finished downloads by outcome and status', labelNames: ['route', 'outcome', 'status'] as const, registers: [registry] });
  const transfersAborted = new Counter({ name: 'ferry_transfers_aborted_total', help: 'Downloads the client abandoned before the end', labelNames: ['route'] as const, registers: [registry] });
  const transferDuration = new Histogram({ name: 'ferry_transfer_duration_seconds', help: 'Download duration', labelNames: ['route'] as const, buckets: DURATION_BUCKETS, registers: [registry] });

  const zips = new Counter({ name: 'ferry_zip_archives_total', help: 'Zip archives served by outcome', labelNames: ['outcome'] as const, registers: [registry] });
  const zipBytes = new Counter({ name: 'ferry_zip_bytes_sent_total', help: 'Zip bytes sent', registers: [registry] });
  const zipCrc = new Counter({ name: 'ferry_zip_crc_cache_total', help: 'CRC-32 cache lookups by result', labelNames: ['result'] as const, registers: [registry] });

  const uploads = new Counter({ name: 'ferry_uploads_events_total', help: 'Upload lifecycle events (created, resumed, finished, failed, checksum-mismatch, lock-conflict, terminated, expired)', labelNames: ['event', 'protocol'] as const, registers: [registry] });
  const uploadBytes = new Counter({ name: 'ferry_upload_bytes_received_total', help: 'Upload body bytes written', registers: [registry] });
  const uploadsActive = new Gauge({ name: 'ferry_uploads_active', help: 'Upload requests receiving a body now', registers: [registry] });

  const authFailures = new Counter({ name: 'ferry_auth_failures_total', help: 'Rejected credentials by reason', labelNames: ['reason'] as const, registers: [registry] });
  const limitThrottledBytes = new Counter({ name: 'ferry_limit_throttled_bytes_total', help: 'Bytes delayed by a rate limit', registers: [registry] });
  const limitThrottleWait = new Counter({ name: 'ferry_limit_throttle_wait_seconds_total', help: 'Time spent waiting for rate-limit tokens', registers: [registry] });
  const limitQueueLength = new Gauge({ name: 'ferry_limit_queue_length', help: 'Requests waiting for a transfer slot', registers: [registry] });
  const limitQueueWait = new Histogram({ name: 'ferry_limit_queue_wait_seconds', help: 'Time spent waiting for a transfer slot', buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 30], registers: [registry] });
  const limitRejections = new Counter({ name: 'ferry_limit_rejections_total', help: 'Requests refused by a limit, by reason', labelNames: ['reason'] as const, registers: [registry] });

  const storageCircuit = new Gauge({ name: 'ferry_storage_circuit_state', help: 'Circuit breaker of a storage backend with a backup: 0 closed, 1 half-open, 2 open', labelNames: ['backend'] as const, registers: [registry] });

  let openConnections: () => number = () => 0;
  new Gauge({ name: 'ferry_connections_open', help: 'Open client connections', registers: [registry], collect() { this.set(openConnections()); } });
  const connectionsRefused = new Counter({ name: 'ferry_connections_refused_total', help: 'Connections closed when accepted, by reason (max-connections, max-connections-client, fd-headroom)', labelNames: ['reason'] as const, registers: [registry] });
  const connectionsCut = new Counter({ name: 'ferry_connections_cut_total', help: 'Connections closed because a request body was too slow, by reason (slow-body, slow-upload)', labelNames: ['reason'] as const, registers: [registry] });

  const handlers: Array<[string, (msg: unknown) => void]> = [
    [CHANNEL_NAMES.transferStarted, (m) => { transfersActive.inc({ route: (m as TransferStartedEvent).route }); }],
    [CHANNEL_NAMES.transferFinished, (m) => {
      const e = m as TransferFinishedEvent;
      transfersActive.dec({ route: e.route });
      transferBytes.inc({ route: e.route }, e.bytes);
      transfers.inc({ route: e.route, outcome: e.outcome, status: String(e.status) });
      if (e.outcome === 'aborted') transfersAborted.inc({ route: e.route });
      transferDuration.observe({ route: e.route }, e.durationMs / 1000);
    }],
    [CHANNEL_NAMES.zipFinished, (m) => { const e = m as ZipFinishedEvent; zips.inc({ outcome: e.outcome }); zipBytes.inc(e.bytes); }],
    [CHANNEL_NAMES.zipCrc, (m) => { zipCrc.inc({ result: (m as { hit: boolean }).hit ? 'hit' : 'miss' }); }],
    [CHANNEL_NAMES.upload, (m) => { const e = m as UploadEvent; uploads.inc({ event: e.kind, protocol: e.protocol }); }],
    [CHANNEL_NAMES.uploadBytes, (m) => { uploadBytes.inc((m as { bytes: number }).bytes); }],
    [CHANNEL_NAMES.uploadActive, (m) => { uploadsActive.inc((m as { delta: number }).delta); }],
    [CHANNEL_NAMES.authFailure, (m) => { authFailures.inc({ reason: (m as { reason: string }).reason }); }],
    [CHANNEL_NAMES.limit, (m) => {
      const e = m as LimitEvent;
      if (e.kind === 'throttled') { limitThrottledBytes.inc(e.bytes ?? 0); limitThrottleWait.inc((e.waitMs ?? 0) / 1000); }
      if (e.queueLength !== undefined) limitQueueLength.set(e.queueLength);
      if (e.kind === 'dequeued' && e.waitMs !== undefined) limitQueueWait.observe(e.waitMs / 1000);
      if (e.kind === 'rejected') limitRejections.inc({ reason: e.reason ?? 'unknown' });
    }],
    [CHANNEL_NAMES.storageCircuit, (m) => { const e = m as StorageCircuitEvent; storageCircuit.set({ backend: e.backend }, e.value); }],
  ];
  for (const [name, fn] of handlers) diagnosticsChannel.subscribe(name, fn);

  return {
    registry,
    httpRequests,
    httpDuration,
    transfersActive,
    connectionsRefused,
    connectionsCut,
    countOpenConnections(read) { openConnections = read; },
    [Symbol.dispose]() {
      for (const [name, fn] of handlers) diagnosticsChannel.unsubscribe(name, fn);
    },
  };
}
