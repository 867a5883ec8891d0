/**
 * What a transfer reports while it runs (`onEvent`). Plain data, JSON-serialisable, so the CLI
 * can print it as NDJSON and background tasks can forward it unchanged.
 */

export interface StartEvent {
  readonly type: 'start';
  readonly url: string;
  readonly finalUrl: string;
  readonly output: string;
  /** null when the server did not say. */
  readonly sizeBytes: number | null;
  readonly mode: 'segmented' | 'single';
  readonly segments: number;
  /** Bytes already on disk and verified from an earlier run. */
  readonly resumedBytes: number;
  readonly validator: string | null;
}

export interface ProgressEvent {
  readonly type: 'progress';
  readonly doneBytes: number;
  readonly sizeBytes: number | null;
  /** Over the last few seconds. */
  readonly speedBytesPerSec: number;
  readonly etaMs: number | null;
  readonly connections: number;
  readonly elapsedMs: number;
}

export interface RetryEvent {
  readonly type: 'retry';
  /** Consecutive failed attempts of this segment without progress. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: string;
  readonly offset: number;
}

export interface RestartEvent {
  readonly type: 'restart';
  readonly reason: string;
}

export interface ResumeEvent {
  readonly type: 'resume';
  readonly verifiedBytes: number;
  /** Bytes recorded in the state whose CRC-32 no longer matched the disk (fetched again). */
  readonly discardedBytes: number;
}

export interface VerifyEvent {
  readonly type: 'verify';
  readonly algorithm: 'sha-256';
  readonly source: 'option' | 'repr-digest';
  readonly ok: boolean;
}

export interface WarningEvent {
  readonly type: 'warning';
  readonly message: string;
}

export interface DoneEvent {
  readonly type: 'done';
  readonly output: string;
  readonly sizeBytes: number;
  readonly durationMs: number;
  /** Bytes received from the network in this run (retries and discarded bytes included). */
  readonly networkBytes: number;
  readonly sha256: string | null;
}

export type TransferEvent = StartEvent | ProgressEvent | RetryEvent | RestartEvent | ResumeEvent | VerifyEvent | WarningEvent | DoneEvent;

/** Speed over a sliding window of samples. */
export class SpeedMeter {
  readonly #windowMs: number;
  readonly #samples: { t: number; bytes: number }[] = [];
  constructor(windowMs = 5000) {
    this.#windowMs = windowMs;
  }
  /** Records the running total at time `t` (ms) and returns bytes/s over the window. */
  sample(t: number, totalBytes: number): number {
    this.#samples.push({ t, bytes: totalBytes });
    while (this.#samples.length > 2 && t - this.#samples[0]!.t > this.#windowMs) this.#samples.shift();
    const first = this.#samples[0]!;
    const dt = t - first.t;
    return dt > 0 ? ((totalBytes - first.bytes) * 1000) / dt : 0;
  }
}
